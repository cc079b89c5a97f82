"""The web page in distributed mode: jobs go through Redis to a worker; readiness follows Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bots.web.app import make_app
from core.service import open_service
from core.settings import Settings, load_settings
from tests.bots.test_web import animate, file_form
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis


async def test_readyz_follows_redis_and_a_job_runs_on_the_worker(
    settings: Settings, dev_keys: Path, redis_server: RedisServer, redis_url: str,
    photo_jpeg: bytes, aiohttp_client: Any,
) -> None:  # fmt: skip
    dist = load_settings(data_dir=settings.data_dir, redis_url=redis_url)
    async with open_service(dist, with_worker=True) as service:
        client = await aiohttp_client(make_app(service))
        assert (await client.get("/readyz")).status == 200
        done = await asyncio.wait_for(animate(client, photo_jpeg), 60)
        assert done["state"] == "done", done
        clip = await client.get(done["result"]["clip_url"])
        assert clip.status == 200
        redis_server.kill()
        assert (await client.get("/readyz")).status == 503
        assert (await client.get("/healthz")).status == 200
        redis_server.start()
        assert (await client.get("/readyz")).status == 200


async def test_the_rate_limit_is_shared_by_every_web_process(
    settings: Settings, dev_keys: Path, redis_url: str, aiohttp_client: Any
) -> None:
    dist = load_settings(
        data_dir=settings.data_dir, redis_url=redis_url, web={"requests_per_minute": 2}
    )
    async with open_service(dist) as service:
        # Two apps, each with its own limiter object: only Redis is shared between them.
        first = await aiohttp_client(make_app(service))
        second = await aiohttp_client(make_app(service))
        answers = [
            (await client.post("/api/verify", data=file_form(b"x"))).status
            for client in (first, second, first)
        ]
        assert 429 not in answers[:2]
        assert answers[2] == 429

"""/metrics on the web port: the Prometheus text format, and counters that move with real jobs."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from core.testing import RejectAll
from tests.bots.test_web import animate, file_form


async def scrape(
    client: TestClient[Any, Any],
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    values = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            values[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return values


async def test_a_job_and_a_verify_move_the_counters(web_client: Any, photo_jpeg: bytes) -> None:
    client, _ = await web_client()
    before = await scrape(client)
    assert before[("alive_queue_depth", ())] == 0
    done = await animate(client, photo_jpeg)
    assert done["state"] == "done", done
    clip = await (await client.get(done["result"]["clip_url"])).read()
    assert (await client.post("/api/verify", data=file_form(clip))).status == 200
    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert moved("alive_jobs_total", result="ok") == 1
    for step in ("animate", "encode", "sign"):
        assert moved("alive_step_seconds_count", step=step) == 1, step
    assert moved("alive_verify_total", verdict="ours_intact") == 1


async def test_a_rejection_is_counted_by_its_reason_code(
    web_client: Any, photo_jpeg: bytes
) -> None:
    client, _ = await web_client(photo_checks=[RejectAll("nsfw_photo")])
    key = ("alive_rejections_total", (("code", "nsfw_photo"), ("stage", "photo")))
    before = (await scrape(client)).get(key, 0.0)
    done = await animate(client, photo_jpeg)
    assert done["state"] == "done", done
    assert (await scrape(client))[key] == before + 1

"""Exactly once in the channel across restarts: a Discord bot stopped mid-job answers after it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pydantic import SecretStr

from bots.discord_bot import run_discord
from bots.discord_replies import ReplyTarget
from core.service import AliveService, open_service
from core.services import Services
from core.settings import Settings
from tests.bots.discord_fake import TOKEN, FakeDiscord, Recorded
from tests.bots.test_discord import Env, assert_signed_clip, callback_of
from tests.bots.test_telegram import GatedAnimator

pytestmark = pytest.mark.timeout(60)


@contextlib.asynccontextmanager
async def bot_on(service: AliveService, fake: FakeDiscord) -> AsyncIterator[None]:
    """Run the real adapter (run_discord) on an open service until the block ends."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_discord(service, service.settings, stop))
    try:
        await fake.wait_connected()
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def wait_until(predicate: Callable[[], Any], within: float = 20) -> Any:
    """Poll ``predicate`` until it is truthy; return what it returned."""
    deadline = time.monotonic() + within
    while not (found := predicate()):
        assert time.monotonic() < deadline, "never happened"
        await asyncio.sleep(0.02)
    return found


def clip_posts(fake: FakeDiscord) -> list[Recorded]:
    """Every request that uploaded a file (a clip), wherever it went."""
    return [r for r in fake.requests if r.files]


async def test_a_restarted_bot_posts_the_clip_once_in_the_channel(
    services: Services, settings: Settings, photo_jpeg: bytes
) -> None:
    animator = GatedAnimator()
    async with FakeDiscord() as fake:
        changed = settings.model_copy(
            update={"discord_token": SecretStr(TOKEN), "discord_api_url": fake.api_url}
        )
        built = dataclasses.replace(services, settings=changed, animator=animator)
        community = built.community
        async with open_service(changed, built) as service:
            async with bot_on(service, fake):
                attachment = fake.add_attachment("photo.jpg", photo_jpeg, "image/jpeg")
                opts = [{"name": "photo", "type": 11, "value": attachment["id"]}]
                payload = await fake.interact(fake.slash("alive", opts, attachments=[attachment]))
                assert (await fake.wait_for(callback_of(fake, payload))).json["type"] == 5
                await asyncio.to_thread(animator.entered.wait, 20)  # the job is running, held
            # The bot stopped at once, with the job still running and its reply owed.
            (owed,) = community.pending_replies("discord")
            target = ReplyTarget.from_json(owed.target)
            assert (target.channel_id, target.message_id) == (fake.channel_id, 0)
            assert target.status_message_id  # the public "thinking" message
            assert owed.user_id == str(fake.owner_id)
            assert not clip_posts(fake)

            async with bot_on(service, fake):
                animator.gate.set()
                channel = f"/channels/{fake.channel_id}/messages"
                posted = await fake.wait_for(lambda r: r.path == channel and bool(r.files))
                await wait_until(lambda: not community.pending_replies("discord"))
                await asyncio.sleep(0.3)
            assert clip_posts(fake) == [posted]
            mention = f"<@{fake.owner_id}>"
            assert posted.json["content"].startswith(mention)
            assert [int(u) for u in posted.json["allowed_mentions"]["users"]] == [fake.owner_id]
            await assert_signed_clip(Env(fake, service, photo_jpeg), posted)
            # The first run's "thinking" message is not left behind.
            assert fake.find("DELETE", f"{channel}/{target.status_message_id}")
            # Nothing went to the expired interaction's webhook.
            assert not fake.find("POST", f"/webhooks/{fake.app_id}/{payload['token']}")

            # A third start owes nothing and posts nothing.
            async with bot_on(service, fake):
                await asyncio.sleep(0.5)
            assert clip_posts(fake) == [posted]

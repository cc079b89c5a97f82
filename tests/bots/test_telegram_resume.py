"""Exactly once in the chat across restarts: a bot that stops mid-job answers after its restart."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from bots.telegram_bot import ReplyTarget
from core.service import open_service
from core.services import build_services
from core.settings import Settings, load_settings
from core.types import JobState
from tests.bots import test_telegram
from tests.bots.telegram_fake import FakeBotApi, group
from tests.bots.test_telegram import (
    ANN,
    PHOTO,
    GatedAnimator,
    bot_settings,
    clip_of,
    running,
    wait_until,
)
from tests.redis_server import WorkerProcesses

fake = test_telegram.fake  # the fake Bot API server, and the check that no log holds the token
_logs = test_telegram._logs

LEASE_S = 1.5  # a killed worker's job is taken again after this


async def test_a_restarted_bot_posts_the_clip_of_the_job_it_was_answering(
    settings: Settings, dev_keys: Path, fake: FakeBotApi
) -> None:
    animator = GatedAnimator()
    tg = bot_settings(settings, fake)
    built = dataclasses.replace(build_services(tg), animator=animator)
    community = built.community
    async with open_service(tg, built) as service:
        async with running(service, fake):
            request = fake.message(group(), ANN, caption="/alive", photo=PHOTO)
            await asyncio.to_thread(animator.entered.wait, 20)  # the job is running, held
            await fake.wait_for("sendMessage")  # the progress message
        # The bot stopped at once, with the job still running and its reply owed.
        (owed,) = community.pending_replies("telegram")
        status_id = ReplyTarget.from_json(owed.target).status_message_id
        assert status_id
        assert not fake.calls("sendVideo")
        async with running(service, fake):
            animator.gate.set()
            call = await clip_of(fake)
            await wait_until(lambda: not community.pending_replies("telegram"), fake)
            await asyncio.sleep(0.3)
        assert len(fake.calls("sendVideo")) == 1
        assert call["reply_parameters"]["message_id"] == request["message_id"]
        deleted = {int(d["message_id"]) for d in fake.calls("deleteMessage")}
        assert status_id in deleted  # the first run's progress message is not left behind
        assert (await service.job(owed.job_id)) is not None
        # A third start owes nothing and posts nothing.
        async with running(service, fake):
            await asyncio.sleep(0.3)
        assert len(fake.calls("sendVideo")) == 1


@pytest.fixture
def workers(settings: Settings, redis_url: str, tmp_path: Path) -> Iterator[WorkerProcesses]:
    processes = WorkerProcesses(settings.data_dir, redis_url, LEASE_S, tmp_path)
    yield processes
    processes.stop_all()


@pytest.mark.redis
async def test_a_worker_killed_mid_job_and_a_bot_restart_still_post_one_clip(
    settings: Settings,
    dev_keys: Path,
    fake: FakeBotApi,
    redis_url: str,
    workers: WorkerProcesses,
    tmp_path: Path,
) -> None:
    tg = load_settings(data_dir=settings.data_dir, redis_url=redis_url, queue={"lease_s": LEASE_S})
    tg = bot_settings(tg, fake)
    first = workers.start()
    async with open_service(tg) as service:
        community = service.services.community
        async with running(service, fake):
            fake.message(group(), ANN, caption="/alive seconds=4", photo=PHOTO)
            owed = await wait_until(lambda: community.pending_replies("telegram"), fake, 60)
            handle = await service.job(owed[0].job_id)
            assert handle is not None
            async for event in handle.events():
                if event.step == "animate":
                    first.send_signal(signal.SIGKILL)  # kill -9 mid-job: no clean-up, no ack
                    break
            first.wait(10)
        # The bot restarts too, while no worker runs: the job waits in Redis, its reply owed.
        again = await service.job(owed[0].job_id)
        assert again is not None
        assert again.status().state in (JobState.QUEUED, JobState.RUNNING)
        async with running(service, fake):
            workers.start()
            await clip_of(fake)
            await wait_until(lambda: not community.pending_replies("telegram"), fake, 30)
            await asyncio.sleep(0.5)
        assert len(fake.calls("sendVideo")) == 1
    assert f"{owed[0].job_id}:animate_job" in (tmp_path / "worker-1.log").read_text()  # run again

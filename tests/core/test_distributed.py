"""Distributed mode on a real redis-server: workers as processes, killed, restarted, sharing."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis

from core.clips import ClipStore
from core.jobs import ArqRunner
from core.settings import Settings, load_settings
from core.state import RedisStore
from core.types import ChatRef, ClipSpec, JobRequest, LedgerEntry, Photo
from core.worker import JobLedger
from tests.conftest import REPO, jpeg_bytes, scene
from tests.redis_server import RedisServer, WorkerProcesses

pytestmark = pytest.mark.redis

LEASE_S = 1.5  # a killed worker's job is taken again after this


@pytest.fixture
def dist_settings(settings: Settings, dev_keys: Path, redis_url: str) -> Settings:
    return load_settings(
        data_dir=settings.data_dir, redis_url=redis_url, queue={"lease_s": LEASE_S}
    )


@pytest.fixture
def start_worker(
    dist_settings: Settings, tmp_path: Path
) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    workers = WorkerProcesses(dist_settings.data_dir, dist_settings.redis_url, LEASE_S, tmp_path)
    yield workers.start
    workers.stop_all()


@pytest.fixture
async def runner(dist_settings: Settings) -> AsyncIterator[ArqRunner]:
    opened = ArqRunner(dist_settings, ClipStore(dist_settings.data_dir / "clips"))
    await opened.start()
    yield opened
    await opened.close()


def request(key: str, seconds: float = 1.0, size: int = 256) -> JobRequest:
    spec = ClipSpec(seconds=seconds, fps=12, size=size)
    chat = ChatRef("telegram", "-100", "7", key)
    return JobRequest(Photo(jpeg_bytes(scene())), spec, chat, f"telegram:-100:{key}")


def ledger_ids(url: str) -> list[str]:
    client = redis.Redis.from_url(url, decode_responses=True)
    keys = [k for k in client.keys("alive:ledger:*") if k != "alive:ledger:fingerprints"]
    client.close()
    return sorted(k.rsplit(":", 1)[1] for k in keys)


async def test_a_worker_killed_mid_job_is_replaced_and_the_job_answers_once(
    runner: ArqRunner,
    start_worker: Callable[[], subprocess.Popen[bytes]],
    redis_url: str,
    tmp_path: Path,
) -> None:
    first = start_worker()
    handle = await runner.submit(request("kill", seconds=4.0, size=384))
    async for event in handle.events():
        if event.step == "animate":
            first.send_signal(signal.SIGKILL)  # kill -9 mid-job: no clean-up, no ack
            break
    first.wait(10)
    start_worker()
    outcome = await asyncio.wait_for(handle.result(), 90)
    assert outcome.clip is not None
    assert f"{handle.id}:animate_job" in (tmp_path / "worker-1.log").read_text()  # run again
    # One run reached the ledger; a duplicate request follows the same job.
    assert ledger_ids(redis_url) == [outcome.clip.ledger_id]
    again = await runner.submit(request("kill", seconds=4.0, size=384))
    assert again.id == handle.id
    assert (await again.result()).clip == outcome.clip


async def test_jobs_queued_before_a_redis_restart_all_finish(
    runner: ArqRunner,
    start_worker: Callable[[], subprocess.Popen[bytes]],
    redis_server: RedisServer,
    redis_url: str,
) -> None:
    handles = [await runner.submit(request(f"restart-{i}")) for i in range(3)]
    redis_server.kill()  # kill -9 with three jobs accepted and none started
    redis_server.start()
    start_worker()
    outcomes = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 90)
    assert all(o.clip for o in outcomes)
    assert len(ledger_ids(redis_url)) == 3


async def test_two_workers_share_a_burst_and_none_runs_twice(
    runner: ArqRunner, start_worker: Callable[[], subprocess.Popen[bytes]], redis_url: str
) -> None:
    start_worker()
    start_worker()
    handles = [await runner.submit(request(f"burst-{i}", seconds=0.5, size=128)) for i in range(20)]
    outcomes = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 100)
    made = sorted(o.clip.ledger_id for o in outcomes if o.clip)
    assert len(made) == 20
    assert ledger_ids(redis_url) == made  # exactly one finished run per job


def test_every_run_of_a_job_writes_the_same_ledger_entry(redis_url: str) -> None:
    store = RedisStore.open(redis_url)
    first, rerun = JobLedger(store.ledger, "job-1"), JobLedger(store.ledger, "job-1")
    ledger_id = first.new_id()
    assert ledger_id == rerun.new_id() != JobLedger(store.ledger, "job-2").new_id()
    assert len(ledger_id) == 12
    for ledger in (first, rerun):  # a run killed after recording, then the run that finishes
        ledger.record(LedgerEntry(ledger_id, 1.0, "a" * 64, "", "procedural", "p-1",
                                  ("f" * 64,), "urn:m", "b" * 64, None))  # fmt: skip
    store.close()
    assert ledger_ids(redis_url) == [ledger_id]


QUOTA_SCRIPT = """
import sys
from core.state import RedisStore
store = RedisStore.open(sys.argv[1])
granted = sum(store.community.take_quota("t", "c", f"u{i % 3}", "d", 100, 25) for i in range(30))
print(granted)
"""


def test_quotas_hold_across_two_adapter_processes(redis_url: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", QUOTA_SCRIPT, redis_url], cwd=REPO, stdout=subprocess.PIPE
        )
        for _ in range(2)
    ]
    granted = [int(p.communicate(timeout=60)[0]) for p in procs]
    assert sum(granted) == 25

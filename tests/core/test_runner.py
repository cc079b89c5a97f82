from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from core.clips import ClipStore
from core.errors import JobFailed, ProvenanceError
from core.ports import ProgressCallback
from core.runner import EmbeddedRunner
from core.store import Database
from core.types import (
    Clip,
    ClipSpec,
    JobRequest,
    JobState,
    Outcome,
    Photo,
    Progress,
    Stage,
    Verdict,
)


def finished(request: JobRequest, progress: ProgressCallback) -> Outcome:
    """A job body that reports two steps and makes a tiny 'clip' from the photo bytes."""
    progress(Progress("animate", 0.1))
    progress(Progress("sign", 0.9))
    ledger_id = request.photo.data[:12].decode()
    clip = Clip(b"MP4:" + request.photo.data, 2, 2, 12, 12, ledger_id, "urn:x")
    return Outcome(Verdict.ok(Stage.OUTPUT, "all"), clip, f"note {ledger_id}", {"animate": 0.1})


def make_runner(tmp_path: Path, execute=finished, concurrency: int = 1) -> EmbeddedRunner:
    db = Database(tmp_path / "alive.db")
    return EmbeddedRunner(
        db, tmp_path / "jobs", ClipStore(tmp_path / "clips"), execute, concurrency
    )


def request(ledger_id: str = "aaaaaaaaaaaa", key: str = "") -> JobRequest:
    return JobRequest(Photo(ledger_id.encode()), ClipSpec(prompt="x"), idempotency_key=key)


async def test_job_runs_and_reports_progress_then_outcome(tmp_path: Path) -> None:
    runner = make_runner(tmp_path)
    await runner.start()
    handle = await runner.submit(request())
    steps = [event.step async for event in handle.events()]
    outcome = await handle.result()
    await runner.close()
    assert outcome.clip is not None
    assert outcome.clip.data == b"MP4:aaaaaaaaaaaa"
    assert "animate" in steps
    assert handle.status().state is JobState.DONE
    assert (tmp_path / "clips" / "aaaaaaaaaaaa.mp4").read_bytes() == b"MP4:aaaaaaaaaaaa"
    assert list((tmp_path / "jobs").iterdir()) == []  # the photo is gone once the job ends


async def test_same_idempotency_key_is_one_job(tmp_path: Path) -> None:
    runner = make_runner(tmp_path)
    await runner.start()
    first = await runner.submit(request(key="telegram:1:2"))
    second = await runner.submit(request(key="telegram:1:2"))
    await first.result()
    await runner.close()
    assert first.id == second.id


async def test_failure_is_a_job_failed_with_a_code(tmp_path: Path) -> None:
    def broken(request: JobRequest, progress: ProgressCallback) -> Outcome:
        raise ProvenanceError("signing failed")

    runner = make_runner(tmp_path, broken)
    await runner.start()
    handle = await runner.submit(request())
    with pytest.raises(JobFailed) as failed:
        await handle.result()
    await runner.close()
    assert failed.value.code == "provenance"
    assert handle.status().state is JobState.FAILED


async def test_queue_positions_are_announced(tmp_path: Path) -> None:
    gate = threading.Event()

    def slow(request: JobRequest, progress: ProgressCallback) -> Outcome:
        gate.wait(10)
        return finished(request, progress)

    runner = make_runner(tmp_path, slow)
    await runner.start()
    first = await runner.submit(request("aaaaaaaaaaaa"))
    second = await runner.submit(request("bbbbbbbbbbbb"))
    third = await runner.submit(request("cccccccccccc"))
    await asyncio.sleep(0.05)
    positions = [h.status().progress for h in (second, third)]
    gate.set()
    await asyncio.gather(first.result(), second.result(), third.result())
    await runner.close()
    assert [p.queue_position for p in positions if p] == [1, 2]


async def test_job_accepted_before_a_restart_finishes_after_it(tmp_path: Path) -> None:
    before = make_runner(tmp_path)
    handle = await before.submit(request())  # accepted, never started: the process "dies"
    await before.close()
    after = make_runner(tmp_path)
    await after.start()
    resumed = await after.get(handle.id)
    assert resumed is not None
    outcome = await resumed.result()
    await after.close()
    assert outcome.note == "note aaaaaaaaaaaa"


async def test_finished_job_is_served_from_sqlite_later(tmp_path: Path) -> None:
    runner = make_runner(tmp_path)
    await runner.start()
    handle = await runner.submit(request())
    await handle.result()
    await runner.close()
    again = make_runner(tmp_path)
    reloaded = await again.get(handle.id)
    assert reloaded is not None
    outcome = await reloaded.result()
    assert outcome.clip is not None
    assert outcome.clip.data == b"MP4:aaaaaaaaaaaa"
    assert await again.get("nope") is None


async def test_lost_photo_fails_plainly(tmp_path: Path) -> None:
    runner = make_runner(tmp_path)
    handle = await runner.submit(request())
    for photo in (tmp_path / "jobs").iterdir():
        photo.unlink()
    await runner.start()
    with pytest.raises(JobFailed) as failed:
        await handle.result()
    await runner.close()
    assert failed.value.code == "lost_input"


async def test_racing_submits_with_one_key_make_one_job(tmp_path: Path) -> None:
    runner = make_runner(tmp_path)
    await runner.start()
    handles = await asyncio.gather(*(runner.submit(request(key="web:tok")) for _ in range(5)))
    await handles[0].result()
    await runner.close()
    assert len({h.id for h in handles}) == 1
    assert len(list((tmp_path / "clips").iterdir())) == 1


async def test_cancel_a_queued_job_and_a_running_one(tmp_path: Path) -> None:
    started, gate = threading.Event(), threading.Event()

    def slow(request: JobRequest, progress: ProgressCallback) -> Outcome:
        progress(Progress("validate", 0.0))
        started.set()
        gate.wait(10)
        return finished(request, progress)  # reports the next step: the cancel lands there

    runner = make_runner(tmp_path, slow)
    await runner.start()
    running = await runner.submit(request("aaaaaaaaaaaa"))
    queued = await runner.submit(request("bbbbbbbbbbbb"))
    await asyncio.to_thread(started.wait, 10)
    assert await runner.cancel(queued.id)
    assert await runner.cancel(running.id)
    gate.set()
    for handle in (queued, running):
        with pytest.raises(JobFailed) as failed:
            await handle.result()
        assert failed.value.code == "cancelled"
    assert not await runner.cancel(running.id)  # already ended
    assert not await runner.cancel("unknown")
    await runner.close()
    assert list((tmp_path / "clips").iterdir()) == []  # nothing was kept from either
    assert list((tmp_path / "jobs").iterdir()) == []


async def test_destination_limit_travels_with_the_job(tmp_path: Path) -> None:
    seen: list[int] = []

    def record(request: JobRequest, progress: ProgressCallback) -> Outcome:
        seen.append(request.max_bytes)
        return finished(request, progress)

    before = make_runner(tmp_path, record)
    handle = await before.submit(
        JobRequest(Photo(b"aaaaaaaaaaaa"), ClipSpec(), max_bytes=8 * 1024 * 1024)
    )
    await before.close()
    after = make_runner(tmp_path, record)
    await after.start()
    resumed = await after.get(handle.id)
    assert resumed is not None
    await resumed.result()
    await after.close()
    assert seen == [8 * 1024 * 1024]

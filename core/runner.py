"""The embedded runner: jobs run in this process, off the event loop.

Jobs are recorded in SQLite, so a job accepted before a restart is finished after it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, replace
from pathlib import Path

from core.clips import ClipStore
from core.errors import AnimateError, BackendError, JobCancelled, JobFailed, ProvenanceError
from core.metrics import record_job
from core.ports import ProgressCallback
from core.serialize import (
    chat_from_dict,
    outcome_from_json,
    outcome_to_json,
    spec_from_dict,
    spec_to_dict,
)
from core.store import Database
from core.types import JobRequest, JobState, JobStatus, Outcome, Photo, Progress

log = logging.getLogger(__name__)

Execute = Callable[[JobRequest, ProgressCallback], Outcome]
"""Runs one job to its outcome (the pipeline bound to its services); called in a thread."""

FINISHED_HANDLE_TTL_S = 600.0  # finished jobs stay in memory this long, then reload from SQLite


def error_code(exc: BaseException) -> str:
    """Return the stable code a failed job reports."""
    if isinstance(exc, JobCancelled):
        return "cancelled"
    if isinstance(exc, ProvenanceError):
        return "provenance"
    if isinstance(exc, BackendError):
        return "backend"
    if isinstance(exc, AnimateError):
        return "failed"
    return "internal"


class EmbeddedHandle:
    """A job of the embedded runner: its status, its progress stream, its outcome."""

    def __init__(self, status: JobStatus) -> None:
        self.id = status.id
        self._status = status
        self._done = asyncio.Event()
        self._listeners: set[asyncio.Queue[Progress | None]] = set()
        if status.state in (JobState.DONE, JobState.FAILED):
            self._done.set()

    def status(self) -> JobStatus:
        """Return a snapshot: state, latest progress, outcome when done."""
        return self._status

    async def events(self) -> AsyncIterator[Progress]:
        """Yield progress events until the job ends."""
        queue: asyncio.Queue[Progress | None] = asyncio.Queue()
        self._listeners.add(queue)
        try:
            if self._status.progress:
                yield self._status.progress
            while not self._done.is_set():
                event = await queue.get()
                if event is None:
                    return
                yield event
        finally:
            self._listeners.discard(queue)

    async def result(self) -> Outcome:
        """Wait for the job; return its outcome or raise ``JobFailed``."""
        await self._done.wait()
        if self._status.outcome is None:
            raise JobFailed(self._status.error_code or "internal")
        return self._status.outcome

    def publish(self, status: JobStatus) -> None:
        """Record a new status and wake listeners (event loop thread only)."""
        self._status = status
        finished = status.state in (JobState.DONE, JobState.FAILED)
        for queue in self._listeners:
            queue.put_nowait(None if finished else status.progress)
        if finished:
            self._done.set()


class EmbeddedRunner:
    """The Runner port for one process: a durable queue in SQLite and worker tasks."""

    def __init__(
        self, db: Database, jobs_dir: Path, clips: ClipStore, execute: Execute, concurrency: int = 1
    ) -> None:
        jobs_dir.mkdir(parents=True, exist_ok=True)
        self._db, self._jobs_dir, self._clips = db, jobs_dir, clips
        self._execute = execute
        self._concurrency = max(1, concurrency)
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._pending: list[str] = []
        self._handles: dict[str, EmbeddedHandle] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._cancelled: set[str] = set()

    async def start(self) -> None:
        """Resume every job that was accepted but not finished, then start the workers."""
        if self._workers:
            raise RuntimeError("runner already started")
        rows = self._db.query(
            "SELECT id FROM jobs WHERE state IN (?, ?) ORDER BY created",
            (JobState.QUEUED, JobState.RUNNING),
        )
        for row in rows:
            log.info("resuming job %s accepted before the restart", row["id"])
            self._enqueue(row["id"])
        self._workers = [
            asyncio.create_task(self._work(), name=f"alive-job-worker-{i}")
            for i in range(self._concurrency)
        ]

    async def close(self) -> None:
        """Stop the workers; unfinished jobs stay queued in SQLite for the next start."""
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    async def submit(self, request: JobRequest) -> EmbeddedHandle:
        """Accept a job durably; an equal idempotency key returns the job already accepted."""
        job_id, new = await asyncio.to_thread(self._accept, request)
        if not new:
            handle = await self.get(job_id)
            assert handle is not None
            return handle
        handle = EmbeddedHandle(JobStatus(job_id, JobState.QUEUED))
        self._handles[job_id] = handle
        self._enqueue(job_id)
        return handle

    def _accept(self, request: JobRequest) -> tuple[str, bool]:
        """Store the photo and the job row (in a thread: both are fsynced writes)."""
        key = request.idempotency_key or None
        by_key = "SELECT id FROM jobs WHERE idempotency_key = ?"
        if key and (rows := self._db.query(by_key, (key,))):
            return rows[0]["id"], False
        job_id = secrets.token_hex(8)
        photo_path = self._jobs_dir / f"{job_id}.photo"
        _write_private(photo_path, request.photo.data)
        row = {
            "spec": spec_to_dict(request.spec),
            "chat": asdict(request.chat) if request.chat else None,
            "filename": request.photo.filename,
            "max_bytes": request.max_bytes,
        }
        now = time.time()
        try:
            self._db.execute(
                "INSERT INTO jobs (id, idempotency_key, state, request, photo_path, created,"
                " updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job_id, key, JobState.QUEUED, json.dumps(row), str(photo_path), now, now),
            )
        except sqlite3.IntegrityError:  # the same key, accepted a moment ago by another call
            photo_path.unlink(missing_ok=True)
            return self._db.query(by_key, (key,))[0]["id"], False
        return job_id, True

    async def get(self, job_id: str) -> EmbeddedHandle | None:
        """Return the handle of a known job (from memory, or rebuilt from SQLite)."""
        if job_id in self._handles:
            return self._handles[job_id]
        rows = self._db.query("SELECT state, outcome, error_code FROM jobs WHERE id = ?", (job_id,))
        if not rows:
            return None
        state = JobState(rows[0]["state"])
        outcome = None
        if state is JobState.DONE:
            outcome = self._load_outcome(rows[0]["outcome"])
        handle = EmbeddedHandle(JobStatus(job_id, state, None, outcome, rows[0]["error_code"]))
        self._handles[job_id] = handle
        return handle

    def _load_outcome(self, text: str) -> Outcome:
        clip = json.loads(text)["clip"]
        data = self._clips.load(clip["ledger_id"]) if clip else None
        return outcome_from_json(text, data or b"")

    def _enqueue(self, job_id: str) -> None:
        self._pending.append(job_id)
        self._queue.put_nowait(job_id)
        self._announce_positions()

    def _announce_positions(self) -> None:
        for position, job_id in enumerate(self._pending, start=1):
            handle = self._handles.get(job_id)
            if handle and handle.status().state is JobState.QUEUED:
                handle.publish(
                    JobStatus(job_id, JobState.QUEUED, Progress("queued", 0.0, position))
                )

    async def queue_depth(self) -> int:
        """Return how many accepted jobs wait for a worker task."""
        return len(self._pending)

    async def cancel(self, job_id: str) -> bool:
        """Cancel a queued job at once, or a running one at its next step."""
        handle = await self.get(job_id)
        if handle is None or handle.status().state in (JobState.DONE, JobState.FAILED):
            return False
        self._cancelled.add(job_id)
        if job_id in self._pending:
            self._pending.remove(job_id)
            rows = self._db.query("SELECT photo_path FROM jobs WHERE id = ?", (job_id,))
            self._finish(handle, None, "cancelled", Path(rows[0]["photo_path"]))
            self._announce_positions()
        log.info("job %s cancelled", job_id)
        return True

    async def _work(self) -> None:
        while True:
            job_id = await self._queue.get()
            if job_id not in self._pending:  # cancelled while it waited
                continue
            self._pending.remove(job_id)
            self._announce_positions()
            try:
                await self._run_one(job_id)
            except Exception:
                log.exception("job %s: the runner itself failed", job_id)

    async def _run_one(self, job_id: str) -> None:
        rows = self._db.query("SELECT request, photo_path FROM jobs WHERE id = ?", (job_id,))
        handle = await self.get(job_id)
        assert handle is not None
        assert rows
        photo_path = Path(rows[0]["photo_path"])
        try:
            request = replace(_load_request(rows[0]["request"], photo_path), job_id=job_id)
        except FileNotFoundError:
            log.error("job %s: its photo is gone; failing it", job_id)
            self._finish(handle, None, "lost_input", photo_path)
            return
        self._set_state(job_id, JobState.RUNNING)
        loop = asyncio.get_running_loop()

        def progress(event: Progress) -> None:
            if job_id in self._cancelled:
                raise JobCancelled(job_id)
            status = JobStatus(job_id, JobState.RUNNING, event)
            loop.call_soon_threadsafe(handle.publish, status)

        handle.publish(JobStatus(job_id, JobState.RUNNING, Progress("starting", 0.0)))
        try:
            outcome = await asyncio.to_thread(self._execute, request, progress)
        except JobCancelled:
            self._finish(handle, None, "cancelled", photo_path)
            return
        except Exception as exc:
            log.error("job %s failed", job_id, exc_info=exc)
            self._finish(handle, None, error_code(exc), photo_path)
            return
        self._finish(handle, outcome, "", photo_path)

    def _finish(
        self, handle: EmbeddedHandle, outcome: Outcome | None, code: str, photo_path: Path
    ) -> None:
        """Store the clip, then the outcome, then forget the photo (retention)."""
        if outcome and outcome.clip:
            self._clips.save(outcome.clip.ledger_id, outcome.clip.data)
        state = JobState.DONE if outcome else JobState.FAILED
        self._db.execute(
            "UPDATE jobs SET state = ?, outcome = ?, error_code = ?, updated = ? WHERE id = ?",
            (state, outcome and outcome_to_json(outcome), code, time.time(), handle.id),
        )
        photo_path.unlink(missing_ok=True)
        self._cancelled.discard(handle.id)
        record_job(outcome, code)
        handle.publish(JobStatus(handle.id, state, Progress("done", 1.0), outcome, code))
        asyncio.get_running_loop().call_later(
            FINISHED_HANDLE_TTL_S, self._handles.pop, handle.id, None
        )

    def _set_state(self, job_id: str, state: JobState) -> None:
        self._db.execute(
            "UPDATE jobs SET state = ?, updated = ? WHERE id = ?", (state, time.time(), job_id)
        )


def _load_request(text: str, photo_path: Path) -> JobRequest:
    row = json.loads(text)
    return JobRequest(
        photo=Photo(photo_path.read_bytes(), row["filename"]),
        spec=spec_from_dict(row["spec"]),
        chat=chat_from_dict(row["chat"]),
        max_bytes=row.get("max_bytes", 0),
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write someone's photo readable by this user only, durably."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())

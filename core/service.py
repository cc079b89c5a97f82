"""The service every adapter calls: submit a job, follow it, verify a file, take a clip down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from functools import partial
from typing import Protocol

from core import pipeline
from core.clips import ClipStore
from core.errors import InputError
from core.metrics import record_verify
from core.ports import JobHandle, PhotoCheck, ProgressCallback, PromptCheck, Runner
from core.provenance.verify import verify
from core.runner import EmbeddedRunner
from core.services import Decoder, Services, build_services
from core.settings import Settings
from core.types import ChatRef, JobRequest, Outcome, Photo, Stage, Verdict, VerifyReport

log = logging.getLogger(__name__)

RETENTION_SWEEP_S = 3600.0


class AliveService:
    """What adapters see of core: async, platform-free, one per process."""

    def __init__(self, services: Services, runner: Runner, clips: ClipStore) -> None:
        self.services = services
        self.settings = services.settings
        self.runner = runner
        self.clips = clips

    async def submit(self, request: JobRequest) -> JobHandle:
        """Accept a job; idempotent on the request's idempotency key."""
        return await self.runner.submit(request)

    async def job(self, job_id: str) -> JobHandle | None:
        """Return a known job's handle."""
        return await self.runner.get(job_id)

    async def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job; False if it already ended or is unknown."""
        return await self.runner.cancel(job_id)

    async def verify(self, data: bytes) -> VerifyReport:
        """Check a file's provenance, off the event loop."""
        report = await asyncio.to_thread(verify, data, self.services)
        record_verify(report)
        return report

    async def queue_depth(self) -> int:
        """Return how many accepted jobs wait to start."""
        return await self.runner.queue_depth()

    async def moderate(self, photo: Photo | None, prompt: str | None) -> list[Verdict]:
        """Run only the input checks, for operators tuning the policy."""
        return await asyncio.to_thread(moderate, self.services, photo, prompt)

    async def take_down(self, ledger_id: str, reason: str, moderator: ChatRef | None) -> bool:
        """Revoke a clip in the ledger and delete its stored copy; return whether it existed."""
        return await asyncio.to_thread(self._take_down, ledger_id, reason, moderator)

    def _take_down(self, ledger_id: str, reason: str, moderator: ChatRef | None) -> bool:
        """The blocking part of a takedown: ledger, file and audit writes."""
        found = self.services.ledger.revoke(ledger_id, reason)
        if found:
            self.clips.delete(ledger_id)
            self.services.audit.write(
                "takedown",
                {
                    "ledger_id": ledger_id,
                    "reason": reason,
                    "by": [moderator.platform, moderator.user_id] if moderator else None,
                },
            )
        return found


class InputChecks(Protocol):
    """What :func:`moderate` needs: the input checks.

    ``Services`` has them, and so does a process that builds only the checks (``alive
    moderate``, which needs no signing identity, animator or database).
    """

    @property
    def settings(self) -> Settings: ...
    @property
    def decode(self) -> Decoder: ...
    @property
    def prompt_checks(self) -> Sequence[PromptCheck]: ...
    @property
    def photo_checks(self) -> Sequence[PhotoCheck]: ...


def moderate(s: InputChecks, photo: Photo | None, prompt: str | None) -> list[Verdict]:
    """Return the verdict of every input check on a photo and/or a prompt (no short-cut)."""
    verdicts: list[Verdict] = []
    if prompt is not None:
        verdicts += [check.check(prompt) for check in s.prompt_checks]
    if photo is not None:
        try:
            image = s.decode(photo, s.settings.limits)
        except InputError as exc:
            return [*verdicts, Verdict.reject(exc.code, Stage.INPUT, "limits")]
        verdicts += [check.check(image) for check in s.photo_checks]
    return verdicts


@contextlib.asynccontextmanager
async def open_service(
    settings: Settings,
    services: Services | None = None,
    *,
    with_runner: bool = True,
    with_worker: bool = False,
) -> AsyncIterator[AliveService]:
    """Open everything a process needs, and close it in reverse order on the way out.

    Args:
        settings: this process's settings.
        services: services already built (tests), else built here.
        with_runner: embedded mode: start the in-process job workers.
        with_worker: distributed mode: also take jobs from Redis in this process.
    """
    if services is None:
        services = await asyncio.to_thread(build_services, settings)
    await asyncio.to_thread(services.warm_up)
    clips = ClipStore(settings.data_dir / "clips")
    # Retention runs in every process that keeps clips, in both modes.
    sweeper = asyncio.create_task(_sweep_forever(clips, settings.retention.clip_days))
    try:
        if settings.redis_url:
            async with _distributed(settings, services, clips, with_worker) as service:
                yield service
            return
        runner = EmbeddedRunner(
            services.db,
            settings.data_dir / "jobs",
            clips,
            partial(_run_job, services),
            settings.jobs.concurrency,
        )
        try:
            if with_runner:
                await runner.start()
            yield AliveService(services, runner, clips)
        finally:
            await runner.close()
            services.close()
    finally:
        sweeper.cancel()


@contextlib.asynccontextmanager
async def _distributed(
    settings: Settings, services: Services, clips: ClipStore, with_worker: bool
) -> AsyncIterator[AliveService]:
    """Open the Redis runner (and an in-process worker when asked)."""
    from core.jobs import ArqRunner
    from core.worker import run_worker

    runner = ArqRunner(settings, clips)
    stop = asyncio.Event()
    worker = None
    try:
        await runner.start()
        if with_worker:
            worker = asyncio.create_task(run_worker(settings, stop, services=services))
        yield AliveService(services, runner, clips)
    finally:
        stop.set()
        if worker is not None:
            await asyncio.gather(worker, return_exceptions=True)
        await runner.close()
        services.close()


def _run_job(services: Services, request: JobRequest, progress: ProgressCallback) -> Outcome:
    return pipeline.run(request, services, progress)


async def _sweep_forever(clips: ClipStore, days: float) -> None:
    """Delete expired clips now and every hour."""
    while True:
        await asyncio.to_thread(clips.sweep, days)
        await asyncio.sleep(RETENTION_SWEEP_S)


__all__: Sequence[str] = ["AliveService", "open_service"]

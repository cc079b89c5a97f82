"""The ``alive worker`` process: takes jobs from the Redis queue and runs the pipeline on them.

``on_startup`` builds the services (models, signer, shared state) once into arq's ``ctx``. A job
holds a lease (arq's in-progress key) that it renews while it runs; a worker killed mid-job lets
the lease lapse, and another worker runs the job again. The first run to finish stores the
outcome; a later run finds it and stops. Retries happen here only: a transient error becomes
arq's ``Retry``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import threading
from collections.abc import Sequence
from typing import Any

from core import pipeline
from core.errors import BackendError, BackendUnavailable, JobCancelled
from core.jobs import (
    IN_PROGRESS_PREFIX,
    JOB_FUNCTION,
    STORE_OUTCOME,
    key,
    redis_settings,
    status_to_json,
    store_failure,
)
from core.metrics import record_job
from core.ports import Ledger
from core.provenance.ledger import LEDGER_ID_BITS
from core.runner import error_code
from core.serialize import chat_from_dict, outcome_to_json, spec_from_dict
from core.services import Services
from core.settings import Settings
from core.types import JobRequest, JobState, JobStatus, LedgerEntry, Outcome, Photo, Progress

log = logging.getLogger(__name__)

STEP_CALL_TIMEOUT_S = 30.0  # a progress write that takes longer means Redis is gone


def is_transient(exc: BaseException) -> bool:
    """Whether a failure may pass if the job runs again (a backend hiccup, a lost connection)."""
    if isinstance(exc, BackendUnavailable):
        return False
    return isinstance(exc, BackendError | ConnectionError | TimeoutError)


def ledger_id_for(job_id: str) -> str:
    """Return the ledger id of a job's clip: the same for every run of the job."""
    digest = hashlib.sha256(f"alive-ledger:{job_id}".encode()).hexdigest()
    return digest[: LEDGER_ID_BITS // 4]


@dataclasses.dataclass(frozen=True, slots=True)
class JobLedger:
    """The ledger as one job sees it: its clip's id comes from the job id.

    arq runs a job again when its worker dies; a run that died after recording its clip would
    otherwise leave an orphan entry beside the re-run's. With one id per job, the re-run
    writes the same entry again.
    """

    inner: Ledger
    job_id: str

    def new_id(self) -> str:
        """Return the job's ledger id (a 48-bit collision with another clip is not expected)."""
        return ledger_id_for(self.job_id)

    def record(self, entry: LedgerEntry) -> None:
        """Store (or store again) the job's entry."""
        self.inner.record(entry)

    def get(self, ledger_id: str) -> LedgerEntry | None:
        """Return an entry, or None."""
        return self.inner.get(ledger_id)

    def nearest(self, fingerprints: Sequence[str], max_distance: int) -> tuple[str, int] | None:
        """Return the closest entry by fingerprint."""
        return self.inner.nearest(fingerprints, max_distance)

    def revoke(self, ledger_id: str, reason: str) -> bool:
        """Mark an entry taken down."""
        return self.inner.revoke(ledger_id, reason)


async def animate_job(ctx: dict[str, Any], payload: dict[str, Any], photo: bytes) -> str:
    """Run one job (arq's job function); return a word for arq's log."""
    from arq.worker import Retry

    settings: Settings = ctx["settings"]
    job_id: str = ctx["job_id"]
    redis, ttl = ctx["redis"], settings.queue.result_ttl_s
    if await redis.exists(key(job_id, "outcome")):
        return "already done"  # a re-run of a job whose first run stored its outcome
    if await redis.exists(key(job_id, "cancel")):
        await store_failure(redis, job_id, "cancelled", ttl)
        return "cancelled"
    request = JobRequest(
        photo=Photo(photo, payload["filename"]),
        spec=spec_from_dict(payload["spec"]),
        chat=chat_from_dict(payload["chat"]),
        max_bytes=payload["max_bytes"],
        job_id=job_id,
    )
    lease = asyncio.create_task(_hold_lease(redis, job_id, settings.queue.lease_s))
    try:
        outcome = await _run(ctx, job_id, request)
    except JobCancelled:
        await store_failure(redis, job_id, "cancelled", ttl)
        record_job(None, "cancelled")
        return "cancelled"
    except Exception as exc:
        if is_transient(exc) and ctx["job_try"] < settings.queue.max_tries:
            log.warning("job %s: transient failure, retrying", job_id, exc_info=exc)
            raise Retry(defer=settings.queue.retry_defer_s) from exc
        log.error("job %s failed", job_id, exc_info=exc)
        await store_failure(redis, job_id, error_code(exc), ttl)
        record_job(None, error_code(exc))
        return "failed"
    finally:
        lease.cancel()
    record_job(outcome)
    return await _store_outcome(redis, job_id, outcome, ttl)


async def _run(ctx: dict[str, Any], job_id: str, request: JobRequest) -> Outcome:
    """Run the pipeline in a thread, publishing progress; stop at the next step when asked."""
    settings: Settings = ctx["settings"]
    redis, loop = ctx["redis"], asyncio.get_running_loop()
    stop = threading.Event()

    def progress(event: Progress) -> None:
        if stop.is_set():
            raise JobCancelled(job_id)
        future = asyncio.run_coroutine_threadsafe(_publish(redis, job_id, event, settings), loop)
        if future.result(timeout=STEP_CALL_TIMEOUT_S):
            stop.set()
            raise JobCancelled(job_id)

    timeout = settings.queue.backend_timeout_s.get(
        settings.animation.backend, settings.queue.job_timeout_s
    )
    services = dataclasses.replace(
        ctx["services"], ledger=JobLedger(ctx["services"].ledger, job_id)
    )
    work = asyncio.to_thread(pipeline.run, request, services, progress)
    try:
        return await asyncio.wait_for(work, timeout)
    except BaseException:
        stop.set()  # a timeout or a shutdown: the thread stops at its next step
        raise


async def _publish(redis: Any, job_id: str, event: Progress, settings: Settings) -> bool:
    """Record a progress event; return whether someone cancelled the job."""
    ttl = settings.queue.result_ttl_s
    status = status_to_json(JobStatus(job_id, JobState.RUNNING, event))
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(key(job_id, "status"), status, ex=ttl)
        pipe.xadd(key(job_id, "events"), {"kind": "progress", "step": event.step}, maxlen=100)
        pipe.expire(key(job_id, "events"), ttl)
        pipe.exists(key(job_id, "cancel"))
        *_, cancelled = await pipe.execute()
    return bool(cancelled)


async def _hold_lease(redis: Any, job_id: str, lease_s: float) -> None:
    """Renew the job's in-progress key while the job runs (a third of the lease at a time)."""
    while True:
        await redis.pexpire(IN_PROGRESS_PREFIX + job_id, int(lease_s * 1000))
        await asyncio.sleep(lease_s / 3)


async def _store_outcome(redis: Any, job_id: str, outcome: Outcome, ttl: int) -> str:
    clip = outcome.clip
    done = JobStatus(job_id, JobState.DONE, Progress("done", 1.0))
    keys = [key(job_id, p) for p in ("outcome", "clip", "poster", "status", "events")]
    args = [
        outcome_to_json(outcome),
        clip.data if clip else b"",
        clip.poster if clip else b"",
        status_to_json(done),
        ttl,
    ]
    stored = await redis.eval(STORE_OUTCOME, len(keys), *keys, *args)
    return "done" if stored else "done (an earlier run's outcome stands)"


async def _startup(ctx: dict[str, Any]) -> None:
    from core.services import build_services

    if "services" not in ctx:  # ``alive serve --with-worker`` passes its own
        ctx["services"] = await asyncio.to_thread(build_services, ctx["settings"])
        ctx["owns_services"] = True
        await asyncio.to_thread(ctx["services"].warm_up)
    log.info("worker ready")


async def _shutdown(ctx: dict[str, Any]) -> None:
    services = ctx.pop("services", None)
    if services is not None and ctx.get("owns_services"):
        services.close()


def worker_settings(settings: Settings) -> dict[str, Any]:
    """Return arq ``Worker`` arguments (its ``WorkerSettings``) for these settings."""
    from arq.worker import func

    q = settings.queue
    timeout = max([q.job_timeout_s, *q.backend_timeout_s.values()])
    return {
        # arq's own timeout is a backstop; ``_run`` times the pipeline out per backend.
        "functions": [func(animate_job, name=JOB_FUNCTION, timeout=timeout + 30)],
        "on_startup": _startup,
        "on_shutdown": _shutdown,
        "redis_settings": redis_settings(settings.redis_url),
        "ctx": {"settings": settings},
        "poll_delay": q.poll_delay_s,
        "max_jobs": settings.jobs.concurrency,
        "max_tries": q.max_tries,
        "retry_jobs": True,
        "keep_result": q.result_ttl_s,
        "handle_signals": False,
    }


async def run_worker(
    settings: Settings,
    stop: asyncio.Event,
    *,
    burst: bool = False,
    services: Services | None = None,
) -> None:
    """Take jobs until ``stop`` is set (or, with ``burst``, until the queue is empty).

    Args:
        settings: the worker's settings (``redis_url`` must be set).
        stop: set to finish: running jobs are cancelled and go back to the queue.
        burst: stop once the queue is empty (benchmarks).
        services: services to share with the caller; built (and closed) here when None.
    """
    from arq.connections import create_pool
    from arq.worker import Worker

    options = worker_settings(settings)
    if services is not None:
        options["ctx"]["services"] = services
    pool = await create_pool(options["redis_settings"])
    worker = Worker(**options, redis_pool=pool, burst=burst)
    # NOTE: arq's lease is its longest timeout + 10 s; ours is renewed while a job runs, so a
    # dead worker's job is run again after ``lease_s`` instead of after the job timeout.
    worker.in_progress_timeout_s = settings.queue.lease_s
    main = asyncio.create_task(worker.main())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({main, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        main.cancel()
        await asyncio.gather(main, return_exceptions=True)
        # Running jobs are cancelled (arq puts them back on the queue); awaited here because
        # ``Worker.close`` gathers them without catching their cancellation.
        for task in worker.tasks.values():
            task.cancel()
        await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
        worker.tasks.clear()
        try:
            await worker.close()
        finally:
            await pool.aclose(close_connection_pool=True)
    if main.done() and not main.cancelled() and (error := main.exception()) is not None:
        raise error


__all__ = ["animate_job", "run_worker", "worker_settings"]

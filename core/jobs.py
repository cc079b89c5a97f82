"""The distributed runner: adapters enqueue jobs on Redis with arq, and follow them over Redis.

Keys of one job (all expire after ``queue.result_ttl_s``)::

    alive:job:<id>:status    JSON snapshot: state, step, fraction, error code
    alive:job:<id>:events    a stream of progress events, ending with an ``end`` entry
    alive:job:<id>:outcome   the outcome as JSON (written once: the first finished run wins)
    alive:job:<id>:clip      the signed clip's bytes, and ``:poster`` its poster frame
    alive:job:<id>:cancel    set by ``cancel``; the job checks it between steps

arq runs the job function (``core.worker.animate_job``) on any ``alive worker``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from core.clips import ClipStore
from core.errors import JobFailed
from core.serialize import outcome_from_json, spec_to_dict
from core.settings import Settings
from core.types import JobRequest, JobState, JobStatus, Outcome, Progress

if TYPE_CHECKING:
    from arq.connections import ArqRedis, RedisSettings

log = logging.getLogger(__name__)

JOB_FUNCTION = "animate_job"
QUEUE_NAME = "arq:queue"  # NOTE: arq's default queue name (arq.constants.default_queue_name)
IN_PROGRESS_PREFIX = "arq:in-progress:"  # NOTE: arq.constants.in_progress_key_prefix
FOLLOW_BLOCK_MS = 1000  # how long one stream read waits before the runner looks at arq itself
FINISHED = (JobState.DONE, JobState.FAILED)

# Store a finished run atomically, unless another run of the same job already did.
STORE_OUTCOME = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local ttl = tonumber(ARGV[5])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
redis.call('SET', KEYS[2], ARGV[2], 'EX', ttl)
redis.call('SET', KEYS[3], ARGV[3], 'EX', ttl)
redis.call('SET', KEYS[4], ARGV[4], 'EX', ttl)
redis.call('XADD', KEYS[5], '*', 'kind', 'end')
redis.call('EXPIRE', KEYS[5], ttl)
return 1
"""

# Fail a job once, unless it already has an outcome or a failure.
STORE_FAILURE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local status = redis.call('GET', KEYS[2])
if status and cjson.decode(status)['state'] == 'failed' then return 0 end
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[2], ARGV[1], 'EX', ttl)
redis.call('XADD', KEYS[3], '*', 'kind', 'end')
redis.call('EXPIRE', KEYS[3], ttl)
return 1
"""


def key(job_id: str, part: str) -> str:
    """Return the Redis key of one part of a job."""
    return f"alive:job:{job_id}:{part}"


def job_id_for(request: JobRequest) -> str:
    """Return the job id: derived from the idempotency key, so a duplicate maps to the same job."""
    if request.idempotency_key:
        return hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:16]
    return secrets.token_hex(8)


def status_to_json(status: JobStatus) -> str:
    """Serialise a status snapshot without its outcome (stored under its own key)."""
    progress = asdict(status.progress) if status.progress else None
    return json.dumps(
        {"state": status.state, "progress": progress, "error_code": status.error_code}
    )


def status_from_json(job_id: str, text: str | bytes, outcome: Outcome | None = None) -> JobStatus:
    """Rebuild a status snapshot."""
    data = json.loads(text)
    progress = Progress(**data["progress"]) if data["progress"] else None
    return JobStatus(job_id, JobState(data["state"]), progress, outcome, data["error_code"])


def redis_settings(url: str) -> RedisSettings:
    """Return arq's connection settings, retrying through a Redis restart (about 30 s)."""
    from arq.connections import RedisSettings
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError, TimeoutError

    base = RedisSettings.from_dsn(url)
    # NOTE: 60 tries capped at 0.5 s each ride out a restart of a few seconds (AOF replay).
    base.retry = Retry(ExponentialBackoff(cap=0.5, base=0.02), retries=60)
    base.retry_on_error = [ConnectionError, TimeoutError]
    base.conn_retries = 30
    return base


async def store_failure(redis: Any, job_id: str, code: str, ttl: int) -> bool:
    """Fail a job with ``code`` once; return whether this call did it."""
    status = status_to_json(JobStatus(job_id, JobState.FAILED, Progress("done", 1.0), None, code))
    keys = [key(job_id, "outcome"), key(job_id, "status"), key(job_id, "events")]
    return bool(await redis.eval(STORE_FAILURE, 3, *keys, status, ttl))


class ArqHandle:
    """A job on the Redis queue: a status snapshot that refreshes as the job is followed."""

    def __init__(self, runner: ArqRunner, status: JobStatus) -> None:
        self.id = status.id
        self._runner = runner
        self._status = status

    def status(self) -> JobStatus:
        """Return the latest snapshot (refreshed by ``runner.get``, ``events`` and ``result``)."""
        return self._status

    async def events(self) -> AsyncIterator[Progress]:
        """Yield progress events until the job ends."""
        async for status in self._runner.follow(self.id):
            self._status = status
            if status.state in FINISHED:
                return
            if status.progress:
                yield status.progress

    async def result(self) -> Outcome:
        """Wait for the job; return its outcome or raise ``JobFailed``."""
        if self._status.state not in FINISHED:
            async for status in self._runner.follow(self.id):
                self._status = status
        if self._status.outcome is None:
            raise JobFailed(self._status.error_code or "internal")
        return self._status.outcome


class ArqRunner:
    """The Runner port over arq: idempotent enqueue, progress and results through Redis."""

    def __init__(self, settings: Settings, clips: ClipStore) -> None:
        self._settings = settings
        self._ttl = settings.queue.result_ttl_s
        self._clips = clips
        self._pool: ArqRedis | None = None

    async def start(self) -> None:
        """Connect to Redis."""
        from arq.connections import create_pool

        if self._pool is not None:
            raise RuntimeError("runner already started")
        self._pool = await create_pool(redis_settings(self._settings.redis_url))

    async def close(self) -> None:
        """Disconnect."""
        if self._pool is not None:
            await self._pool.aclose(close_connection_pool=True)
            self._pool = None

    @property
    def redis(self) -> ArqRedis:
        """The connection pool (after ``start``)."""
        if self._pool is None:
            raise RuntimeError("runner not started")
        return self._pool

    async def submit(self, request: JobRequest) -> ArqHandle:
        """Enqueue a job under its idempotency key; a duplicate returns the job already queued."""
        job_id = job_id_for(request)
        payload = {
            "spec": spec_to_dict(request.spec),
            "chat": asdict(request.chat) if request.chat else None,
            "filename": request.photo.filename,
            "max_bytes": request.max_bytes,
        }
        job = await self.redis.enqueue_job(
            JOB_FUNCTION, payload, request.photo.data, _job_id=job_id
        )
        queued = JobStatus(job_id, JobState.QUEUED, Progress("queued", 0.0))
        # NX: a worker may already have marked it running.
        await self.redis.set(key(job_id, "status"), status_to_json(queued), ex=self._ttl, nx=True)
        if job is None:
            log.info("job %s: duplicate request, following the job already accepted", job_id)
        handle = await self.get(job_id)
        assert handle is not None
        return handle

    async def get(self, job_id: str) -> ArqHandle | None:
        """Return a handle with a fresh snapshot, or None for an unknown or expired job."""
        status = await self._snapshot(job_id)
        return ArqHandle(self, status) if status else None

    async def queue_depth(self) -> int:
        """Return how many jobs wait on the Redis queue (for every worker)."""
        return int(await self.redis.zcard(QUEUE_NAME))

    async def cancel(self, job_id: str) -> bool:
        """Cancel a queued job at once, or a running one at its next step."""
        status = await self._snapshot(job_id)
        if status is None or status.state in FINISHED:
            return False
        await self.redis.set(key(job_id, "cancel"), b"1", ex=self._ttl)
        if not await self.redis.exists(IN_PROGRESS_PREFIX + job_id) and await self.redis.zrem(
            QUEUE_NAME, job_id
        ):
            await self.redis.delete(f"arq:job:{job_id}")
            await store_failure(self.redis, job_id, "cancelled", self._ttl)
        log.info("job %s cancelled", job_id)
        return True

    async def follow(self, job_id: str) -> AsyncIterator[JobStatus]:
        """Yield a snapshot at every progress event (and each second) until the job ends."""
        last_id: bytes | str = "0-0"
        last: JobStatus | None = None
        while True:
            status = await self._snapshot(job_id)
            if status is None:
                status = JobStatus(job_id, JobState.FAILED, None, None, "lost")
            if status.state not in FINISHED and await self._arq_gave_up(job_id):
                status = JobStatus(job_id, JobState.FAILED, status.progress, None, "internal")
            if status != last:
                yield status
                last = status
            if status.state in FINISHED:
                return
            streams = await self.redis.xread(
                {key(job_id, "events"): last_id}, count=100, block=FOLLOW_BLOCK_MS
            )
            for _, entries in streams or ():
                last_id = entries[-1][0]

    async def _snapshot(self, job_id: str) -> JobStatus | None:
        parts = ("status", "outcome", "clip", "poster")
        text, outcome_text, clip, poster = await self.redis.mget([key(job_id, p) for p in parts])
        if text is None:
            return None
        outcome = None
        if outcome_text is not None:
            outcome = outcome_from_json(outcome_text, clip or b"", poster or b"")
            if outcome.clip and clip and not self._clips.path(outcome.clip.ledger_id).exists():
                # The web page serves clips from this process's own clip store.
                await asyncio.to_thread(self._clips.save, outcome.clip.ledger_id, clip)
            return JobStatus(job_id, JobState.DONE, Progress("done", 1.0), outcome)
        status = status_from_json(job_id, text)
        if status.state is JobState.QUEUED:
            rank = await self.redis.zrank(QUEUE_NAME, job_id)
            position = (rank + 1) if rank is not None else 0
            status = JobStatus(job_id, JobState.QUEUED, Progress("queued", 0.0, position))
        return status

    async def _arq_gave_up(self, job_id: str) -> bool:
        """Whether arq finished the job without our function storing an end (tries, expiry)."""
        from arq.jobs import Job
        from arq.jobs import JobStatus as ArqStatus

        state = await Job(job_id, self.redis).status()
        if state is not ArqStatus.complete:
            return False
        # Our function writes its outcome or failure before arq stores its result.
        return not await self.redis.exists(key(job_id, "outcome")) and (
            (await self._snapshot_state(job_id)) not in FINISHED
        )

    async def _snapshot_state(self, job_id: str) -> Any:
        text = await self.redis.get(key(job_id, "status"))
        return status_from_json(job_id, text).state if text else None

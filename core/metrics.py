"""Prometheus metrics of the flow: each is recorded in one place and served on ``/metrics``.

Where each metric is recorded:

- ``alive_queue_depth``: read from the runner when ``/metrics`` is scraped (``set_queue_depth``).
- ``alive_jobs_total`` and ``alive_step_seconds``: where a run ends (``record_job``), in the
  embedded runner and in the ``alive worker`` job function, from the outcome's step timings.
- ``alive_rejections_total``: the same place, from a rejecting outcome's reason code.
- ``alive_verify_total``: ``AliveService.verify`` (``record_verify``).
- ``alive_platform_errors_total``: each adapter's one error handler (``record_platform_error``).

Metrics live in the process that records them: in distributed mode the step timings and
rejections are a worker's, served by ``alive worker --metrics-port``.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, REGISTRY, Counter, Gauge, Histogram
from prometheus_client import generate_latest as _generate_latest

from core.types import Outcome, VerifyReport

# NOTE: from a fraction of a second (checks, signing) up to the GPU job timeout (~10 min).
STEP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

QUEUE_DEPTH = Gauge("alive_queue_depth", "Jobs accepted and waiting for a worker.")
JOBS = Counter("alive_jobs", "Jobs that ended, by result (ok, rejected, failed).", ["result"])
STEP_SECONDS = Histogram(
    "alive_step_seconds", "Seconds each pipeline step took.", ["step"], buckets=STEP_BUCKETS
)
REJECTIONS = Counter(
    "alive_rejections", "Jobs refused by a moderation check, by reason code.", ["code", "stage"]
)
VERIFY = Counter("alive_verify", "Files verified, by verdict.", ["verdict"])
PLATFORM_ERRORS = Counter(
    "alive_platform_errors", "Errors an adapter's error handler caught.", ["platform"]
)

# NOTE: text format 0.0.4, which every Prometheus version scrapes; our names need none of
# 1.0.0's UTF-8 escaping (prometheus_client.exposition).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""The media type of ``generate``'s text (Prometheus text exposition format)."""


def record_job(outcome: Outcome | None, error_code: str = "") -> None:
    """Count a finished run: its result, its steps' timings, and a rejection's reason code."""
    if outcome is None:
        JOBS.labels("cancelled" if error_code == "cancelled" else "failed").inc()
        return
    JOBS.labels(outcome.status).inc()
    for step, seconds in outcome.timings.items():
        STEP_SECONDS.labels(step).observe(seconds)
    if not outcome.ok:
        REJECTIONS.labels(outcome.verdict.code, outcome.verdict.stage.value).inc()


def record_verify(report: VerifyReport) -> None:
    """Count one verify by its verdict."""
    VERIFY.labels(report.verdict.kind.value).inc()


def record_platform_error(platform: str) -> None:
    """Count one error caught by an adapter's error handler."""
    PLATFORM_ERRORS.labels(platform).inc()


def set_queue_depth(depth: int) -> None:
    """Set the queue depth (read from the runner when metrics are scraped)."""
    QUEUE_DEPTH.set(depth)


def generate() -> bytes:
    """Return every metric of this process in the Prometheus text format."""
    return _generate_latest(REGISTRY)


__all__ = [
    "CONTENT_TYPE",
    "generate",
    "record_job",
    "record_platform_error",
    "record_verify",
    "set_queue_depth",
]

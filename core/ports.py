"""The small interfaces the pipeline calls; each implementation lives in its own module.

CPU- and GPU-bound ports are plain sync methods; the pipeline runs them off the event loop.
I/O ports (the runner) are ``async``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol, TypeAlias

from core.types import (
    Claim,
    ClipSpec,
    Credentials,
    Frames,
    Image,
    JobRequest,
    JobStatus,
    LedgerEntry,
    Outcome,
    Progress,
    Verdict,
)

ProgressCallback: TypeAlias = Callable[[Progress], None]
"""Called by the pipeline (from a worker thread) as each step starts."""


class PhotoCheck(Protocol):
    """A moderation check on the validated input photo."""

    name: str

    def check(self, image: Image) -> Verdict:
        """Return an allowing verdict, or a rejecting one with a reason code."""
        ...


class PromptCheck(Protocol):
    """A moderation check on the prompt text (may be empty)."""

    name: str

    def check(self, prompt: str) -> Verdict:
        """Return an allowing verdict, or a rejecting one with a reason code."""
        ...


class FramesCheck(Protocol):
    """A moderation check on the animated frames, before anything is sent."""

    name: str

    def check(self, frames: Frames) -> Verdict:
        """Return an allowing verdict, or a rejecting one with a reason code."""
        ...


class Animator(Protocol):
    """Turns one photo into frames; one backend per module in ``core/animation``.

    Attributes:
        name: backend name recorded in the ledger and the manifest (``"procedural"``).
        model: model name and version (``"procedural-1"``).
    """

    name: str
    model: str

    def animate(self, image: Image, spec: ClipSpec) -> Frames:
        """Return ``spec.frame_count`` frames whose long edge is about ``spec.size``, even sizes."""
        ...


class FrameStep(Protocol):
    """A step that changes frames after moderation (label, watermark)."""

    name: str

    def apply(self, frames: Frames, ledger_id: str) -> Frames:
        """Return new frames; ``ledger_id`` is the id the clip will carry."""
        ...


class Fingerprinter(Protocol):
    """Computes perceptual hashes of a clip's keyframes or of an image."""

    def fingerprint(self, frames: Frames) -> tuple[str, ...]:
        """Return hex hashes, one per keyframe."""
        ...


class WatermarkReader(Protocol):
    """Decodes the invisible ledger id from frames, if present."""

    def read(self, frames: Frames) -> str:
        """Return the ledger id, or ``""`` when no valid id decodes."""
        ...


class Encoder(Protocol):
    """Turns frames into a playable file."""

    def encode(self, frames: Frames, max_bytes: int) -> bytes:
        """Return H.264 High, yuv420p, constant-rate MP4 bytes, moov first.

        The result leaves room for the manifest under ``max_bytes``; quality and then size are
        lowered only as far as needed to fit.
        """
        ...


class Signer(Protocol):
    """Signs a finished file with C2PA Content Credentials; the last byte-changing step."""

    def sign(self, video: bytes, claim: Claim) -> tuple[bytes, str]:
        """Return the signed bytes and the manifest label; raise ``ProvenanceError`` on failure."""
        ...


class CredentialReader(Protocol):
    """Reads and validates Content Credentials, never fetching anything over the network."""

    def read(self, data: bytes) -> Credentials:
        """Return what the C2PA layer says about ``data``."""
        ...


class Ledger(Protocol):
    """Remembers the clips this service made (hashes only) and their takedowns."""

    def new_id(self) -> str:
        """Return a fresh ledger id that fits in the watermark."""
        ...

    def record(self, entry: LedgerEntry) -> None:
        """Store an entry."""
        ...

    def get(self, ledger_id: str) -> LedgerEntry | None:
        """Return the entry, or None."""
        ...

    def nearest(self, fingerprints: Sequence[str], max_distance: int) -> tuple[str, int] | None:
        """Return the ledger id and Hamming distance of the closest fingerprint, or None."""
        ...

    def revoke(self, ledger_id: str, reason: str) -> bool:
        """Mark an entry taken down; return whether it existed."""
        ...


class JobHandle(Protocol):
    """A submitted job: its id, its progress, and its outcome once done."""

    id: str

    def status(self) -> JobStatus:
        """Return a snapshot: state, latest progress, outcome when done."""
        ...

    def events(self) -> AsyncIterator[Progress]:
        """Yield progress events until the job ends."""
        ...

    async def result(self) -> Outcome:
        """Wait for and return the outcome; raises the job's failure."""
        ...


class Runner(Protocol):
    """Runs jobs somewhere: in this process (embedded) or on workers (Redis)."""

    async def submit(self, request: JobRequest) -> JobHandle:
        """Accept a job (idempotent on ``request.idempotency_key``) and return its handle."""
        ...

    async def get(self, job_id: str) -> JobHandle | None:
        """Return the handle of a known job, or None."""
        ...

    async def cancel(self, job_id: str) -> bool:
        """Stop a queued or running job; it then fails with code ``"cancelled"``.

        Returns False when the job had already ended or is unknown.
        """
        ...

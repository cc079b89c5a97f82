"""The small interfaces the pipeline calls; each implementation lives in its own module.

CPU- and GPU-bound ports are plain sync methods; the pipeline runs them off the event loop.
I/O ports (the runner) are ``async``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, TypeAlias

from core.types import (
    ChatRef,
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

if TYPE_CHECKING:
    from core.community import ChatSettings, ClipMessage, ConsentRequest, PendingReply, Report

ProgressCallback: TypeAlias = Callable[[Progress], None]
"""Called by the pipeline (from a worker thread) as each step starts."""

StepCallback: TypeAlias = Callable[[int, int], None]
"""Called by an animator with ``(done, total)`` after each of its inner steps (denoising steps).

It may raise ``JobCancelled``; the animator lets that propagate, so a cancel stops the work.
"""


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

    def animate(self, image: Image, spec: ClipSpec, on_step: StepCallback | None = None) -> Frames:
        """Return ``spec.frame_count`` frames whose long edge is about ``spec.size``, even sizes.

        ``on_step`` reports progress inside a long animation; a quick animator may ignore it.
        """
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

    async def queue_depth(self) -> int:
        """Return how many accepted jobs wait to start (for the metrics)."""
        ...


class AuditTrail(Protocol):
    """Appends audit records: moderation decisions and take-downs (hashes and codes only)."""

    def verdict(
        self,
        verdict: Verdict,
        *,
        source_sha256: str,
        prompt_sha256: str,
        chat: ChatRef | None,
        request_ref: str = "",
    ) -> None:
        """Record a moderation decision; ``request_ref`` links it to an appeal of the job."""
        ...

    def write(self, kind: str, record: Mapping[str, object]) -> None:
        """Append one record of ``kind``."""
        ...

    def records(self, kind: str | None = None) -> list[dict[str, object]]:
        """Return records, oldest first."""
        ...

    def find(self, kind: str, request_ref: str) -> dict[str, object] | None:
        """Return the newest record of ``kind`` written for ``request_ref``, or None."""
        ...


class CommunityState(Protocol):
    """Chat settings, quotas, consent requests, reports and sent clips (``core.community``)."""

    def chat_settings(self, platform: str, chat_id: str) -> ChatSettings:
        """Return a chat's settings, or the defaults."""
        ...

    def save_chat_settings(self, platform: str, chat_id: str, settings: ChatSettings) -> None:
        """Store a chat's settings."""
        ...

    def take_quota(
        self, platform: str, chat_id: str, user_id: str, day: str, user_limit: int, chat_limit: int
    ) -> bool:
        """Count one clip for the user and the chat if both are under their limits."""
        ...

    def take_quota_once(
        self,
        key: str,
        platform: str,
        chat_id: str,
        user_id: str,
        day: str,
        user_limit: int,
        chat_limit: int,
    ) -> str:
        """Count one clip unless ``key`` was counted before: ``"seen"``, ``"taken"``, ``"over"``."""
        ...

    def give_back_quota(self, platform: str, chat_id: str, user_id: str, day: str) -> None:
        """Undo one ``take_quota``."""
        ...

    def quota_used(self, platform: str, chat_id: str, user_id: str, day: str) -> int:
        """Return how many clips a user (or the whole chat) made on ``day``."""
        ...

    def create_consent(self, request: ConsentRequest) -> ConsentRequest:
        """Store a pending consent request under a fresh id."""
        ...

    def get_consent(self, consent_id: str) -> ConsentRequest | None:
        """Return a consent request, or None."""
        ...

    def decide_consent(
        self, consent_id: str, owner_id: str, allowed: bool
    ) -> ConsentRequest | None:
        """Record the owner's answer once."""
        ...

    def add_report(self, report: Report) -> Report | None:
        """Queue a report or appeal; None if this person already filed it."""
        ...

    def reports_since(
        self, platform: str, reporter_id: str, since: float, kind: str | None = None
    ) -> int:
        """Return how many reports a person filed since a UNIX time."""
        ...

    def get_report(self, report_id: int) -> Report | None:
        """Return a queue item, or None."""
        ...

    def open_reports(self, platform: str) -> list[Report]:
        """Return the open queue items of a platform, oldest first."""
        ...

    def resolve_report(self, report_id: int, state: str, moderator_id: str) -> Report | None:
        """Close an open item; None if unknown or already resolved."""
        ...

    def record_clip_message(self, message: ClipMessage) -> None:
        """Remember where a clip was sent."""
        ...

    def clip_at(self, platform: str, chat_id: str, message_id: str) -> ClipMessage | None:
        """Return the clip sent as a given message, or None."""
        ...

    def clip_messages(self, ledger_id: str) -> list[ClipMessage]:
        """Return every message a clip was sent as."""
        ...

    def forget_clip_message(self, platform: str, chat_id: str, message_id: str) -> None:
        """Forget a message that was deleted."""
        ...

    def claim_delivery(self, job_id: str, platform: str, chat_id: str) -> bool:
        """Record that a job's clip is about to be sent; False if it was claimed already."""
        ...

    def release_delivery(self, job_id: str) -> None:
        """Forget a delivery claim whose send surely failed."""
        ...

    def delivered(self, job_id: str) -> bool:
        """Return whether a job's clip was claimed for sending."""
        ...

    def save_pending_reply(self, reply: PendingReply) -> None:
        """Record (or update the target of) a reply owed for an accepted job."""
        ...

    def pending_replies(self, platform: str) -> list[PendingReply]:
        """Return the replies a platform still owes, oldest first."""
        ...

    def forget_pending_reply(self, platform: str, job_id: str) -> None:
        """Forget a reply that was posted (or can no longer be)."""
        ...


class Store(Protocol):
    """Where adapters and workers keep shared state: SQLite (embedded) or Redis (distributed)."""

    @property
    def ledger(self) -> Ledger:
        """The clips made and their take-downs."""
        ...

    @property
    def community(self) -> CommunityState:
        """Chat settings, quotas, consent, reports, sent clips."""
        ...

    @property
    def audit(self) -> AuditTrail:
        """The audit log."""
        ...

    def ping(self) -> bool:
        """Return whether the state is reachable (for readiness checks)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...

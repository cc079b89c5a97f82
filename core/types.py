"""Plain values that flow through the pipeline: no platform objects, nothing to pickle but data."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


class Stage(enum.StrEnum):
    """Where a verdict was reached."""

    INPUT = "input"
    PHOTO = "photo"
    PROMPT = "prompt"
    OUTPUT = "output"


class Camera(enum.StrEnum):
    """Camera moves a clip may ask for; ``AUTO`` lets the animator choose."""

    AUTO = "auto"
    NONE = "none"
    ZOOM_IN = "zoom_in"
    ZOOM_OUT = "zoom_out"
    PAN_LEFT = "pan_left"
    PAN_RIGHT = "pan_right"
    PAN_UP = "pan_up"
    PAN_DOWN = "pan_down"
    ORBIT = "orbit"


@dataclass(frozen=True, slots=True)
class ChatRef:
    """An opaque reference to where a request came from (``platform`` is e.g. ``"telegram"``)."""

    platform: str
    chat_id: str
    user_id: str = ""
    message_id: str = ""


@dataclass(frozen=True, slots=True)
class Photo:
    """A photo as received: raw bytes, before any decoding."""

    data: bytes
    filename: str = ""


@dataclass(frozen=True, slots=True)
class Image:
    """A validated, decoded photo: RGB pixels with EXIF orientation applied.

    Attributes:
        pixels: ``(H, W, 3)`` uint8 RGB array.
        format: the decoded container format (``"JPEG"``, ``"PNG"``, ``"WEBP"``, ``"HEIF"``).
        mime: the MIME type of the original bytes.
        sha256: hex digest of the original bytes.
    """

    pixels: NDArray[np.uint8]
    format: str
    mime: str
    sha256: str

    @property
    def width(self) -> int:
        """Width in pixels."""
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        """Height in pixels."""
        return int(self.pixels.shape[0])


@dataclass(frozen=True, slots=True)
class ClipSpec:
    """What the requester asked for.

    Attributes:
        prompt: free text, possibly empty (the animator then picks a subtle default).
        seconds: clip length.
        fps: frames per second (constant).
        size: long edge of the output in pixels (rounded to even dimensions).
        motion: motion strength, 0 (still) to 4 (strong).
        camera: a camera move, or ``AUTO``.
        loop: whether the last frame must flow into the first.
        seed: seed for anything random, so a retry gives the same clip.
    """

    prompt: str = ""
    seconds: float = 3.0
    fps: int = 24
    size: int = 512
    motion: int = 2
    camera: Camera = Camera.AUTO
    loop: bool = True
    seed: int = 0

    @property
    def frame_count(self) -> int:
        """Number of frames in the clip."""
        return max(2, round(self.seconds * self.fps))


@dataclass(frozen=True, slots=True)
class Frames:
    """A clip before encoding: ``(T, H, W, 3)`` uint8 RGB, even ``H`` and ``W``."""

    array: NDArray[np.uint8]
    fps: int

    @property
    def count(self) -> int:
        """Number of frames."""
        return int(self.array.shape[0])

    @property
    def height(self) -> int:
        """Frame height in pixels."""
        return int(self.array.shape[1])

    @property
    def width(self) -> int:
        """Frame width in pixels."""
        return int(self.array.shape[2])


@dataclass(frozen=True, slots=True)
class Verdict:
    """The result of one moderation check, or of a chain of them.

    Attributes:
        allowed: whether the input may go on.
        code: a stable reason code (``"ok"`` when allowed).
        stage: where the decision was made.
        check: the name of the check that decided.
        scores: named scores the check computed (for audit and tuning), never user data.
    """

    allowed: bool
    code: str = "ok"
    stage: Stage = Stage.PHOTO
    check: str = ""
    scores: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def ok(cls, stage: Stage, check: str, scores: Mapping[str, float] | None = None) -> Verdict:
        """An allowing verdict."""
        return cls(True, "ok", stage, check, dict(scores or {}))

    @classmethod
    def reject(
        cls, code: str, stage: Stage, check: str, scores: Mapping[str, float] | None = None
    ) -> Verdict:
        """A rejecting verdict with its reason code."""
        return cls(False, code, stage, check, dict(scores or {}))


@dataclass(frozen=True, slots=True)
class Claim:
    """What the signer states about a clip in its C2PA manifest.

    Attributes:
        ledger_id: our id for the clip (also in the watermark).
        title: the file name of the clip.
        software: the software agent (``"alive 0.1.0"``).
        backend: the animator backend name (``"procedural"``).
        model: the model name and version the backend used.
        source: the source photo bytes, added as an ``inputTo`` ingredient (hash, no thumbnail).
        source_mime: MIME type of the source photo.
        poster: a JPEG poster frame of the clip (the claim thumbnail), or ``b""`` for none.
        include_source_thumbnail: whether the chat opted in to a thumbnail of its photo.
    """

    ledger_id: str
    title: str
    software: str
    backend: str
    model: str
    source: bytes
    source_mime: str
    poster: bytes = b""
    include_source_thumbnail: bool = False


@dataclass(frozen=True, slots=True)
class Clip:
    """A finished, signed clip."""

    data: bytes
    width: int
    height: int
    fps: int
    frame_count: int
    ledger_id: str
    manifest_id: str
    poster: bytes = b""

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frame_count / self.fps


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a job ended with: a clip, or a rejection the adapter renders.

    Attributes:
        verdict: the deciding verdict (allowed for a clip).
        clip: the signed clip when allowed.
        note: the provenance note (caption) for the clip, or ``""``.
        timings: seconds per pipeline step, in order.
    """

    verdict: Verdict
    clip: Clip | None = None
    note: str = ""
    timings: Mapping[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether a clip was made."""
        return self.clip is not None

    @property
    def status(self) -> str:
        """``"ok"`` or ``"rejected"``."""
        return "ok" if self.ok else "rejected"


@dataclass(frozen=True, slots=True)
class JobRequest:
    """One animation request as a runner stores and queues it: plain data only.

    Attributes:
        photo: the photo as received.
        spec: what was asked for.
        chat: where it came from, if anywhere.
        idempotency_key: equal keys mean the same request (e.g. ``telegram:chat:message``).
        max_bytes: the largest clip the destination accepts (its upload limit); 0 means the
            configured ``encode.upload_limit_bytes``.
        job_id: the runner's id for the job, set as it runs, so the audit record of its
            moderation decision can be found by an appeal; empty outside a runner.
    """

    photo: Photo
    spec: ClipSpec
    chat: ChatRef | None = None
    idempotency_key: str = ""
    max_bytes: int = 0
    job_id: str = ""


@dataclass(frozen=True, slots=True)
class Progress:
    """A progress event of a running job: ``step`` name and a fraction 0..1 of the whole job."""

    step: str
    fraction: float
    queue_position: int = 0


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """What the service remembers about a clip it made: hashes, never content.

    Attributes:
        id: the ledger id (also carried by the watermark).
        created: UNIX time of creation.
        source_sha256: hash of the source photo bytes.
        prompt_sha256: hash of the prompt (``""`` when there was none); never the prompt itself.
        backend: animator backend.
        model: model name and version.
        fingerprints: perceptual hashes (hex) of the clip's keyframes.
        manifest_id: the C2PA manifest label of the clip.
        clip_sha256: hash of the signed clip bytes.
        chat: where the request came from.
        revoked: whether a moderator took the clip down.
        revoked_reason: why, in a few words.
        revoked_at: UNIX time of the take-down (0 when not revoked, or unknown).
    """

    id: str
    created: float
    source_sha256: str
    prompt_sha256: str
    backend: str
    model: str
    fingerprints: tuple[str, ...]
    manifest_id: str
    clip_sha256: str
    chat: ChatRef | None = None
    revoked: bool = False
    revoked_reason: str = ""
    revoked_at: float = 0.0


class CredentialState(enum.StrEnum):
    """The C2PA state of a file, in the words verify uses."""

    TRUSTED = "trusted"  # intact and signed by a signer our trust anchors know
    VALID = "valid"  # intact, but the signer is unknown to us
    INVALID = "invalid"  # present but broken: tampered, expired, malformed
    NONE = "none"  # no Content Credentials found


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the C2PA layer of verify found.

    Attributes:
        state: trusted / valid / invalid / none.
        reasons: plain-words explanations of every failure code (empty when none).
        codes: the raw validation codes behind ``reasons``.
        ai_generated: whether the manifest declares AI generation (digitalSourceType).
        source_type: the digitalSourceType URI found, or ``""``.
        signer: who signed it (certificate subject / issuer name), or ``""``.
        signed_at: when, ISO 8601, if a time is known, else ``""``.
        software: the claim generator / software agent, or ``""``.
        manifest_id: the active manifest label, or ``""``.
        ledger_id: our ledger id if the manifest carries one, else ``""``.
    """

    state: CredentialState
    reasons: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    ai_generated: bool = False
    source_type: str = ""
    signer: str = ""
    signed_at: str = ""
    software: str = ""
    manifest_id: str = ""
    ledger_id: str = ""


class VerdictKind(enum.StrEnum):
    """The one answer verify gives about a file."""

    OURS_INTACT = "ours_intact"  # made here; our trusted credentials are intact
    OURS_STRIPPED_WATERMARK = "ours_stripped_watermark"  # made here; found by the watermark
    OURS_STRIPPED_FINGERPRINT = "ours_stripped_fingerprint"  # made here; found by fingerprint
    SIGNED_BY_OTHER = "signed_by_other"  # intact credentials of another signer
    ALTERED = "altered"  # credentials present but broken: changed after signing
    NONE = "none"  # no credentials and nothing of ours: proves nothing either way


@dataclass(frozen=True, slots=True)
class VerifyVerdict:
    """The single conclusion of verify, with what a reader needs to state it.

    Attributes:
        kind: which of the answers applies.
        made_at: UNIX time the clip was made (the ``ours_*`` kinds), else 0.
        ledger_id: our clip id (the ``ours_*`` kinds), else ``""``.
        confidence: how sure a fingerprint match is, 0..1 (1 for the other ``ours_*`` kinds).
        signer: who signed (``signed_by_other`` and ``altered``), else ``""``.
        trusted: whether our trust anchors know that signer.
        altered: what was changed, in plain words (``altered``).
        revoked: whether moderators took the clip down (any kind that found our ledger entry).
        revoked_at: when, UNIX time (0 if unknown).
    """

    kind: VerdictKind
    made_at: float = 0.0
    ledger_id: str = ""
    confidence: float = 0.0
    signer: str = ""
    trusted: bool = False
    altered: tuple[str, ...] = ()
    revoked: bool = False
    revoked_at: float = 0.0


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """Everything verify found about a file, layer by layer.

    Attributes:
        media: ``"image"``, ``"video"`` or ``"unknown"``.
        credentials: the C2PA layer.
        watermark_id: the ledger id decoded from the invisible watermark, or ``""``.
        fingerprint_id: the ledger id matched by perceptual fingerprint, or ``""``.
        fingerprint_distance: Hamming distance of that match (``-1`` when none).
        ledger: our ledger entry for the clip, when any layer led to one.
        unchecked: layers that could not be checked, in plain words.
        verdict: the one conclusion drawn from all layers.
    """

    media: str
    credentials: Credentials
    watermark_id: str = ""
    fingerprint_id: str = ""
    fingerprint_distance: int = -1
    ledger: LedgerEntry | None = None
    unchecked: tuple[str, ...] = ()
    verdict: VerifyVerdict = VerifyVerdict(VerdictKind.NONE)

    @property
    def ours(self) -> bool:
        """Whether any layer shows this is a clip this service made."""
        return self.ledger is not None

    @property
    def revoked(self) -> bool:
        """Whether a moderator took the clip down."""
        return self.ledger is not None and self.ledger.revoked


class JobState(enum.StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"  # finished with an outcome: a clip or a rejection
    FAILED = "failed"  # an error stopped it, or it was cancelled; nothing was sent


@dataclass(frozen=True, slots=True)
class JobStatus:
    """A snapshot of a job, for polling clients.

    Attributes:
        id: the job id.
        state: queued / running / done / failed.
        progress: the latest progress event.
        outcome: the outcome once ``state`` is done.
        error_code: a stable code when failed (``"internal"``, ``"provenance"``, ...).
    """

    id: str
    state: JobState
    progress: Progress | None = None
    outcome: Outcome | None = None
    error_code: str = ""

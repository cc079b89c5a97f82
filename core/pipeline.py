"""The whole flow, top to bottom: a photo in, a checked, labelled, watermarked, signed clip out.

Each numbered step calls one port from ``core.services``. A moderation rejection returns an
``Outcome`` carrying the verdict; a failure raises. Nothing changes the clip's bytes after step 8.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from core.audit import request_ref
from core.encode import video_size
from core.errors import InputError
from core.frames import poster_jpeg
from core.ports import ProgressCallback, StepCallback
from core.provenance.ledger import now
from core.provenance.note import provenance_note
from core.services import Services
from core.types import (
    Claim,
    Clip,
    Image,
    JobRequest,
    LedgerEntry,
    Outcome,
    Progress,
    Stage,
    Verdict,
)

log = logging.getLogger(__name__)

# NOTE: share of a typical job's time spent before each step starts, measured on 512x512
# clips; it only shapes the progress bar.
STEP_START = {
    "validate": 0.0,
    "moderate": 0.02,
    "animate": 0.05,
    "moderate_output": 0.25,
    "label_watermark": 0.3,
    "encode": 0.7,
    "sign": 0.9,
    "record": 0.95,
}


def run(request: JobRequest, s: Services, progress: ProgressCallback | None = None) -> Outcome:
    """Run one job through every step; CPU-bound, so callers run it off the event loop."""
    steps = _Steps(progress)
    spec, chat = request.spec, request.chat
    prompt_sha = hashlib.sha256(spec.prompt.encode()).hexdigest() if spec.prompt else ""
    ref = request_ref(request.job_id)  # lets an appeal find the decision; no content

    # 1. Validate: decode safely within the limits, before any heavy work.
    with steps("validate"):
        try:
            image = s.decode(request.photo, s.settings.limits)
        except InputError as exc:
            return steps.outcome(Verdict.reject(exc.code, Stage.INPUT, "limits"))

    # 2. Moderate the input: the prompt (cheap) first, then the photo.
    with steps("moderate"):
        passed: list[Verdict] = []  # allowing verdicts keep their scores (faces, for consent)
        verdict = _first_rejection((c.check(spec.prompt) for c in s.prompt_checks), passed)
        verdict = verdict or _first_rejection((c.check(image) for c in s.photo_checks), passed)
        verdict = verdict or Verdict.ok(Stage.PHOTO, "all", _scores(passed))
        s.audit.verdict(
            verdict, source_sha256=image.sha256, prompt_sha256=prompt_sha, chat=chat,
            request_ref=ref,
        )  # fmt: skip
    if not verdict.allowed:
        return steps.outcome(verdict)

    # 3. Animate.
    with steps("animate"):
        frames = s.animator.animate(image, spec, on_step=steps.within("animate"))

    # 4. Moderate the output: nothing unsafe is ever sent.
    with steps("moderate_output"):
        rejection = _first_rejection(c.check(frames) for c in s.output_checks)
        if rejection:
            s.audit.verdict(
                rejection, source_sha256=image.sha256, prompt_sha256=prompt_sha, chat=chat,
                request_ref=ref,
            )  # fmt: skip
    if rejection:
        return steps.outcome(rejection)

    # 5. Label + watermark: the visible badge, then the invisible ledger id; fingerprint the result.
    with steps("label_watermark"):
        ledger_id = s.ledger.new_id()
        for step in s.frame_steps:
            frames = step.apply(frames, ledger_id)
        fingerprints = s.fingerprinter.fingerprint(frames)

    # 6. Encode: H.264 that plays everywhere, within the destination's upload limit.
    with steps("encode"):
        video = s.encoder.encode(frames, request.max_bytes or s.settings.encode.upload_limit_bytes)
        # The encoder may have scaled the frames down to fit the limit; the clip says so.
        width, height = video_size(video)

    # 7. Sign: C2PA Content Credentials; the last step that changes bytes.
    with steps("sign"):
        claim = _claim(s, request, image, ledger_id, poster_jpeg(frames))
        signed, manifest_id = s.signer.sign(video, claim)

    # 8. Record: the ledger entry (hashes only) and the provenance note.
    with steps("record"):
        entry = LedgerEntry(
            id=ledger_id,
            created=now(),
            source_sha256=image.sha256,
            prompt_sha256=prompt_sha,
            backend=s.animator.name,
            model=s.animator.model,
            fingerprints=fingerprints,
            manifest_id=manifest_id,
            clip_sha256=hashlib.sha256(signed).hexdigest(),
            chat=chat,
        )
        s.ledger.record(entry)
        note = provenance_note(entry, service=s.software, signer=s.signer_name)
    clip = Clip(
        signed, width, height, frames.fps, frames.count, ledger_id, manifest_id, claim.poster
    )
    # The input verdict's scores (faces, largest_face) go with the clip for the consent rule.
    return steps.outcome(Verdict.ok(Stage.OUTPUT, "all", verdict.scores), clip, note)


def _first_rejection(
    verdicts: Iterable[Verdict], passed: list[Verdict] | None = None
) -> Verdict | None:
    """Return the first rejecting verdict, evaluating lazily so later checks are skipped.

    Allowing verdicts seen on the way are appended to ``passed`` when it is given.
    """
    for verdict in verdicts:
        if not verdict.allowed:
            return verdict
        if passed is not None:
            passed.append(verdict)
    return None


def _scores(verdicts: Iterable[Verdict]) -> dict[str, float]:
    """Merge the scores of allowing verdicts (e.g. ``faces``, ``largest_face``) into one."""
    return {key: value for v in verdicts for key, value in v.scores.items()}


def _claim(s: Services, request: JobRequest, image: Image, ledger_id: str, poster: bytes) -> Claim:
    """Describe the clip for the signer: no prompt, no user identifiers."""
    return Claim(
        ledger_id=ledger_id,
        title=f"alive-{ledger_id}.mp4",
        software=s.software,
        backend=s.animator.name,
        model=s.animator.model,
        source=request.photo.data,
        source_mime=image.mime,
        poster=poster,
        include_source_thumbnail=s.settings.provenance.source_thumbnail,
    )


class _Steps:
    """Times each step and reports progress as it starts."""

    def __init__(self, progress: ProgressCallback | None) -> None:
        self._progress = progress
        self.timings: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self._progress:
            self._progress(Progress(name, STEP_START[name]))
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = time.perf_counter() - start

    def within(self, name: str) -> StepCallback | None:
        """Return a callback reporting progress inside step ``name`` (and letting a cancel in)."""
        progress = self._progress
        if progress is None:
            return None
        names = list(STEP_START)
        start = STEP_START[name]
        end = STEP_START[names[names.index(name) + 1]] if name != names[-1] else 1.0

        def on_step(done: int, total: int) -> None:
            progress(Progress(name, start + (end - start) * min(done / max(total, 1), 1.0)))

        return on_step

    def outcome(self, verdict: Verdict, clip: Clip | None = None, note: str = "") -> Outcome:
        """Close the job with its verdict and the timings so far."""
        if not verdict.allowed:
            log.info("job rejected: %s at %s by %s", verdict.code, verdict.stage, verdict.check)
        return Outcome(verdict, clip, note, dict(self.timings))

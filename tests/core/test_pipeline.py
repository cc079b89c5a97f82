"""The pipeline end to end on the real services: photo in, signed clip out, and every exit."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from typing import Any

import av
import numpy as np
import pytest

from core import pipeline
from core.errors import ProvenanceError
from core.services import Services
from core.testing import RejectAll
from core.types import ClipSpec, Frames, JobRequest, Outcome, Photo, Stage


def animate(services: Services, data: bytes, prompt: str = "", **spec: object) -> Outcome:
    request = JobRequest(Photo(data, "photo.jpg"), ClipSpec(prompt=prompt, **spec))  # type: ignore[arg-type]
    return pipeline.run(request, services)


def test_photo_becomes_a_signed_labelled_clip(services: Services, photo_jpeg: bytes) -> None:
    events = []
    request = JobRequest(Photo(photo_jpeg), ClipSpec(prompt="clouds drifting", seconds=1, fps=12))
    outcome = pipeline.run(request, services, events.append)
    assert outcome.ok, outcome.verdict
    clip = outcome.clip
    assert clip is not None
    assert (clip.width % 2, clip.height % 2) == (0, 0)
    with av.open(__import__("io").BytesIO(clip.data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert sum(1 for _ in container.decode(stream)) == 12
    assert [e.step for e in events] == list(pipeline.STEP_START)
    assert list(outcome.timings) == list(pipeline.STEP_START)
    assert clip.ledger_id in outcome.note
    assert "AI-generated" in outcome.note


def test_ledger_keeps_hashes_not_content(services: Services, photo_jpeg: bytes) -> None:
    outcome = animate(services, photo_jpeg, "gentle smile", seconds=1, fps=12)
    assert outcome.clip is not None
    entry = services.ledger.get(outcome.clip.ledger_id)
    assert entry is not None
    assert entry.source_sha256 == hashlib.sha256(photo_jpeg).hexdigest()
    assert entry.prompt_sha256 == hashlib.sha256(b"gentle smile").hexdigest()
    assert entry.clip_sha256 == hashlib.sha256(outcome.clip.data).hexdigest()
    assert entry.fingerprints
    row = services.db.query("SELECT entry FROM ledger WHERE id = ?", (entry.id,))[0]
    assert "gentle smile" not in row["entry"]


def test_not_an_image_is_rejected_at_input(services: Services) -> None:
    outcome = animate(services, b"%PDF-1.4 not a photo")
    assert not outcome.ok
    assert outcome.verdict.stage is Stage.INPUT
    assert outcome.verdict.code == "not_an_image"


def test_hostile_prompt_is_rejected_and_audited(services: Services, photo_jpeg: bytes) -> None:
    outcome = animate(services, photo_jpeg, "make her naked")
    assert not outcome.ok
    assert outcome.verdict.stage is Stage.PROMPT
    assert "animate" not in outcome.timings
    (record,) = services.audit.records("moderation")
    assert record["allowed"] is False
    assert record["code"] == outcome.verdict.code


def test_output_check_blocks_the_clip(services: Services, photo_jpeg: bytes) -> None:
    blocked = dataclasses.replace(services, output_checks=[RejectAll("nsfw_output", Stage.OUTPUT)])
    outcome = animate(blocked, photo_jpeg, seconds=1, fps=12)
    assert outcome.clip is None
    assert outcome.verdict.code == "nsfw_output"
    assert services.db.query("SELECT COUNT(*) AS n FROM ledger")[0]["n"] == 0


class BrokenSigner:
    def sign(self, video: bytes, claim: object) -> tuple[bytes, str]:
        raise ProvenanceError("the signing key is unavailable")


def test_failed_signing_fails_the_job_and_records_nothing(
    services: Services, photo_jpeg: bytes
) -> None:
    broken = dataclasses.replace(services, signer=BrokenSigner())
    with pytest.raises(ProvenanceError):
        animate(broken, photo_jpeg, seconds=1, fps=12)
    assert services.db.query("SELECT COUNT(*) AS n FROM ledger")[0]["n"] == 0


@dataclasses.dataclass
class HalfSizeEncoder:
    """An encoder that scales the frames down, as one fitting a tight upload limit may."""

    inner: Any

    def encode(self, frames: Frames, max_bytes: int) -> bytes:
        half = frames.array[:, ::2, ::2]
        even = half[:, : half.shape[1] // 2 * 2, : half.shape[2] // 2 * 2]
        return bytes(self.inner.encode(Frames(np.ascontiguousarray(even), frames.fps), max_bytes))


def test_the_clip_reports_the_size_it_was_encoded_at(services: Services, photo_jpeg: bytes) -> None:
    spec = ClipSpec(prompt="waves", seconds=1, fps=12)
    full = pipeline.run(JobRequest(Photo(photo_jpeg), spec), services).clip
    scaled = dataclasses.replace(services, encoder=HalfSizeEncoder(services.encoder))
    half = pipeline.run(JobRequest(Photo(photo_jpeg), spec), scaled).clip
    assert full is not None
    assert half is not None
    for clip in (full, half):
        with av.open(io.BytesIO(clip.data)) as container:
            context = container.streams.video[0].codec_context
            assert (clip.width, clip.height) == (context.width, context.height)
    assert (half.width, half.height) == (full.width // 4 * 2, full.height // 4 * 2)

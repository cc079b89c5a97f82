"""Hostile files at verify: every one gets a report, never an exception or a hang."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from PIL import Image as PILImage

from core import pipeline
from core.encode import decode as decode_video
from core.provenance.keys import init_dev_identity
from core.provenance.verify import verify
from core.services import Services, build_services
from core.settings import Settings
from core.testing import remux
from core.types import ClipSpec, CredentialState, JobRequest, Photo, VerdictKind, VerifyReport
from tests.conftest import jpeg_bytes, scene


@pytest.fixture(scope="module")
def fuzz_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    data_dir = tmp_path_factory.mktemp("verify-fuzz")
    init_dev_identity(data_dir / "keys")
    settings = Settings(data_dir=data_dir)
    built = build_services(settings)
    yield built
    built.close()


class Blob(bytes):
    """Bytes that print their size, so a failing example's report stays readable."""

    def __repr__(self) -> str:
        return f"<{len(self)} bytes>"


@pytest.fixture(scope="module")
def signed_clip(fuzz_services: Services) -> bytes:
    spec = ClipSpec(seconds=1, fps=12, size=320)
    outcome = pipeline.run(JobRequest(Photo(jpeg_bytes(scene(320, 288))), spec), fuzz_services)
    assert outcome.clip is not None
    return Blob(outcome.clip.data)


def png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge image."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def animated_gif() -> bytes:
    frames = [PILImage.fromarray(np.full((64, 64, 3), i * 40, np.uint8)) for i in range(4)]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    return out.getvalue()


def huge_mp4_header(clip: bytes) -> bytes:
    """The clip with its track header claiming a 60000x60000 picture."""
    at = clip.find(b"tkhd")
    assert at > 0
    patched = bytearray(clip)
    width_at = at + 4 + 76  # NOTE: tkhd v0 layout: width/height are the last 8 bytes (16.16).
    patched[width_at : width_at + 8] = struct.pack(">II", 60000 << 16, 60000 << 16)
    return bytes(patched)


def check(report: VerifyReport) -> None:
    assert isinstance(report, VerifyReport)
    assert report.credentials.state in CredentialState
    assert all(isinstance(reason, str) and reason for reason in report.credentials.reasons)


HOSTILE = {
    "empty": lambda clip: b"",
    "one byte": lambda clip: b"\x00",
    "text": lambda clip: b"hello, this is not a video\n" * 100,
    "pdf": lambda clip: b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF",
    "png bomb": lambda clip: png_bomb(100_000, 100_000),
    "animated gif": lambda clip: animated_gif(),
    "truncated clip": lambda clip: clip[: len(clip) // 3],
    "clip head only": lambda clip: clip[:64],
    "polyglot jpeg+mp4": lambda clip: jpeg_bytes(scene(64, 64)) + clip,
    "mp4 claiming huge size": huge_mp4_header,
    "zeros": lambda clip: bytes(200_000),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_file_gets_a_report(name: str, signed_clip: bytes, fuzz_services: Services) -> None:
    check(verify(HOSTILE[name](signed_clip), fuzz_services))


def test_the_signed_clip_itself_is_trusted_and_ours(
    signed_clip: bytes, fuzz_services: Services
) -> None:
    report = verify(signed_clip, fuzz_services)
    assert report.credentials.state is CredentialState.TRUSTED
    assert report.ours
    assert report.verdict.kind is VerdictKind.OURS_INTACT
    assert report.ledger is not None
    assert report.ledger.id == report.credentials.ledger_id
    # Intact credentials of ours skip the watermark layer in verify; it is still in the frames.
    frames = decode_video(signed_clip, max_frames=36)
    assert fuzz_services.watermark_reader.read(frames) == report.credentials.ledger_id


@hsettings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(position=st.floats(0, 1), value=st.integers(0, 255), cut=st.floats(0.05, 1))
def test_corrupted_clips_get_a_report(
    position: float, value: int, cut: float, signed_clip: bytes, fuzz_services: Services
) -> None:
    data = bytearray(signed_clip[: max(1, int(len(signed_clip) * cut))])
    data[int(position * (len(data) - 1))] = value
    check(verify(bytes(data), fuzz_services))


def test_remuxed_clip_still_decodes_as_video(signed_clip: bytes, fuzz_services: Services) -> None:
    report = verify(remux(signed_clip), fuzz_services)
    assert report.media == "video"
    assert report.credentials.state is CredentialState.NONE
    assert report.ours

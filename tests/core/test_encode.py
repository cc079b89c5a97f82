from __future__ import annotations

import io
import itertools
import struct
import time
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image as PILImage

from core.encode import H264Encoder, decode, move_moov_first
from core.types import Frames
from tests.conftest import FIXTURES

FPS = 24


def smooth_clip(count: int = 24, height: int = 256, width: int = 256) -> Frames:
    """Soft moving gradients: compress well, so decoding must come back close."""
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    frames = []
    for i in range(count):
        r = 128 + 90 * np.sin(5 * x + 3 * y + i / 6)
        g = 128 + 70 * np.cos(4 * y - 2 * x + i / 9)
        b = 100 + 60 * x * y + 0 * r
        frames.append(np.stack([r, g, b], axis=-1))
    return Frames(np.clip(frames, 0, 255).astype(np.uint8), FPS)


def noisy_clip(count: int = 24, size: int = 256) -> Frames:
    rng = np.random.default_rng(1)
    return Frames(rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8), FPS)


def top_level_boxes(data: bytes) -> list[bytes]:
    """Box types at the top of an ISO BMFF file, parsed independently of core.encode."""
    kinds, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
        elif size == 0:
            size = len(data) - pos
        assert size >= 8
        kinds.append(kind)
        pos += size
    assert pos == len(data)
    return kinds


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def clip() -> Frames:
    return smooth_clip(count=48)


@pytest.fixture(scope="module")
def mp4(clip: Frames) -> bytes:
    return H264Encoder().encode(clip)


def test_high_profile_yuv420p_tagged(mp4: bytes) -> None:
    with av.open(io.BytesIO(mp4)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.profile == "High"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.codec_context.width, stream.codec_context.height) == (256, 256)
        assert stream.codec_context.colorspace == 6  # BT.601, as converted
        assert stream.codec_context.color_range == 1  # limited


def test_moov_before_mdat(mp4: bytes) -> None:
    kinds = top_level_boxes(mp4)
    assert kinds[0] == b"ftyp"
    assert kinds.index(b"moov") < kinds.index(b"mdat")


def test_frame_count_fps_and_constant_intervals(mp4: bytes, clip: Frames) -> None:
    with av.open(io.BytesIO(mp4)) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == FPS
        assert stream.frames == clip.count
        packets = [p for p in container.demux(stream) if p.pts is not None]
    pts = sorted(p.pts for p in packets)
    steps = {b - a for a, b in itertools.pairwise(pts)}
    assert len(pts) == clip.count
    assert len(steps) == 1
    assert steps.pop() * stream.time_base == Fraction(1, FPS)
    assert all(p.duration * stream.time_base == Fraction(1, FPS) for p in packets)


def test_keyframe_at_least_every_second(mp4: bytes) -> None:
    with av.open(io.BytesIO(mp4)) as container:
        stream = container.streams.video[0]
        packets = sorted(
            (p for p in container.demux(stream) if p.pts is not None), key=lambda p: p.pts
        )
    keys = [i for i, p in enumerate(packets) if p.is_keyframe]
    assert keys[0] == 0
    assert max(b - a for a, b in itertools.pairwise([*keys, len(packets)])) <= FPS


def test_decode_round_trip_is_close(mp4: bytes, clip: Frames) -> None:
    back = decode(mp4)

    assert back.array.shape == clip.array.shape
    assert back.fps == FPS
    assert psnr(back.array, clip.array) >= 30.0


def test_decode_respects_max_frames(mp4: bytes) -> None:
    assert decode(mp4, max_frames=5).count == 5
    with pytest.raises(ValueError, match="max_frames"):
        decode(mp4, max_frames=0)


def test_bitrate_is_capped() -> None:
    frames = noisy_clip()
    loose = H264Encoder(crf=18, max_bitrate_kbps=20000).encode(frames)
    capped = H264Encoder(crf=18, max_bitrate_kbps=500).encode(frames)

    # 1 s at 500 kbit/s plus a one-second VBV buffer is at most ~125 kB.
    assert len(capped) < 130_000 < len(loose)


def test_fit_to_limit_shrinks_until_it_fits() -> None:
    frames = noisy_clip()
    encoder = H264Encoder()
    full = encoder.encode(frames)
    limit = len(full) // 10

    fitted = encoder.fit_to_limit(frames, limit)
    back = decode(fitted)

    assert len(fitted) <= limit
    assert back.count == frames.count
    assert back.height % 2 == 0
    assert back.width % 2 == 0
    assert top_level_boxes(fitted).index(b"moov") < top_level_boxes(fitted).index(b"mdat")


def test_fit_to_limit_keeps_a_clip_that_fits(clip: Frames, mp4: bytes) -> None:
    assert H264Encoder().fit_to_limit(clip, len(mp4) + 1) == mp4


def test_fit_to_limit_gives_up_clearly() -> None:
    with pytest.raises(ValueError, match="does not fit in 300 bytes"):
        H264Encoder().fit_to_limit(smooth_clip(count=12, height=64, width=64), 300)


@pytest.mark.parametrize(("height", "width"), [(255, 256), (256, 255), (1, 2)])
def test_odd_dimensions_rejected(height: int, width: int) -> None:
    frames = Frames(np.zeros((2, height, width, 3), np.uint8), FPS)
    with pytest.raises(ValueError, match="even"):
        H264Encoder().encode(frames)
    with pytest.raises(ValueError, match="even"):
        H264Encoder().fit_to_limit(frames, 10_000)


@pytest.mark.parametrize(
    "frames",
    [
        Frames(np.zeros((2, 16, 16), np.uint8), FPS),
        Frames(np.zeros((2, 16, 16, 3), np.float32), FPS),  # type: ignore[arg-type]
        Frames(np.zeros((0, 16, 16, 3), np.uint8), FPS),
        Frames(np.zeros((2, 16, 16, 3), np.uint8), 0),
    ],
)
def test_malformed_frames_rejected(frames: Frames) -> None:
    with pytest.raises(ValueError, match="frame"):
        H264Encoder().encode(frames)


@pytest.mark.parametrize(
    "kwargs", [{"crf": -1}, {"crf": 52}, {"preset": "ludicrous"}, {"max_bitrate_kbps": 0}]
)
def test_bad_settings_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case names a different setting
        H264Encoder(**kwargs)  # type: ignore[arg-type]


def png_bytes() -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (32, 32), "red").save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 4096,
        np.random.default_rng(0).bytes(50_000),
        b"hello, this is not a video",
        png_bytes(),
        b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n",  # a playlist must not open other files
        struct.pack(">I4s", 24, b"ftyp") + b"isom" * 4,  # a header and nothing else
        struct.pack(">I4s", 0xFFFFFFF0, b"moov") + b"\x00" * 64,  # a box claiming 4 GB
        struct.pack(">I4s", 1, b"mdat") + struct.pack(">Q", 2**62),  # a 64-bit size lie
    ],
    ids=["empty", "zeros", "random", "text", "png", "playlist", "ftyp", "huge-box", "huge-64"],
)
def test_decode_garbage_raises_value_error_quickly(data: bytes) -> None:
    start = time.perf_counter()
    with pytest.raises(ValueError, match="video"):
        decode(data)
    assert time.perf_counter() - start < 1.0


def test_decode_truncated_clip_keeps_what_decodes(mp4: bytes) -> None:
    back = decode(mp4[: len(mp4) // 2])
    assert 0 < back.count < 48


def test_move_moov_first_is_idempotent(mp4: bytes) -> None:
    assert move_moov_first(mp4) == mp4


def write_with_pyav(container_format: str, height: int, width: int, pix_fmt: str) -> bytes:
    """A clip written by PyAV directly, in shapes our own encoder never produces."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container_format) as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for i in range(6):
            pixels = np.full((height, width, 3), 40 * i, np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def test_decode_matroska_and_odd_sizes() -> None:
    back = decode(write_with_pyav("matroska", 49, 65, "yuv444p"))

    assert back.array.shape == (6, 48, 64, 3)
    assert back.fps == 12


def test_decode_third_party_mp4() -> None:
    path = FIXTURES / "c2pa" / "video1.mp4"
    if not path.exists():
        pytest.skip(f"shared fixture {path} is absent")
    back = decode(path.read_bytes(), max_frames=10)

    assert 1 <= back.count <= 10
    assert back.array.dtype == np.uint8
    assert back.height % 2 == 0
    assert back.width % 2 == 0

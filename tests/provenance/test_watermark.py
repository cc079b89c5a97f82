from __future__ import annotations

import io

import av
import cv2
import numpy as np
import pytest

from core.provenance.watermark import (
    WatermarkReader,
    WatermarkStep,
    candidate_sizes,
    decode_bits,
    embed_bits,
    payload_bits,
    read_image,
)
from core.types import Frames

LEDGER_ID = "3fa92c0b17de"


def synthetic_clip(height: int, width: int, count: int, seed: int = 0) -> np.ndarray:
    """Smooth colour gradients plus blurred texture drifting a pixel per frame: photo-like."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [
            120 + 80 * np.sin(xx / width * 3 + seed),
            100 + 60 * np.cos(yy / height * 2.5 + seed),
            140 + 70 * np.sin((xx + yy) / (height + width) * 4),
        ],
        axis=-1,
    )
    texture = rng.normal(0, 25, (height + count, width + count, 3)).astype(np.float32)
    texture = cv2.GaussianBlur(texture, (0, 0), 1.5)
    frames = [base + texture[i : i + height, i : i + width] for i in range(count)]
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


def h264_round_trip(array: np.ndarray, crf: int = 28) -> np.ndarray:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height = array.shape[2], array.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf)}
        for frame in array:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    buf.seek(0)
    with av.open(buf) as src:
        return np.stack([f.to_ndarray(format="rgb24") for f in src.decode(video=0)])


def downscale_half(array: np.ndarray) -> np.ndarray:
    h, w = array.shape[1] // 2, array.shape[2] // 2
    return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in array])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


@pytest.fixture(scope="module", params=[(256, 256), (256, 384)], ids=["256x256", "256x384"])
def clip(request: pytest.FixtureRequest) -> tuple[np.ndarray, np.ndarray]:
    height, width = request.param
    original = synthetic_clip(height, width, 16)
    marked = WatermarkStep().apply(Frames(original, fps=24), LEDGER_ID).array
    return original, marked


def read(array: np.ndarray) -> str:
    return WatermarkReader().read(Frames(array, fps=24))


def test_round_trip_clean(clip):
    original, marked = clip
    assert marked.shape == original.shape
    assert marked.dtype == np.uint8
    assert read(marked) == LEDGER_ID


def test_invisible_psnr_at_least_38_db(clip):
    original, marked = clip
    assert psnr(original, marked) >= 38.0


def test_survives_h264_crf28(clip):
    _, marked = clip
    assert read(h264_round_trip(marked, crf=28)) == LEDGER_ID


def test_survives_half_downscale_through_size_search(clip):
    _, marked = clip
    small = downscale_half(marked)
    assert read(small) == LEDGER_ID


def test_single_photo_read():
    photo = synthetic_clip(256, 320, 1, seed=3)
    marked = WatermarkStep().apply(Frames(photo, fps=1), "000000abcdef").array
    assert read_image(marked[0]) == "000000abcdef"
    assert read_image(photo[0]) == ""


@pytest.mark.parametrize("seed", range(6))
def test_unmarked_clips_read_nothing(seed):
    clip = synthetic_clip(256, 256, 12, seed=seed + 100)
    assert read(clip) == ""
    assert read(h264_round_trip(clip)) == ""


@pytest.mark.parametrize("seed", range(4))
def test_random_noise_reads_nothing(seed):
    noise = np.random.default_rng(seed).integers(0, 256, (12, 256, 256, 3), dtype=np.uint8)
    assert read(noise) == ""


@pytest.mark.parametrize("color", [(0, 0, 0), (128, 128, 128), (255, 255, 255), (30, 60, 220)])
def test_flat_frames_read_nothing(color):
    # Flat frames give every tile the same bit, which the whitening turns into a bad CRC.
    flat = np.broadcast_to(np.array(color, np.uint8), (12, 256, 256, 3))
    assert read(np.ascontiguousarray(flat)) == ""


def test_wrong_crc_payload_is_rejected():
    bits = payload_bits(LEDGER_ID)
    bits[-1] ^= 1  # a CRC bit
    assert decode_bits(bits) == ""
    marked = embed_bits(synthetic_clip(256, 256, 12), bits)
    assert read(marked) == ""


def test_payload_round_trip_and_id_validation():
    assert decode_bits(payload_bits("ffffffffffff")) == "ffffffffffff"
    step = WatermarkStep()
    frames = Frames(synthetic_clip(256, 256, 2), fps=24)
    for bad in ("3FA92C0B17DE", "3fa92c0b17d", "3fa92c0b17deff", "3fa92c0b17dg", ""):
        with pytest.raises(ValueError, match="12 lowercase hex"):
            step.apply(frames, bad)


def test_small_frames_are_left_unmarked_and_read_empty(caplog):
    small = synthetic_clip(128, 192, 4)
    out = WatermarkStep().apply(Frames(small, fps=24), LEDGER_ID)
    assert np.array_equal(out.array, small)
    assert "too small to watermark" in caplog.text
    assert read(small) == ""


def test_candidate_sizes_start_with_own_size_and_keep_aspect():
    sizes = candidate_sizes(171, 256)
    assert sizes[0] == (171, 256)
    assert (342, 512) in sizes
    assert all(w >= h for h, w in sizes)

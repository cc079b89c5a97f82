from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.provenance.fingerprint import PdqFingerprinter, hamming, hash_image
from core.testing import reencode
from core.types import Frames


def synthetic_clip(height: int, width: int, count: int, seed: int = 0) -> np.ndarray:
    """A photo-like scene (gradients, shapes, blurred texture) drifting a pixel per frame."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = (
        np.stack(
            [
                120 + 80 * np.sin(xx / width * 3 + seed),
                100 + 60 * np.cos(yy / height * 2.5),
                xx * 0,
            ],
            axis=-1,
        )
        + 60
    )
    for _ in range(6):
        cy, cx, r = rng.integers(0, height), rng.integers(0, width), rng.integers(15, 60)
        base[(yy - cy) ** 2 + (xx - cx) ** 2 < r**2] = rng.integers(0, 256, 3)
    texture = cv2.GaussianBlur(
        rng.normal(0, 20, (height + count, width + count, 3)).astype(np.float32), (0, 0), 2
    )
    frames = [base + texture[i : i + height, i : i + width] for i in range(count)]
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def original() -> np.ndarray:
    return synthetic_clip(256, 384, 24)


def test_one_hash_per_second_plus_first_frame(original):
    hashes = PdqFingerprinter().fingerprint(Frames(original, fps=8))
    assert len(hashes) == 3  # frames 0, 8, 16
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in hashes)


def test_reencoded_and_downscaled_clip_stays_close(original):
    copy = reencode(original, crf=28, fps=8)
    copy = np.stack([cv2.resize(f, (192, 128), interpolation=cv2.INTER_AREA) for f in copy])
    fingerprinter = PdqFingerprinter()
    before = fingerprinter.fingerprint(Frames(original, fps=8))
    after = fingerprinter.fingerprint(Frames(copy, fps=8))
    assert len(after) == len(before)
    assert all(hamming(a, b) <= 31 for a, b in zip(before, after, strict=True))


def test_different_image_is_far(original):
    other = synthetic_clip(256, 384, 1, seed=99)[0]
    assert hamming(hash_image(original[0]), hash_image(other)) > 60


def test_flat_frames_give_no_hash():
    flat = np.full((16, 256, 256, 3), 90, np.uint8)
    assert PdqFingerprinter().fingerprint(Frames(flat, fps=8)) == ()
    assert hash_image(flat[0]) == ""


def test_hash_matches_pdq_bit_order_and_hamming_checks_input(original):
    image = original[0]
    import pdqhash

    bits, _ = pdqhash.compute(image)
    value = int(hash_image(image), 16)
    # Standard PDQ hex: bit k of the hash is bit k of the 256-bit number.
    assert all(((value >> k) & 1) == bits[255 - k] for k in range(256))
    assert hamming(hash_image(image), hash_image(image)) == 0
    assert PdqFingerprinter().hash_image(image) == hash_image(image)
    with pytest.raises(ValueError, match="64 hex"):
        hamming("abc", hash_image(image))

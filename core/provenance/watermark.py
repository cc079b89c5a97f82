"""Step 6 of the pipeline: hides the ledger id invisibly in every frame; verify reads it back.

How it works (a DWT-DCT-SVD scheme in the spirit of invisible-watermark's ``dwtDctSvd``, written
from its description, not its code):

1. Take the U chroma channel (BT.601 YUV, as OpenCV's ``COLOR_RGB2YUV``); the eye is least
   sensitive there and H.264 keeps it at quarter resolution, which matches step 2.
2. One level of the orthonormal Haar DWT; keep the LL band (2x2 sums / 2).
3. Cut LL into ``block`` x ``block`` tiles. Each tile carries one bit in its largest singular
   value ``s0`` by quantisation index modulation: ``s0`` moves to ``(floor(s0/Δ) + 1/4)·Δ`` for a
   0 and ``(floor(s0/Δ) + 3/4)·Δ`` for a 1 (``Δ`` = strength).
   The 2-D DCT of a tile is ``C·B·Cᵀ`` with an orthogonal ``C``, so it has exactly the tile's
   singular values; the DCT would change nothing and is therefore not computed.
4. Only ``s0`` changes, so the tile changes by ``Δs0·u0·v0ᵀ``; that change goes back through the
   Haar synthesis (each pixel of a 2x2 cell gets ``ΔLL/2``) and into RGB along the direction
   that changes U and leaves Y and V alone.

Payload: the 48-bit ledger id and a CRC-16 (64 bits), whitened with a fixed key so that flat or
empty frames never read as a valid payload. Error correction is repetition: every tile carries
one of the 64 bits, assigned by a fixed pseudo-random permutation so the copies of each bit are
scattered over the frame; the reader sums soft decisions over all tiles of up to 24 frames.

Limits: frames need a short side of at least ``16 · 2 · block`` px (256 px at block 8), i.e. at
least 4 copies of every bit per frame; smaller frames are left unmarked. The scheme is not
scale-invariant, so the reader resizes to the frame's own size and to the standard output sizes
before decoding; it does not survive crops, rotations or mirroring.
"""

from __future__ import annotations

import binascii
import functools
import logging
import re
from typing import TYPE_CHECKING

import numpy as np

from core.types import Frames

if TYPE_CHECKING:
    from numpy.typing import NDArray

log = logging.getLogger(__name__)

PAYLOAD_BITS = 64
ID_PATTERN = re.compile(r"[0-9a-f]{12}")
# NOTE: 16 tiles on the short side = 256 tiles per square frame = 4 copies of each of the 64 bits.
MIN_TILES_PER_SIDE = 16
# NOTE: the long edges the animator produces (ClipSpec.size choices, 256..1024 in steps of 128).
STANDARD_LONG_EDGES = (256, 384, 512, 640, 768, 1024)
# NOTE: "up to ~24 frames" sampled for the vote; more adds time and little accuracy.
READ_SAMPLE_FRAMES = 24
# NOTE: a mean soft vote |c| per bit below this is noise, not a mark: random-noise frames read
# 0.04-0.09 and are dropped before the CRC is even tried. Marked clips read ~0.97 clean, ~0.55
# after crf 28 and still decode at 0.24 (512 px, crf 35); unmarked photos read 0.08-0.24, so
# for them the whitened CRC-16 is what rejects (measured on the tests' synthetic photos).
MIN_CONFIDENCE = 0.15
_KEY_SEED = 0x616C697665  # NOTE: fixed key ("alive" in ASCII) for the whitening and tile layout.
_CHUNK_FRAMES = 8  # NOTE: frames processed at once; keeps float32 buffers near 25 MB at 512 px.
_POWER_STEPS = 6  # NOTE: tiles of U are near-constant (s1/s0 << 1), so a few steps converge.
# BT.601 as in OpenCV's COLOR_RGB2YUV: Y = .299R + .587G + .114B, U = .492(B - Y) + 128.
_U_GAIN = 0.492
_U_FROM_RGB = (_U_GAIN * np.array([-0.299, -0.587, 1.0 - 0.114])).astype(np.float32)
# RGB change that moves U by 1 and keeps Y (and V, which needs R - Y) unchanged.
_U_DIRECTION = np.array([0.0, -0.114 / 0.587 / _U_GAIN, 1.0 / _U_GAIN], dtype=np.float32)


def validate_id(ledger_id: str) -> None:
    """Raise ``ValueError`` unless ``ledger_id`` is 12 lowercase hex characters."""
    if not ID_PATTERN.fullmatch(ledger_id):
        raise ValueError(f"ledger id must be 12 lowercase hex characters, got {ledger_id!r}")


@functools.cache
def _whitening() -> NDArray[np.uint8]:
    """Return the fixed 64-bit key XORed onto the payload."""
    return np.random.default_rng(_KEY_SEED).integers(0, 2, PAYLOAD_BITS, dtype=np.uint8)


@functools.cache
def _layout(tiles: int) -> NDArray[np.intp]:
    """Return which payload bit each of ``tiles`` tiles carries (scattered, balanced)."""
    order = np.random.default_rng(_KEY_SEED + tiles).permutation(tiles)
    return (order % PAYLOAD_BITS).astype(np.intp)


def payload_bits(ledger_id: str) -> NDArray[np.uint8]:
    """Return the 64 whitened bits that carry ``ledger_id``: 48-bit id + CRC-16/CCITT."""
    validate_id(ledger_id)
    data = bytes.fromhex(ledger_id)
    crc = binascii.crc_hqx(data, 0xFFFF)
    raw = np.unpackbits(np.frombuffer(data + crc.to_bytes(2, "big"), dtype=np.uint8))
    return raw ^ _whitening()


def decode_bits(bits: NDArray[np.uint8]) -> str:
    """Return the ledger id that 64 whitened bits carry, or ``""`` if the CRC does not check."""
    raw = np.packbits(bits.astype(np.uint8) ^ _whitening()).tobytes()
    data, crc = raw[:6], int.from_bytes(raw[6:], "big")
    return data.hex() if binascii.crc_hqx(data, 0xFFFF) == crc else ""


def _grid(height: int, width: int, block: int) -> tuple[int, int]:
    """Return the tile rows and columns a frame of this size holds."""
    return height // (2 * block), width // (2 * block)


def _tiles(region: NDArray[np.uint8], block: int) -> NDArray[np.float32]:
    """Return the LL-band tiles of the U channel of ``region``, ``(T, rows*cols, block, block)``.

    ``region`` must be a whole number of tiles. A 2x2 area mean equals the Haar LL band / 2.
    """
    import cv2

    t, h, w, _ = region.shape
    ll = np.empty((t, h // 2, w // 2), dtype=np.float32)
    for i, frame in enumerate(region):
        u = cv2.transform(frame.astype(np.float32), _U_FROM_RGB[None, :])
        ll[i] = cv2.resize(u, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    # LL = (sum of 4 U values) / 2 = 2 * mean, and each U value carries a +128 offset.
    ll *= 2.0
    ll += 256.0
    rows, cols = h // (2 * block), w // (2 * block)
    tiles = ll.reshape(t, rows, block, cols, block).transpose(0, 1, 3, 2, 4)
    return tiles.reshape(t, rows * cols, block, block)


def _top_singular(
    tiles: NDArray[np.float32],
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """Return ``s0, u0, v0`` of every tile by power iteration (a full batched SVD is 10x slower)."""
    gram = np.matmul(tiles.transpose(0, 1, 3, 2), tiles)
    v = tiles.sum(axis=2)  # column sums: already close to v0 for near-constant tiles
    for _ in range(_POWER_STEPS):
        v = np.einsum("ntij,ntj->nti", gram, v)
        v /= np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
    av = np.einsum("ntij,ntj->nti", tiles, v)
    s = np.linalg.norm(av, axis=-1)
    return s, av / np.maximum(s[..., None], 1e-12), v


def _embed_chunk(
    chunk: NDArray[np.uint8], bits: NDArray[np.uint8], strength: float, block: int
) -> NDArray[np.uint8]:
    """Return ``chunk`` (T,H,W,3) with ``bits`` embedded in its tile-covered top-left area."""
    import cv2

    t = chunk.shape[0]
    rows, cols = _grid(chunk.shape[1], chunk.shape[2], block)
    h, w = rows * 2 * block, cols * 2 * block
    s, u0, v0 = _top_singular(_tiles(chunk[:, :h, :w], block))
    target = bits[_layout(rows * cols)].astype(np.float32)
    delta = (np.floor(s / strength) + 0.25 + 0.5 * target) * strength - s
    d_tiles = delta[..., None, None] * u0[..., :, None] * v0[..., None, :]
    d_ll = d_tiles.reshape(t, rows, cols, block, block).transpose(0, 1, 3, 2, 4)
    # Haar synthesis: every pixel of a 2x2 cell moves by ΔLL/2, along the U-only RGB direction.
    d_rgb = d_ll.reshape(t, h // 2, w // 2, 1) * (0.5 * _U_DIRECTION)
    out = chunk.copy()
    for i in range(t):
        up = cv2.resize(d_rgb[i], (w, h), interpolation=cv2.INTER_NEAREST)
        out[i, :h, :w] = cv2.add(chunk[i, :h, :w], up, dtype=cv2.CV_8U)  # rounds and saturates
    return out


def embed_bits(
    array: NDArray[np.uint8], bits: NDArray[np.uint8], *, strength: float = 60.0, block: int = 8
) -> NDArray[np.uint8]:
    """Return a marked copy of ``array`` (T,H,W,3) carrying 64 raw ``bits`` in every frame.

    Frames whose short side holds fewer than ``MIN_TILES_PER_SIDE`` tiles are returned unchanged.
    """
    rows, cols = _grid(array.shape[1], array.shape[2], block)
    if min(rows, cols) < MIN_TILES_PER_SIDE:
        log.warning(
            "frames %dx%d too small to watermark (need a short side >= %d px); left unmarked",
            array.shape[2],
            array.shape[1],
            MIN_TILES_PER_SIDE * 2 * block,
        )
        return array
    parts = [
        _embed_chunk(array[i : i + _CHUNK_FRAMES], bits, strength, block)
        for i in range(0, array.shape[0], _CHUNK_FRAMES)
    ]
    return np.concatenate(parts)


class WatermarkStep:
    """Embeds the ledger id invisibly in every frame (a ``FrameStep``).

    Args:
        strength: QIM step on the largest singular value (settings.provenance.watermark_strength).
        block: tile size in the LL band (settings.provenance.watermark_block).
    """

    name = "watermark"

    def __init__(self, strength: float = 60.0, block: int = 8) -> None:
        self.strength = strength
        self.block = block

    def apply(self, frames: Frames, ledger_id: str) -> Frames:
        """Return frames carrying ``ledger_id``; raise ``ValueError`` if it is not 12 hex chars."""
        bits = payload_bits(ledger_id)
        marked = embed_bits(frames.array, bits, strength=self.strength, block=self.block)
        return Frames(array=marked, fps=frames.fps)


def _soft_votes(
    array: NDArray[np.uint8], strength: float, block: int
) -> tuple[NDArray[np.float64], float]:
    """Return the per-bit soft vote (-1 = 0, +1 = 1) over all tiles, and its mean magnitude."""
    rows, cols = _grid(array.shape[1], array.shape[2], block)
    h, w = rows * 2 * block, cols * 2 * block
    layout = _layout(rows * cols)
    sums = np.zeros(PAYLOAD_BITS)
    for i in range(0, array.shape[0], _CHUNK_FRAMES):
        s, _, _ = _top_singular(_tiles(array[i : i + _CHUNK_FRAMES, :h, :w], block))
        # 0 sits at a quarter step (sin = 1), 1 at three quarters (sin = -1).
        soft = -np.sin(2.0 * np.pi * (s / strength)).astype(np.float64)
        sums += np.bincount(layout, weights=soft.sum(axis=0), minlength=PAYLOAD_BITS)
    votes = sums / (np.bincount(layout, minlength=PAYLOAD_BITS) * array.shape[0])
    return votes, float(np.abs(votes).mean())


def _even(x: float) -> int:
    """Round to the nearest even integer."""
    return 2 * round(x / 2)


def candidate_sizes(height: int, width: int) -> list[tuple[int, int]]:
    """Return the (height, width) sizes to try: the frame's own, then the standard outputs."""
    sizes = [(height, width)]
    landscape = width >= height
    aspect = min(height, width) / max(height, width)
    for edge in STANDARD_LONG_EDGES:
        exact = edge * aspect
        for short in dict.fromkeys((_even(exact), 2 * int(exact // 2), 2 * -int(-exact // 2))):
            size = (short, edge) if landscape else (edge, short)
            if size not in sizes:
                sizes.append(size)
    return sizes


def _resize(array: NDArray[np.uint8], height: int, width: int) -> NDArray[np.uint8]:
    """Return every frame resized to ``height`` x ``width``."""
    import cv2

    if array.shape[1:3] == (height, width):
        return array
    shrink = height * width < array.shape[1] * array.shape[2]
    mode = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (width, height), interpolation=mode) for f in array])


class WatermarkReader:
    """Reads the ledger id back from frames (a ``WatermarkReader`` port).

    Args:
        strength: the embedding strength the clips were marked with.
        block: the embedding tile size.
    """

    def __init__(self, strength: float = 60.0, block: int = 8) -> None:
        self.strength = strength
        self.block = block

    def read(self, frames: Frames) -> str:
        """Return the ledger id, or ``""`` when no size candidate decodes with a valid CRC."""
        return self.read_array(frames.array)

    def read_array(self, array: NDArray[np.uint8]) -> str:
        """Return the ledger id carried by ``array`` (T,H,W,3) uint8 RGB, or ``""``."""
        if array.ndim != 4 or array.shape[0] == 0 or array.shape[3] != 3:
            return ""
        picks = np.unique(np.linspace(0, array.shape[0] - 1, READ_SAMPLE_FRAMES).round())
        sample = array[picks.astype(np.intp)]
        for height, width in candidate_sizes(sample.shape[1], sample.shape[2]):
            if min(_grid(height, width, self.block)) < MIN_TILES_PER_SIDE:
                continue
            votes, confidence = _soft_votes(
                _resize(sample, height, width), self.strength, self.block
            )
            if confidence < MIN_CONFIDENCE:
                continue
            ledger_id = decode_bits((votes > 0).astype(np.uint8))
            if ledger_id:
                log.debug("watermark found at %dx%d, confidence %.2f", width, height, confidence)
                return ledger_id
        return ""


def read_image(rgb: NDArray[np.uint8], *, strength: float = 60.0, block: int = 8) -> str:
    """Return the ledger id in one (H,W,3) uint8 RGB image (a photo or a still), or ``""``."""
    return WatermarkReader(strength, block).read_array(rgb[None])

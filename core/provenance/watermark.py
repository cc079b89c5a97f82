"""Step 6 of the pipeline: hides the ledger id invisibly in every frame; verify reads it back.

How it is embedded (a DWT-DCT scheme: the DC coefficient of the Haar LL band's tiles):

1. The U chroma channel (BT.601, as OpenCV's ``COLOR_RGB2YUV``): the eye is least sensitive to
   blue-yellow changes, and H.264 and JPEG keep chroma at quarter resolution, as the tiles do.
2. The frame is cut into ``tile`` x ``tile`` px squares on a grid anchored at the frame centre
   (16 px, or 8 px for frames under 256 px on the short side). A tile's mean U is its LL-band
   DCT DC over ``block``; for the near-constant U of a photo it is also the top singular value
   the older DWT-DCT-SVD scheme moved, so nothing is lost by moving it directly, and means are
   cheap, exact, and searchable at every grid offset with one box filter.
3. Each tile carries one coded bit by quantisation index modulation: its mean moves to the
   nearest ``(k + 1/4)·Δ`` for a 0 or ``(k + 3/4)·Δ`` for a 1 (``Δ`` = strength, in U levels),
   along the RGB direction that changes U alone; where blue would clip, it moves the other way.

Payload: the 48-bit ledger id and a CRC-16, whitened, then the rate-1/2 convolutional code of
``core.provenance.ecc`` (140 coded bits). A period of 16 x 16 tiles holds 256 slots: every coded
bit sits in one or two scattered slots, each with a secret sign, and the period repeats over the
frame and in every frame.

How it is read: for each candidate size (the frame's own, then the standard outputs, since the
scheme is not scale-invariant) and tile size, a box filter gives the mean under every grid
offset; the offset where tile means sit on the lattice (``-cos(4π·m/Δ)`` near 1) is the grid,
whatever was cropped. Soft decisions ``sin(2π·m/Δ)`` are summed per slot over tiles and frames;
the period's phase is the one under which repeated copies of a bit agree best (a crop moves it),
then Viterbi decodes, the CRC must check, and the codeword must explain the tiles far better
than chance (``MIN_SCORE``), so a clip we never made does not read as an id.
"""

from __future__ import annotations

import binascii
import functools
import logging
import re
from typing import TYPE_CHECKING

import numpy as np

from core.provenance import ecc
from core.types import Frames

if TYPE_CHECKING:
    from numpy.typing import NDArray

# NOTE: this module is past 300 lines on purpose: the embedder and the reader share one secret
# layout, lattice and grid, and keeping them side by side is what keeps them in step.

log = logging.getLogger(__name__)

PAYLOAD_BITS = 64
CODED_BITS = ecc.coded_length(PAYLOAD_BITS)
ID_PATTERN = re.compile(r"[0-9a-f]{12}")
PERIOD = 16  # NOTE: 16 x 16 tiles = 256 slots, room for all 140 coded bits, 116 of them twice.
SLOTS = PERIOD * PERIOD
# NOTE: at block 8, 16 px tiles are 8x8 chroma samples, one H.264/JPEG chroma block; frames too
# small for a whole period of those use tiles of ``block`` px, so 128 px frames still carry it.
DEFAULT_BLOCK = 8
# NOTE: the long edges the animator produces (ClipSpec.size choices, 256..1024 in steps of 128).
STANDARD_LONG_EDGES = (256, 384, 512, 640, 768, 1024)
READ_SAMPLE_FRAMES = 24  # NOTE: a second at 24 fps: after crf 35 every frame of it still helps.
# NOTE: big frames hold many more tiles, so fewer of them vote: 8 frames of 1024x768 are ~6 Mpx;
# this keeps an unmarked 1024 px clip's full size search near half a second.
READ_SAMPLE_PIXELS = 6_000_000
MIN_SAMPLE_FRAMES = 8
# NOTE: a decoded codeword's correlation with the tile votes, over their root-sum-square. On
# Gaussian noise Viterbi's best of 2^64 codewords scores 8.1 +- 0.5 (max 9.9 in 1800 tries, 8x8
# to 48x64 tiles); a marked clip scores up to sqrt(tiles): 32 for 512x512 at 16 px tiles.
MIN_SCORE = 11.0
_KEY_SEED = 0x616C697665  # NOTE: fixed key ("alive" in ASCII) for whitening, layout and signs.
_CHUNK_FRAMES = 8  # NOTE: frames processed at once; keeps float32 buffers near 25 MB at 512 px.
# BT.601 as in OpenCV's COLOR_RGB2YUV: Y = .299R + .587G + .114B, U = .492(B - Y) + 128.
_U_GAIN = 0.492
_U_FROM_RGB = (_U_GAIN * np.array([[-0.299, -0.587, 1.0 - 0.114]])).astype(np.float32)
# RGB change that moves U by 1 and keeps Y (and V, which needs R - Y) unchanged.
_U_DIRECTION = np.array([0.0, -0.114 / 0.587 / _U_GAIN, 1.0 / _U_GAIN], dtype=np.float32)


def validate_id(ledger_id: str) -> None:
    """Raise ``ValueError`` unless ``ledger_id`` is 12 lowercase hex characters."""
    if not ID_PATTERN.fullmatch(ledger_id):
        raise ValueError(f"ledger id must be 12 lowercase hex characters, got {ledger_id!r}")


@functools.cache
def _keys() -> tuple[NDArray[np.uint8], NDArray[np.intp], NDArray[np.float64]]:
    """Return the payload whitening, each slot's coded bit, and each slot's secret sign."""
    rng = np.random.default_rng(_KEY_SEED)
    whitening = rng.integers(0, 2, PAYLOAD_BITS, dtype=np.uint8)
    slot_bit = (rng.permutation(SLOTS) % CODED_BITS).astype(np.intp)
    signs = rng.choice([-1.0, 1.0], SLOTS)
    return whitening, slot_bit, signs


def payload_bits(ledger_id: str) -> NDArray[np.uint8]:
    """Return the 64 whitened bits that carry ``ledger_id``: 48-bit id + CRC-16/CCITT."""
    validate_id(ledger_id)
    data = bytes.fromhex(ledger_id)
    crc = binascii.crc_hqx(data, 0xFFFF)
    raw = np.unpackbits(np.frombuffer(data + crc.to_bytes(2, "big"), dtype=np.uint8))
    return raw ^ _keys()[0]


def decode_bits(bits: NDArray[np.uint8]) -> str:
    """Return the ledger id that 64 whitened bits carry, or ``""`` if the CRC does not check."""
    raw = np.packbits(bits.astype(np.uint8) ^ _keys()[0]).tobytes()
    data, crc = raw[:6], int.from_bytes(raw[6:], "big")
    return data.hex() if binascii.crc_hqx(data, 0xFFFF) == crc else ""


def slot_pattern(bits: NDArray[np.uint8]) -> NDArray[np.float64]:
    """Return the 256 bits (0/1) the slots of a period carry for 64 payload ``bits``."""
    _, slot_bit, signs = _keys()
    coded = ecc.encode(bits)[slot_bit].astype(np.float64)
    return np.where(signs > 0, coded, 1.0 - coded)


def tile_size(height: int, width: int, block: int = DEFAULT_BLOCK) -> int:
    """Return the tile side the embedder uses for frames of this size, or 0 if too small.

    That is ``2 * block`` px (the LL band's ``block``) when a whole period of those fits on the
    short side, else ``block`` px when that fits.
    """
    short = min(height, width)
    return next((t for t in (2 * block, block) if short >= PERIOD * t), 0)


def grid(size: int, tile: int) -> tuple[int, int]:
    """Return where the first whole tile starts along an axis, and its absolute tile index.

    Tile boundaries fall on ``size // 2 + k * tile``, so a centred crop keeps them in place.
    """
    start = (size // 2) % tile
    return start, (start - size // 2) // tile


def u_channel(frame: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Return the U channel of one RGB frame, without its +128 offset, as float32."""
    import cv2

    return np.asarray(cv2.transform(frame.astype(np.float32), _U_FROM_RGB), dtype=np.float32)


def _embed_chunk(
    chunk: NDArray[np.uint8], pattern: NDArray[np.float64], strength: float, tile: int
) -> None:
    """Embed the slot ``pattern`` in the whole tiles of ``chunk`` (T,H,W,3), in place."""
    import cv2

    t, height, width, _ = chunk.shape
    (y0, iy), (x0, ix) = grid(height, tile), grid(width, tile)
    rows, cols = (height - y0) // tile, (width - x0) // tile
    h, w = rows * tile, cols * tile
    region = chunk[:, y0 : y0 + h, x0 : x0 + w]
    # Area means of R, G, B per tile; U is linear in them. Halving in uint8 first is 4x less
    # float work; its rounding (+-0.5) averages out over the (tile/2)^2 values of a tile.
    rgb = np.stack(
        [
            cv2.resize(
                cv2.resize(f, (w // 2, h // 2), interpolation=cv2.INTER_AREA).astype(np.float32),
                (cols, rows),
                interpolation=cv2.INTER_AREA,
            )
            for f in region
        ]
    )
    means = rgb @ _U_FROM_RGB[0]
    slots = ((iy + np.arange(rows)) % PERIOD)[:, None] * PERIOD + (ix + np.arange(cols)) % PERIOD
    offset = (0.25 + 0.5 * pattern[slots]) * strength
    down = np.floor((means - offset) / strength) * strength + offset - means  # in (-Δ, 0]
    delta = _fit_headroom(rgb, down, down + strength)
    shift = (delta[..., None] * _U_DIRECTION).astype(np.float32)  # (T, rows, cols, 3)
    for i in range(t):
        field = cv2.resize(shift[i], (w, h), interpolation=cv2.INTER_NEAREST)
        # cv2.add rounds and saturates into uint8 in one pass.
        region[i] = cv2.add(region[i], field, dtype=cv2.CV_8U)


def _fit_headroom(
    rgb: NDArray[np.float32], down: NDArray[np.float64], up: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Pick each tile's move: the nearer lattice point, unless blue or green would clip there.

    ``rgb`` holds the tiles' mean colours; a tile near white or black has no room one way.
    """
    # NOTE: the margin stands in for the spread of a tile's pixels around its mean (texture);
    # 12 levels covered the bright clouds of bench/photos.py without measurable clipping loss.
    margin = 12.0
    blue, green = rgb[..., 2], rgb[..., 1]
    gain_b, gain_g = _U_DIRECTION[2], -_U_DIRECTION[1]
    room_up = np.minimum((255.0 - margin - blue) / gain_b, (green - margin) / gain_g)
    room_down = np.minimum((blue - margin) / gain_b, (255.0 - margin - green) / gain_g)
    nearer_down = -down < up
    prefer = np.where(nearer_down, down, up)
    other = np.where(nearer_down, up, down)
    prefer_fits = np.where(nearer_down, -down <= room_down, up <= room_up)
    other_fits = np.where(nearer_down, up <= room_up, -down <= room_down)
    return np.where(prefer_fits | ~other_fits, prefer, other)


def embed_bits(
    array: NDArray[np.uint8],
    bits: NDArray[np.uint8],
    *,
    strength: float = 6.0,
    block: int = DEFAULT_BLOCK,
) -> NDArray[np.uint8]:
    """Return a marked copy of ``array`` (T,H,W,3) carrying 64 raw ``bits`` in every frame.

    Frames under ``PERIOD * block`` px on the short side are returned unchanged.
    """
    tile = tile_size(array.shape[1], array.shape[2], block)
    if not tile:
        log.warning(
            "frames %dx%d too small to watermark (need a short side >= %d px); left unmarked",
            array.shape[2],
            array.shape[1],
            PERIOD * block,
        )
        return array
    pattern = slot_pattern(bits)
    out = array.copy()
    for i in range(0, out.shape[0], _CHUNK_FRAMES):
        _embed_chunk(out[i : i + _CHUNK_FRAMES], pattern, strength, tile)
    return out


class WatermarkStep:
    """Embeds the ledger id invisibly in every frame (a ``FrameStep``).

    Args:
        strength: QIM step on a tile's mean U, in 8-bit U levels
            (settings.provenance.watermark_strength).
        block: tile side in the Haar LL band, i.e. tiles of ``2 * block`` px; frames too small
            for those use ``block`` px (settings.provenance.watermark_block).
    """

    name = "watermark"

    def __init__(self, strength: float = 6.0, block: int = DEFAULT_BLOCK) -> None:
        self.strength = strength
        self.block = block

    def apply(self, frames: Frames, ledger_id: str) -> Frames:
        """Return frames carrying ``ledger_id``; raise ``ValueError`` if it is not 12 hex chars."""
        bits = payload_bits(ledger_id)
        marked = embed_bits(frames.array, bits, strength=self.strength, block=self.block)
        return Frames(array=marked, fps=frames.fps)


@functools.cache
def _shift_index() -> NDArray[np.intp]:
    """Return, for each of the 256 period phases, which fold cell lands in each slot."""
    a, b = np.divmod(np.arange(SLOTS), PERIOD)  # the phase (rows, columns)
    r, c = np.divmod(np.arange(SLOTS), PERIOD)  # the slot
    index = ((r[None, :] - a[:, None]) % PERIOD) * PERIOD + (c[None, :] - b[:, None]) % PERIOD
    return np.asarray(index, dtype=np.intp)


@functools.cache
def _bit_matrix() -> NDArray[np.float64]:
    """Return the (slots, coded bits) matrix that sums each slot's signed vote into its bit."""
    _, slot_bit, signs = _keys()
    matrix = np.zeros((SLOTS, CODED_BITS))
    matrix[np.arange(SLOTS), slot_bit] = signs
    return matrix


def _lattice_sync(
    u: NDArray[np.float32], tile: int, strength: float
) -> tuple[NDArray[np.float32], int, int, float]:
    """Return tile means at every offset and the grid offset whose means sit on the lattice."""
    import cv2

    means = np.stack(
        [
            cv2.boxFilter(f, -1, (tile, tile), anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)
            for f in u
        ]
    )
    rows, cols = u.shape[1] // tile - 1, u.shape[2] // tile - 1
    fit = -np.cos((4.0 * np.pi / strength) * means[:, : rows * tile, : cols * tile])
    phase = fit.reshape(len(u), rows, tile, cols, tile).mean(axis=(0, 1, 3))
    py, px = np.unravel_index(int(np.argmax(phase)), phase.shape)
    return means, int(py), int(px), float(phase[py, px])


def _decode_tiles(soft: NDArray[np.float64], phases: list[int]) -> tuple[str, float]:
    """Return the id the tile votes ``soft`` (rows, cols) carry and the codeword's score.

    ``phases`` are period phases to try, the expected one first; the one under which repeated
    copies of each coded bit agree best is added.
    """
    rows, cols = soft.shape
    cells = (np.arange(rows) % PERIOD)[:, None] * PERIOD + np.arange(cols) % PERIOD
    fold = np.bincount(cells.ravel(), weights=soft.ravel(), minlength=SLOTS)
    votes = fold[_shift_index()] @ _bit_matrix()  # (phases, coded bits)
    best = int(np.argmax((votes**2).sum(axis=1)))
    noise = float(np.sqrt((soft**2).sum())) or 1.0
    for phase in dict.fromkeys([*phases, best]):
        bits, _ = ecc.decode(votes[phase])
        ledger_id = decode_bits(bits)
        if ledger_id:
            codeword = 1.0 - 2.0 * ecc.encode(bits)
            score = float(codeword @ votes[phase]) / noise
            if score >= MIN_SCORE:
                return ledger_id, score
            log.debug("watermark CRC checked but score %.1f is below %.1f", score, MIN_SCORE)
    return "", 0.0


def _read_grid(u: NDArray[np.float32], tile: int, strength: float) -> str:
    """Return the id in U frames ``u`` (T,H,W) at one size and tile side, or ``""``."""
    means, py, px, fit = _lattice_sync(u, tile, strength)
    height, width = u.shape[1:]
    rows, cols = (height - tile - py) // tile + 1, (width - tile - px) // tile + 1
    tiles = means[:, py : py + rows * tile : tile, px : px + cols * tile : tile]
    soft = np.sin((2.0 * np.pi / strength) * tiles.astype(np.float64)).sum(axis=0)
    # Where the grid would start if nothing was cropped: the nearest centre-anchored tile.
    iy, ix = round((py - height // 2) / tile), round((px - width // 2) / tile)
    ledger_id, score = _decode_tiles(soft, [(iy % PERIOD) * PERIOD + ix % PERIOD])
    if ledger_id:
        log.debug(
            "watermark at %dx%d, tile %d, fit %.2f, score %.1f", width, height, tile, fit, score
        )
    return ledger_id


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


def _tiles_to_try(height: int, width: int, block: int) -> list[int]:
    """Return the tile sides worth trying at this size (a crop may take a frame below 256)."""
    short = min(height, width)
    # NOTE: 0.8 leaves room for a 20 % crop of a frame embedded right at a threshold.
    tiles = [2 * block] if short >= 0.8 * PERIOD * 2 * block else []
    return tiles + ([block] if 0.8 * PERIOD * block <= short < PERIOD * 2 * block else [])


def _resize(u: NDArray[np.float32], height: int, width: int) -> NDArray[np.float32]:
    """Return every U frame resized to ``height`` x ``width``."""
    import cv2

    if u.shape[1:] == (height, width):
        return u
    mode = cv2.INTER_AREA if height * width < u.shape[1] * u.shape[2] else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (width, height), interpolation=mode) for f in u])


class WatermarkReader:
    """Reads the ledger id back from frames (a ``WatermarkReader`` port).

    Args:
        strength: the QIM step the clips were marked with.
        block: the LL-band tile side they were marked with.
    """

    def __init__(self, strength: float = 6.0, block: int = DEFAULT_BLOCK) -> None:
        self.strength = strength
        self.block = block

    def read(self, frames: Frames) -> str:
        """Return the ledger id, or ``""`` when no size candidate decodes with a valid CRC."""
        return self.read_array(frames.array)

    def read_array(self, array: NDArray[np.uint8]) -> str:
        """Return the ledger id carried by ``array`` (T,H,W,3) uint8 RGB, or ``""``."""
        if array.ndim != 4 or array.shape[0] == 0 or array.shape[3] != 3:
            return ""
        budget = READ_SAMPLE_PIXELS // (array.shape[1] * array.shape[2])
        count = min(READ_SAMPLE_FRAMES, max(MIN_SAMPLE_FRAMES, budget))
        picks = np.unique(np.linspace(0, array.shape[0] - 1, count).round())
        u = np.stack([u_channel(array[int(i)]) for i in picks])
        for height, width in candidate_sizes(*u.shape[1:]):
            # NOTE: past 2x either way a 16 px tile is under 4 chroma samples: nothing to read.
            if not 0.49 <= height / u.shape[1] <= 2.01:
                continue
            for tile in _tiles_to_try(height, width, self.block):
                ledger_id = _read_grid(_resize(u, height, width), tile, self.strength)
                if ledger_id:
                    return ledger_id
        return ""


def read_image(rgb: NDArray[np.uint8], *, strength: float = 6.0, block: int = DEFAULT_BLOCK) -> str:
    """Return the ledger id in one (H,W,3) uint8 RGB image (a photo or a still), or ``""``."""
    return WatermarkReader(strength, block).read_array(rgb[None])

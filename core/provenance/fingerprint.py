"""Step 6 of the pipeline (with the watermark): PDQ perceptual hashes of a clip's keyframes.

The ledger stores these hashes; verify hashes a file again and looks for the nearest stored
one, which finds a clip after resizing or re-encoding even when its metadata and watermark are
gone. Hashes are 64 hex characters in the standard PDQ order (ThreatExchange's ``toString``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from core.types import Frames

if TYPE_CHECKING:
    from numpy.typing import NDArray

log = logging.getLogger(__name__)

# NOTE: PDQ's reference implementation calls hashes below quality 50 unreliable (flat frames).
MIN_QUALITY = 50
HASH_HEX_CHARS = 64


class PdqFingerprinter:
    """Hashes keyframes with PDQ (a ``Fingerprinter``): the first frame, then one per second."""

    def fingerprint(self, frames: Frames) -> tuple[str, ...]:
        """Return one 64-hex PDQ hash per usable keyframe (low-quality frames are skipped)."""
        step = max(1, frames.fps)
        hashes = (hash_image(frames.array[i]) for i in range(0, frames.count, step))
        return tuple(h for h in hashes if h)

    def hash_image(self, rgb: NDArray[np.uint8]) -> str:
        """Return the PDQ hash of one ``(H, W, 3)`` uint8 RGB image, or ``""`` if unreliable."""
        return hash_image(rgb)


def hash_image(rgb: NDArray[np.uint8]) -> str:
    """Return the PDQ hash of one ``(H, W, 3)`` uint8 RGB image, or ``""`` if unreliable."""
    import pdqhash

    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb, dtype=np.uint8))
    if quality < MIN_QUALITY:
        log.debug("PDQ quality %d below %d; frame not hashed", quality, MIN_QUALITY)
        return ""
    # pdqhash returns bit 255 first, so packing MSB-first gives the standard hex order.
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()


def hamming(a_hex: str, b_hex: str) -> int:
    """Return the number of differing bits between two PDQ hex hashes (0..256).

    Raises:
        ValueError: if either is not a 64-character hex string.
    """
    if len(a_hex) != HASH_HEX_CHARS or len(b_hex) != HASH_HEX_CHARS:
        raise ValueError("PDQ hashes are 64 hex characters")
    return (int(a_hex, 16) ^ int(b_hex, 16)).bit_count()

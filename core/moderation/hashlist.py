"""Step 2 of the pipeline, photo side, after the decoding limits: refuse known-bad images.

The operator supplies a list of PDQ hashes of images that must never be animated (for
example from a hash-sharing programme). The file format is documented in
``config/policy.toml`` and the README: one 64-hex PDQ hash per line, ``#`` comments, blank
lines ignored. A photo whose PDQ hash is within the policy's ``distance`` of an entry is
blocked with code ``hash_match``; the verdict carries the entry's line number and the
distance for the audit record, and never a hash, so nothing about the list reaches users.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.errors import ConfigError
from core.frames import fit_within
from core.types import Image, Stage, Verdict

if TYPE_CHECKING:
    from numpy.typing import NDArray

log = logging.getLogger(__name__)

HASH_HEX_CHARS = 64
# NOTE: photos are hashed scaled to fit 512 px (OpenCV INTER_AREA): pdqhash took 4 ms at 512 px
# and 2.6 s on a 12-megapixel photo here. Hashes of the same image computed whole by another
# tool can differ by more than the match distance, so list entries should be computed the same
# way: `python -m core.moderation.hashlist PHOTO...` prints them.
HASH_SIDE = 512


def parse_hash_list(text: str, source: str = "hash list") -> tuple[NDArray[np.uint8], list[int]]:
    """Parse the list into a ``(n, 32)`` byte matrix and each entry's line number (1-based).

    Raises:
        ConfigError: naming the line of the first malformed entry (never its content).
    """
    rows: list[bytes] = []
    lines: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            if len(entry) != HASH_HEX_CHARS:
                raise ValueError
            rows.append(bytes.fromhex(entry))
        except ValueError:
            raise ConfigError(f"{source}: line {number} is not a 64-hex PDQ hash") from None
        lines.append(number)
    matrix = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), 32)
    return matrix, lines


def pdq_bytes(rgb: NDArray[np.uint8]) -> tuple[NDArray[np.uint8], int]:
    """Return the PDQ hash of an RGB image as 32 bytes (standard order) and its quality."""
    import pdqhash

    small = fit_within(rgb, HASH_SIDE)
    bits, quality = pdqhash.compute(np.ascontiguousarray(small, dtype=np.uint8))
    # pdqhash returns bit 255 first, so packing MSB-first gives the standard hex order.
    return np.packbits(np.asarray(bits, dtype=np.uint8)), int(quality)


class HashListCheck:
    """Refuses a photo whose PDQ hash is near an entry of the operator's list.

    Args:
        matrix: ``(n, 32)`` hash bytes, as :func:`parse_hash_list` returns.
        lines: each entry's line number in the list file.
        distance: the largest Hamming distance (of 256 bits) that counts as a match.
        min_quality: PDQ quality below which a photo's hash is too unreliable to match.
    """

    name = "hash-list"

    def __init__(
        self, matrix: NDArray[np.uint8], lines: list[int], distance: int, min_quality: int
    ) -> None:
        self._matrix = matrix
        self._lines = lines
        self._distance = distance
        self._min_quality = min_quality

    @classmethod
    def from_file(cls, path: Path, distance: int, min_quality: int) -> HashListCheck:
        """Load the list file; raise ``ConfigError`` if it is missing or malformed."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the hash list {path}: {exc}") from None
        matrix, lines = parse_hash_list(text, str(path))
        log.info("loaded %d hash list entries", len(lines))
        return cls(matrix, lines, distance, min_quality)

    def __len__(self) -> int:
        return len(self._lines)

    def check(self, image: Image) -> Verdict:
        """Return ``hash_match`` with the entry's line and distance, or allow."""
        if not self._lines:
            return Verdict.ok(Stage.PHOTO, self.name)
        digest, quality = pdq_bytes(image.pixels)
        if quality < self._min_quality:
            return Verdict.ok(Stage.PHOTO, self.name, {"quality": float(quality)})
        distances = np.unpackbits(self._matrix ^ digest, axis=1).sum(axis=1)
        nearest = int(distances.argmin())
        if int(distances[nearest]) <= self._distance:
            return Verdict.reject(
                "hash_match",
                Stage.PHOTO,
                self.name,
                {"line": float(self._lines[nearest]), "distance": float(distances[nearest])},
            )
        return Verdict.ok(Stage.PHOTO, self.name)


def main(argv: list[str] | None = None) -> int:
    """Print list entries (``HASH  # file name``) for photos, hashed as the check hashes them."""
    import sys

    from core.moderation.limits import decode_photo
    from core.settings import Limits
    from core.types import Photo

    for name in argv if argv is not None else sys.argv[1:]:
        image = decode_photo(Photo(Path(name).read_bytes()), Limits())
        digest, quality = pdq_bytes(image.pixels)
        note = "" if quality >= 50 else f" (quality {quality}: too low to match)"
        print(f"{digest.tobytes().hex()}  # {Path(name).name}{note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

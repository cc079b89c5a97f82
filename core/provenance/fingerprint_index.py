"""The ledger's fingerprint lookup for verify: nearest PDQ hash by Hamming distance, fast at 1M.

Multi-index hashing (Norouzi, Punjani and Fleet, "Fast Search in Hamming Space with Multi-Index
Hashing", CVPR 2012): each 256-bit hash is cut into 16 substrings of 16 bits. Two hashes within
distance ``r`` agree within ``r // 16`` bits on at least one substring (pigeonhole), so probing
each substring's table with every key within that radius finds every true match; candidates are
then checked by their full distance. Recall equals a brute-force scan's.

The tables are sorted arrays (a bucket is a slice), so a million hashes take about 100 MB. New
hashes land in a small tail that is scanned directly and merged into the tables once it grows.
The index lives in memory and is rebuilt from stored fingerprints at start, so any ledger
(SQLite, Redis) can use it.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

log = logging.getLogger(__name__)

HASH_BYTES = 32  # NOTE: PDQ hashes are 256 bits (64 hex characters).
SUBSTRINGS = 16
SUBSTRING_BITS = 256 // SUBSTRINGS
# NOTE: radius 2 per substring is 1 + 16 + 120 probes each; past it a scan is cheaper.
MAX_PROBE_RADIUS = 2
# NOTE: the tail is scanned per query; merging when it reaches a quarter of the tables keeps
# the merge cost amortised (each hash is re-sorted O(log n) times) and the scan short.
MIN_TAIL = 4096


@functools.cache
def _probe_masks(radius: int) -> NDArray[np.uint16]:
    """XOR masks of every 16-bit key within ``radius`` bits of zero."""
    masks = [0]
    for r in range(1, radius + 1):
        masks += [sum(1 << b for b in bits) for bits in itertools.combinations(range(16), r)]
    return np.array(masks, dtype=np.uint16)


def parse_hashes(hashes: Iterable[str]) -> tuple[NDArray[np.uint8], list[int]]:
    """Return valid 64-hex hashes as ``(n, 32)`` bytes and the positions they came from."""
    rows: list[bytes] = []
    kept: list[int] = []
    for i, text in enumerate(hashes):
        if len(text) != 2 * HASH_BYTES:
            continue
        try:
            rows.append(bytes.fromhex(text))
        except ValueError:
            continue
        kept.append(i)
    data = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), HASH_BYTES)
    return data, kept


def distances(table: NDArray[np.uint8], query: NDArray[np.uint8]) -> NDArray[np.intp]:
    """Hamming distances from one 32-byte ``query`` to every row of ``table``."""
    xor = table.view(np.uint64) ^ query.view(np.uint64)
    counts: NDArray[np.intp] = np.bitwise_count(xor).sum(axis=1, dtype=np.intp)
    return counts


class FingerprintIndex:
    """Nearest-match lookup over PDQ hashes by Hamming distance; thread-safe.

    Each hash belongs to one ledger id (a clip has a hash per keyframe).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: list[str] = []
        self._id_rows: dict[str, int] = {}
        self._hashes = np.zeros((0, HASH_BYTES), np.uint8)
        self._owners = np.zeros(0, np.int32)
        self._size = 0  # rows in use; _hashes has spare capacity past it
        self._built = 0  # rows covered by the sorted tables
        self._order = np.zeros((SUBSTRINGS, 0), np.int32)
        self._starts = np.zeros((SUBSTRINGS, 1 << SUBSTRING_BITS | 1), np.int32)

    def __len__(self) -> int:
        """The number of hashes held."""
        return self._size

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (hashes, owners, tables); ledger ids not counted."""
        arrays = (self._hashes, self._owners, self._order, self._starts)
        return sum(a.nbytes for a in arrays)

    def add(self, ledger_id: str, hashes: Sequence[str]) -> None:
        """Add a clip's keyframe hashes (ones that are not 64 hex characters are ignored)."""
        self.add_many([(ledger_id, h) for h in hashes])

    def add_many(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Add ``(ledger_id, hex hash)`` pairs in one go, as a start-up load does."""
        pairs = list(pairs)
        data, kept = parse_hashes(h for _, h in pairs)
        with self._lock:
            owners = np.array([self._owner(pairs[i][0]) for i in kept], dtype=np.int32)
            self._append(data, owners)
            if self._size - self._built >= max(MIN_TAIL, self._built // 4):
                self._build()

    def nearest(self, hashes: Sequence[str], max_distance: int) -> tuple[str, int] | None:
        """Return the ledger id and distance of the closest stored hash within the limit."""
        queries, _ = parse_hashes(hashes)
        best: tuple[int, int] | None = None  # (distance, row)
        with self._lock:
            for query in queries:
                rows = self._candidates(query, max_distance)
                if rows.size == 0:
                    continue
                found = distances(self._hashes[rows], query)
                i = int(np.argmin(found))
                if found[i] <= max_distance and (best is None or found[i] < best[0]):
                    best = (int(found[i]), int(rows[i]))
            if best is None:
                return None
            return self._ids[self._owners[best[1]]], best[0]

    def _owner(self, ledger_id: str) -> int:
        row = self._id_rows.get(ledger_id)
        if row is None:
            row = self._id_rows[ledger_id] = len(self._ids)
            self._ids.append(ledger_id)
        return row

    def _append(self, data: NDArray[np.uint8], owners: NDArray[np.int32]) -> None:
        need = self._size + len(data)
        if need > len(self._hashes):
            capacity = max(need, 2 * len(self._hashes), 1024)
            grown = np.zeros((capacity, HASH_BYTES), np.uint8)
            grown[: self._size] = self._hashes[: self._size]
            grown_owners = np.zeros(capacity, np.int32)
            grown_owners[: self._size] = self._owners[: self._size]
            self._hashes, self._owners = grown, grown_owners
        self._hashes[self._size : need] = data
        self._owners[self._size : need] = owners
        self._size = need

    def _build(self) -> None:
        """Sort every substring table over all rows (the tail joins the tables)."""
        keys = self._keys(self._hashes[: self._size])
        self._order = np.argsort(keys, axis=0, kind="stable").T.astype(np.int32)
        bins = np.arange((1 << SUBSTRING_BITS) + 1)
        self._starts = np.stack(
            [np.searchsorted(keys[order, j], bins) for j, order in enumerate(self._order)]
        ).astype(np.int32)
        self._built = self._size
        log.debug("fingerprint index rebuilt over %d hashes", self._size)

    @staticmethod
    def _keys(data: NDArray[np.uint8]) -> NDArray[np.uint16]:
        return data.view(">u2").astype(np.uint16)

    def _candidates(self, query: NDArray[np.uint8], max_distance: int) -> NDArray[np.intp]:
        """Rows that may lie within ``max_distance``: table probes plus the unsorted tail."""
        radius = max_distance // SUBSTRINGS
        tail = np.arange(self._built, self._size)
        if radius > MAX_PROBE_RADIUS:
            return np.arange(self._size)
        if self._built == 0:
            return tail
        keys = self._keys(query[None])[0]
        masks = _probe_masks(radius)
        found = [tail]
        for j in range(SUBSTRINGS):
            probes = (keys[j] ^ masks).astype(np.intp)
            lo, hi = self._starts[j, probes], self._starts[j, probes + 1]
            counts = hi - lo
            total = int(counts.sum())
            if total:
                # Concatenate the slices [lo, hi) without a Python loop over buckets.
                offsets = np.repeat(lo - np.cumsum(counts) + counts, counts)
                found.append(self._order[j, offsets + np.arange(total)])
        return np.unique(np.concatenate(found))

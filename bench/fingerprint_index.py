"""Time the fingerprint index verify uses: build, memory, query latency and recall vs a scan.

Run: ``.venv/bin/python bench/fingerprint_index.py`` (``--sizes 10000 100000`` to choose).
Stored hashes are random 256-bit PDQ-like values, three per ledger id (a 3 s clip has three
keyframes); half the queries are planted near copies of a stored hash (0-31 bits flipped),
half are random (no match). Recall compares the index with a full NumPy scan at distance <= 31.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.provenance.fingerprint_index import FingerprintIndex, distances

MAX_DISTANCE = 31  # NOTE: settings.provenance.fingerprint_max_distance, PDQ's usual threshold.
KEYFRAMES_PER_CLIP = 3


def _queries(stored: np.ndarray, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for i in range(count):
        if i % 2:
            out.append(rng.integers(0, 256, 32, dtype=np.uint8))
            continue
        q = stored[rng.integers(len(stored))].copy()
        for bit in rng.choice(256, int(rng.integers(0, MAX_DISTANCE + 1)), replace=False):
            q[bit // 8] ^= np.uint8(1 << (bit % 8))
        out.append(q)
    return out


def run(size: int, queries: int, rng: np.random.Generator) -> tuple[str, ...]:
    stored = rng.integers(0, 256, (size, 32), dtype=np.uint8)
    pairs = [
        (f"{i // KEYFRAMES_PER_CLIP:012x}", row.tobytes().hex()) for i, row in enumerate(stored)
    ]
    index = FingerprintIndex()
    start = time.perf_counter()
    index.add_many(pairs)
    build_s = time.perf_counter() - start
    del pairs
    times, scan_times, hits, expected = [], [], 0, 0
    for q in _queries(stored, queries, rng):
        text = q.tobytes().hex()
        start = time.perf_counter()
        got = index.nearest([text], MAX_DISTANCE)
        times.append(time.perf_counter() - start)
        start = time.perf_counter()
        best = int(distances(stored, q).min())
        scan_times.append(time.perf_counter() - start)
        if best <= MAX_DISTANCE:
            expected += 1
            hits += got is not None and got[1] == best
        else:
            assert got is None, "the index found a match the scan did not"
    ms = sorted(t * 1000 for t in times)
    return (
        f"{size:>9,}",
        f"{build_s:8.2f}",
        f"{index.nbytes / 2**20:8.1f}",
        f"{statistics.median(ms):7.2f}",
        f"{ms[int(len(ms) * 0.99) - 1]:7.2f}",
        f"{statistics.median(scan_times) * 1000:8.2f}",
        f"{hits}/{expected}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=400)
    args = parser.parse_args()
    rng = np.random.default_rng(2024)
    head = ("hashes", "build s", "index MB", "p50 ms", "p99 ms", "scan ms", "recall<=31")
    print(" | ".join(head))
    for size in args.sizes:
        print(" | ".join(run(size, args.queries, rng)), flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the whole run: {peak:.0f} MB (includes the test data and the scan copy)")


if __name__ == "__main__":
    main()

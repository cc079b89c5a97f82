"""The fingerprint index finds exactly what a brute-force scan finds, however it was filled."""

from __future__ import annotations

import numpy as np
import pytest

from core.provenance.fingerprint_index import FingerprintIndex, distances


def _flip(row: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    out = row.copy()
    for bit in rng.choice(256, bits, replace=False):
        out[bit // 8] ^= np.uint8(1 << (bit % 8))
    return out


def _brute(stored: np.ndarray, query: np.ndarray, limit: int) -> int | None:
    found = distances(stored, query)
    best = int(found.min())
    return best if best <= limit else None


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(11)
    stored = rng.integers(0, 256, (6000, 32), dtype=np.uint8)
    # Near-duplicates inside the store too: the closest one must win, not the first.
    for i in range(0, 600, 3):
        stored[i + 1] = _flip(stored[i], 4, rng)
        stored[i + 2] = _flip(stored[i], 20, rng)
    return stored, [f"{i // 3:012x}" for i in range(len(stored))]


@pytest.mark.parametrize("bulk", [True, False], ids=["loaded-at-start", "recorded-one-by-one"])
def test_matches_brute_force_at_every_radius(
    data: tuple[np.ndarray, list[str]], bulk: bool
) -> None:
    stored, owners = data
    index = FingerprintIndex()
    pairs = [(owner, row.tobytes().hex()) for owner, row in zip(owners, stored, strict=True)]
    if bulk:
        index.add_many(pairs)
    else:
        for owner, text in pairs:
            index.add(owner, [text])
    assert len(index) == len(stored)
    rng = np.random.default_rng(5)
    for trial in range(150):
        base = stored[rng.integers(len(stored))] if trial % 5 else rng.integers(0, 256, 32)
        query = _flip(base.astype(np.uint8), int(rng.integers(0, 50)), rng)
        # Radii cover exact buckets (<=15), one-bit probes (<=31), two-bit (<=47) and the scan.
        for limit in (0, 15, 31, 40, 60):
            got = index.nearest([query.tobytes().hex()], limit)
            expected = _brute(stored, query, limit)
            if expected is None:
                assert got is None
            else:
                assert got is not None
                assert got[1] == expected
                owner_rows = [i for i, o in enumerate(owners) if o == got[0]]
                assert int(distances(stored[owner_rows], query).min()) == expected


def test_several_query_hashes_take_the_best_and_bad_input_is_ignored() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 256, (2, 32), dtype=np.uint8)
    index = FingerprintIndex()
    index.add("aaaaaaaaaaaa", [a.tobytes().hex(), "not hex" * 8, "abc"])
    index.add("bbbbbbbbbbbb", [b.tobytes().hex()])
    assert len(index) == 2
    far = _flip(a, 25, rng).tobytes().hex()
    close = _flip(b, 2, rng).tobytes().hex()
    assert index.nearest([far, close, "zz"], 31) == ("bbbbbbbbbbbb", 2)
    assert index.nearest([far], 31) == ("aaaaaaaaaaaa", 25)
    assert index.nearest([far], 24) is None
    assert index.nearest([], 31) is None
    assert FingerprintIndex().nearest([far], 31) is None

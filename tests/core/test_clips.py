from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from core.clips import ClipStore


def test_save_load_delete(tmp_path: Path) -> None:
    store = ClipStore(tmp_path / "clips")
    store.save("0123456789ab", b"clip")
    assert store.load("0123456789ab") == b"clip"
    assert store.delete("0123456789ab")
    assert store.load("0123456789ab") is None
    assert not store.delete("0123456789ab")


@pytest.mark.parametrize("bad", ["../../etc/passwd", "0123456789AB", "abc", "", "0123456789ab/"])
def test_only_ledger_ids_name_files(tmp_path: Path, bad: str) -> None:
    store = ClipStore(tmp_path / "clips")
    assert store.load(bad) is None
    with pytest.raises(ValueError, match="ledger id"):
        store.path(bad)


def test_sweep_deletes_only_expired_clips(tmp_path: Path) -> None:
    store = ClipStore(tmp_path / "clips")
    old = store.save("aaaaaaaaaaaa", b"old")
    store.save("bbbbbbbbbbbb", b"new")
    month_ago = time.time() - 31 * 86400
    os.utime(old, (month_ago, month_ago))
    assert store.sweep(keep_days=30) == 1
    assert store.load("aaaaaaaaaaaa") is None
    assert store.load("bbbbbbbbbbbb") == b"new"

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

from core.audit import AuditLog
from core.provenance.ledger import SqliteLedger, entry_to_json, hamming
from core.store import Database
from core.types import ChatRef, LedgerEntry, Stage, Verdict


def entry(ledger_id: str, fingerprints: tuple[str, ...]) -> LedgerEntry:
    return LedgerEntry(
        id=ledger_id,
        created=1.0,
        source_sha256="a" * 64,
        prompt_sha256="",
        backend="procedural",
        model="procedural-1",
        fingerprints=fingerprints,
        manifest_id="urn:c2pa:x",
        clip_sha256="b" * 64,
        chat=ChatRef("telegram", "-100", "7", "42"),
    )


def test_new_ids_are_12_hex_and_unique(tmp_path: Path) -> None:
    ledger = SqliteLedger(Database(tmp_path / "db"))
    ids = {ledger.new_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"[0-9a-f]{12}", i) for i in ids)


def test_record_get_round_trip_and_survives_reopen(tmp_path: Path) -> None:
    ledger = SqliteLedger(Database(tmp_path / "db"))
    ledger.record(entry("0123456789ab", ("f" * 64,)))
    reopened = SqliteLedger(Database(tmp_path / "db"))
    got = reopened.get("0123456789ab")
    assert got == entry("0123456789ab", ("f" * 64,))
    assert reopened.get("ffffffffffff") is None


def test_nearest_finds_closest_within_limit(tmp_path: Path) -> None:
    ledger = SqliteLedger(Database(tmp_path / "db"))
    base = int("0" * 64, 16)
    near = f"{base ^ 0b111:064x}"  # 3 bits away
    far = f"{(1 << 200) - 1:064x}"  # 200 bits away
    ledger.record(entry("aaaaaaaaaaaa", (near,)))
    ledger.record(entry("bbbbbbbbbbbb", (far,)))
    assert ledger.nearest(["0" * 64], max_distance=31) == ("aaaaaaaaaaaa", 3)
    assert ledger.nearest([f"{(1 << 64) - 1:064x}"], max_distance=31) is None
    assert ledger.nearest([], max_distance=31) is None
    assert hamming(near, "0" * 64) == 3


def test_revoke_marks_entry_and_reports_unknown(tmp_path: Path) -> None:
    ledger = SqliteLedger(Database(tmp_path / "db"))
    ledger.record(entry("aaaaaaaaaaaa", ()))
    assert ledger.revoke("aaaaaaaaaaaa", "reported: impersonation")
    got = ledger.get("aaaaaaaaaaaa")
    assert got is not None
    assert got.revoked
    assert got.revoked_reason == "reported: impersonation"
    assert not ledger.revoke("cccccccccccc", "x")


def test_audit_keeps_codes_and_hashes_only(tmp_path: Path) -> None:
    audit = AuditLog(Database(tmp_path / "db"))
    verdict = Verdict.reject("prompt_violence", Stage.PROMPT, "prompt-lexicon", {"length": 12})
    audit.verdict(verdict, source_sha256="c" * 64, prompt_sha256="d" * 64, chat=None)
    (record,) = audit.records("moderation")
    assert record["code"] == "prompt_violence"
    assert record["stage"] == "prompt"
    assert record["prompt_sha256"] == "d" * 64
    assert record["scores"] == {"length": 12}


def test_revoke_records_when_and_a_second_take_down_keeps_it(tmp_path: Path) -> None:
    ledger = SqliteLedger(Database(tmp_path / "db"))
    ledger.record(entry("aaaaaaaaaaaa", ()))
    assert ledger.get("aaaaaaaaaaaa").revoked_at == 0.0  # type: ignore[union-attr]
    before = time.time()
    assert ledger.revoke("aaaaaaaaaaaa", "first")
    first = ledger.get("aaaaaaaaaaaa")
    assert first is not None
    assert before <= first.revoked_at <= time.time()
    assert ledger.revoke("aaaaaaaaaaaa", "second")
    again = ledger.get("aaaaaaaaaaaa")
    assert again is not None
    assert again.revoked_at == first.revoked_at
    assert again.revoked_reason == "second"


def test_a_ledger_table_without_revoked_at_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE ledger (id TEXT PRIMARY KEY, created REAL NOT NULL, entry TEXT NOT NULL,"
            " revoked INTEGER NOT NULL DEFAULT 0, revoked_reason TEXT NOT NULL DEFAULT '');"
        )
        conn.execute(
            "INSERT INTO ledger VALUES (?, 1.0, ?, 1, 'old')",
            ("aaaaaaaaaaaa", entry_to_json(entry("aaaaaaaaaaaa", ()))),
        )
    ledger = SqliteLedger(Database(path))
    old = ledger.get("aaaaaaaaaaaa")
    assert old is not None
    assert (old.revoked, old.revoked_reason, old.revoked_at) == (True, "old", 0.0)
    SqliteLedger(Database(path))  # a second open finds the column and leaves it


def test_fingerprints_are_found_after_reopen_and_right_after_record(tmp_path: Path) -> None:
    ledger = SqliteLedger(Database(tmp_path / "db"))
    ledger.record(entry("aaaaaaaaaaaa", ("0" * 63 + "7",)))
    assert ledger.nearest(["0" * 64], 31) == ("aaaaaaaaaaaa", 3)
    reopened = SqliteLedger(Database(tmp_path / "db"))
    assert reopened.nearest(["0" * 64], 31) == ("aaaaaaaaaaaa", 3)
    reopened.record(entry("bbbbbbbbbbbb", ("0" * 63 + "1",)))
    assert reopened.nearest(["0" * 64], 31) == ("bbbbbbbbbbbb", 1)

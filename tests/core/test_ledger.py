from __future__ import annotations

import re
from pathlib import Path

from core.audit import AuditLog
from core.provenance.ledger import SqliteLedger, hamming
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

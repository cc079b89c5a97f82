"""One contract for the Store port: SQLite (embedded) and Redis (distributed) behave the same."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from core.audit import request_ref
from core.community import (
    CHAT_WIDE,
    ChatSettings,
    ClipMessage,
    ConsentRequest,
    PendingReply,
    Report,
)
from core.ports import Store
from core.settings import Settings
from core.state import RedisStore, SqliteStore
from core.store import Database
from core.types import ChatRef, LedgerEntry, Stage, Verdict

FP_A = "f" * 64
FP_B = "0" * 63 + "1"


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Store]:
    if request.param == "sqlite":
        db = Database(settings.data_dir / "alive.db")
        yield SqliteStore.open(db)
        db.close()
    else:
        opened = RedisStore.open(request.getfixturevalue("redis_url"))
        yield opened
        opened.close()


def entry(ledger_id: str, *fingerprints: str) -> LedgerEntry:
    return LedgerEntry(
        ledger_id, 1000.0, "a" * 64, "", "procedural", "procedural-1", fingerprints, "urn:m",
        "b" * 64, ChatRef("telegram", "-1", "7"),
    )  # fmt: skip


def test_ledger_records_finds_and_revokes(store: Store) -> None:
    ledger = store.ledger
    first, second = ledger.new_id(), ledger.new_id()
    assert first != second
    assert len(first) == 12
    ledger.record(entry(first, FP_A))
    ledger.record(entry(second, FP_B, FP_B))
    got = ledger.get(first)
    assert got == entry(first, FP_A)
    assert ledger.get("0" * 12) is None
    near = "f" * 63 + "8"  # 3 bits from FP_A
    assert ledger.nearest([near], 10) == (first, 3)
    assert ledger.nearest([near], 2) is None
    assert ledger.nearest(["0" * 64], 5) == (second, 1)
    assert ledger.nearest([], 5) is None
    assert ledger.revoke(first, "reported") is True
    assert ledger.revoke("0" * 12, "x") is False
    revoked = ledger.get(first)
    assert revoked is not None
    assert revoked.revoked
    assert revoked.revoked_reason == "reported"


def test_chat_settings_round_trip(store: Store) -> None:
    community = store.community
    assert community.chat_settings("telegram", "-1") == ChatSettings()
    changed = ChatSettings(enabled=False, daily_quota=3, consent="never", language="it")
    community.save_chat_settings("telegram", "-1", changed)
    assert community.chat_settings("telegram", "-1") == changed
    assert community.chat_settings("discord", "-1") == ChatSettings()
    with pytest.raises(ValueError, match="consent"):
        community.save_chat_settings("telegram", "-1", ChatSettings(consent="maybe"))


def test_quotas_count_per_user_and_chat(store: Store) -> None:
    community = store.community
    day = "2026-01-01"
    assert community.take_quota("t", "c", "u1", day, 2, 3)
    assert community.take_quota("t", "c", "u1", day, 2, 3)
    assert not community.take_quota("t", "c", "u1", day, 2, 3)  # user limit
    assert community.take_quota("t", "c", "u2", day, 2, 3)
    assert not community.take_quota("t", "c", "u3", day, 2, 3)  # chat limit
    assert community.quota_used("t", "c", "u1", day) == 2
    assert community.quota_used("t", "c", CHAT_WIDE, day) == 3
    community.give_back_quota("t", "c", "u2", day)
    assert community.quota_used("t", "c", "u2", day) == 0
    assert community.take_quota("t", "c", "u3", day, 2, 3)
    assert community.quota_used("t", "c", "u1", "2026-01-02") == 0


def test_quota_holds_under_concurrent_takers(store: Store) -> None:
    def take(i: int) -> bool:
        return store.community.take_quota("t", "c", f"u{i % 4}", "d", 100, 10)

    with ThreadPoolExecutor(8) as pool:
        granted = sum(pool.map(take, range(40)))
    assert granted == 10
    assert store.community.quota_used("t", "c", CHAT_WIDE, "d") == 10


def test_consent_is_decided_once_by_its_owner(store: Store) -> None:
    community = store.community
    asked = community.create_consent(ConsentRequest("", "t", "c", "req", "own", "ref", "/alive"))
    assert asked.id
    assert asked.state == "pending"
    assert community.get_consent(asked.id) == asked
    assert community.decide_consent(asked.id, "someone", True) is None
    decided = community.decide_consent(asked.id, "own", True)
    assert decided is not None
    assert decided.state == "allowed"
    assert community.decide_consent(asked.id, "own", False) is None
    assert community.get_consent("nope") is None


def test_reports_queue_and_take_down(store: Store) -> None:
    community = store.community
    first = community.add_report(Report(0, "report", "t", "c", "clip1", "u1", "bad"))
    assert first is not None
    assert first.state == "open"
    assert community.add_report(Report(0, "report", "t", "c", "clip1", "u1", "again")) is None
    second = community.add_report(Report(0, "report", "t", "c", "clip1", "u2", "bad"))
    other = community.add_report(Report(0, "report", "t", "c", "clip2", "u1", "meh"))
    assert second is not None
    assert other is not None
    assert [r.id for r in community.open_reports("t")] == [first.id, second.id, other.id]
    assert community.reports_since("t", "u1", time.time() - 60) == 2
    assert community.reports_since("t", "u1", time.time() + 60) == 0
    resolved = community.resolve_report(first.id, "taken_down", "mod")
    assert resolved is not None
    assert resolved.state == "taken_down"
    assert resolved.resolved_by == "mod"
    assert [r.id for r in community.open_reports("t")] == [other.id]
    assert community.resolve_report(second.id, "dismissed", "mod") is None
    assert community.get_report(999) is None


def test_clip_messages(store: Store) -> None:
    community = store.community
    sent = ClipMessage("abcdef012345", "t", "c", "42", "u1")
    community.record_clip_message(sent)
    community.record_clip_message(ClipMessage("abcdef012345", "t", "c2", "7", "u1"))
    assert community.clip_at("t", "c", "42") == sent
    assert len(community.clip_messages("abcdef012345")) == 2
    community.forget_clip_message("t", "c", "42")
    assert community.clip_at("t", "c", "42") is None
    assert [m.chat_id for m in community.clip_messages("abcdef012345")] == ["c2"]


def test_pending_replies_survive_until_forgotten(store: Store) -> None:
    community = store.community
    first = PendingReply("job1", "t", "c", "u1", '{"reply": 1}', created=100.0)
    community.save_pending_reply(first)
    community.save_pending_reply(PendingReply("job2", "t", "c", "u2", "{}", created=200.0))
    community.save_pending_reply(PendingReply("job3", "d", "g", "u1", "{}", created=50.0))
    # A later save changes the target only: the reply keeps its place in line.
    community.save_pending_reply(PendingReply("job1", "t", "c", "u1", '{"status": 9}', 300.0))
    owed = community.pending_replies("t")
    assert [(r.job_id, r.target, r.created) for r in owed] == [
        ("job1", '{"status": 9}', 100.0),
        ("job2", "{}", 200.0),
    ]
    community.forget_pending_reply("t", "job1")
    community.forget_pending_reply("t", "job3")  # another platform's: untouched
    assert [r.job_id for r in community.pending_replies("t")] == ["job2"]
    assert [r.job_id for r in community.pending_replies("d")] == ["job3"]


def test_audit_records_in_order(store: Store) -> None:
    audit = store.audit
    audit.verdict(Verdict.reject("nsfw", Stage.PHOTO, "nudenet"), source_sha256="s",
                  prompt_sha256="", chat=None)  # fmt: skip
    audit.write("takedown", {"ledger_id": "x"})
    records = audit.records()
    assert [r["kind"] for r in records] == ["moderation", "takedown"]
    assert records[0]["code"] == "nsfw"
    assert [r["ledger_id"] for r in audit.records("takedown")] == ["x"]
    assert store.ping()


def test_audit_finds_the_newest_decision_of_a_request(store: Store) -> None:
    audit = store.audit
    ref, other = request_ref("job1"), request_ref("job2")
    assert ref != other
    assert len(ref) == 64
    allowed = Verdict.ok(Stage.PHOTO, "all", {"faces": 1.0})
    rejected = Verdict.reject("nsfw_output", Stage.OUTPUT, "nudenet", {"nsfw": 0.9})
    audit.verdict(allowed, source_sha256="s", prompt_sha256="", chat=None, request_ref=ref)
    audit.verdict(rejected, source_sha256="s", prompt_sha256="", chat=None, request_ref=ref)
    audit.verdict(allowed, source_sha256="t", prompt_sha256="", chat=None, request_ref=other)
    found = audit.find("moderation", ref)
    assert found is not None
    assert (found["code"], found["stage"], found["scores"]) == ("nsfw_output", "output",
                                                                {"nsfw": 0.9})  # fmt: skip
    assert found["request_ref"] == ref
    other_found = audit.find("moderation", other)
    assert other_found is not None
    assert other_found["source_sha256"] == "t"
    assert audit.find("takedown", ref) is None
    assert audit.find("moderation", request_ref("job3")) is None
    assert audit.find("moderation", "") is None

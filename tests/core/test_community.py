"""The community tables: chat settings, quotas, consent, reports and sent clips."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.community import ChatSettings, ClipMessage, CommunityStore, ConsentRequest, Report
from core.store import Database


@pytest.fixture
def store(tmp_path: Path) -> CommunityStore:
    return CommunityStore(Database(tmp_path / "alive.db"))


def test_settings_default_then_round_trip(store: CommunityStore) -> None:
    assert store.chat_settings("telegram", "-1") == ChatSettings()
    chosen = ChatSettings(False, 3, 50, "never", 2.0, "it", "-99")
    store.save_chat_settings("telegram", "-1", chosen)
    assert store.chat_settings("telegram", "-1") == chosen
    assert store.chat_settings("discord", "-1") == ChatSettings()
    with pytest.raises(ValueError, match="consent"):
        store.save_chat_settings("telegram", "-1", ChatSettings(consent="maybe"))


def test_quota_counts_user_and_chat_and_refuses_over_either(store: CommunityStore) -> None:
    day = "2026-01-01"
    assert store.take_quota("t", "c", "ann", day, user_limit=2, chat_limit=3)
    assert store.take_quota("t", "c", "ann", day, user_limit=2, chat_limit=3)
    assert not store.take_quota("t", "c", "ann", day, user_limit=2, chat_limit=3)
    assert store.take_quota("t", "c", "bob", day, user_limit=2, chat_limit=3)
    assert not store.take_quota("t", "c", "bob", day, user_limit=2, chat_limit=3)  # chat full
    assert store.quota_used("t", "c", "bob", day) == 1
    store.give_back_quota("t", "c", "bob", day)
    assert store.quota_used("t", "c", "bob", day) == 0
    assert store.take_quota("t", "c", "ann", "2026-01-02", user_limit=2, chat_limit=3)


def test_consent_is_decided_once_and_only_by_the_owner(store: CommunityStore) -> None:
    request = store.create_consent(ConsentRequest("", "t", "c", "bob", "ann", "ref", "text"))
    assert request.state == "pending"
    assert store.decide_consent(request.id, "bob", True) is None
    decided = store.decide_consent(request.id, "ann", False)
    assert decided is not None
    assert decided.state == "declined"
    assert store.decide_consent(request.id, "ann", True) is None


def test_one_report_per_person_per_clip_and_take_down_closes_the_rest(
    store: CommunityStore,
) -> None:
    first = store.add_report(Report(0, "report", "t", "c", "clip1", "bob", "fake"))
    assert first is not None
    assert store.add_report(Report(0, "report", "t", "c", "clip1", "bob", "again")) is None
    second = store.add_report(Report(0, "report", "t", "c", "clip1", "eve", ""))
    assert second is not None
    assert store.reports_since("t", "bob", 0) == 1
    resolved = store.resolve_report(first.id, "taken_down", "mod")
    assert resolved is not None
    assert resolved.state == "taken_down"
    assert store.open_reports("t") == []
    assert store.resolve_report(second.id, "dismissed", "mod") is None


def test_clip_messages_map_both_ways(store: CommunityStore) -> None:
    store.record_clip_message(ClipMessage("clip1", "t", "c", "10", "ann"))
    found = store.clip_at("t", "c", "10")
    assert found is not None
    assert found.ledger_id == "clip1"
    assert [m.message_id for m in store.clip_messages("clip1")] == ["10"]
    store.forget_clip_message("t", "c", "10")
    assert store.clip_at("t", "c", "10") is None

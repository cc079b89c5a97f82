"""One verdict from the layers, said first in plain words, and one public JSON shape."""

from __future__ import annotations

import dataclasses
import json

import pytest

from bots.render import public_report, verify_lines
from core.provenance.verify import decide, fingerprint_confidence
from core.types import (
    ChatRef,
    Credentials,
    CredentialState,
    LedgerEntry,
    VerdictKind,
    VerifyReport,
)

MADE = 1_767_225_600.0  # 2026-01-01 00:00 UTC
TAKEN_DOWN = MADE + 86_400 * 3
ENTRY = LedgerEntry(
    id="0123456789ab",
    created=MADE,
    source_sha256="a" * 64,
    prompt_sha256="b" * 64,
    backend="procedural",
    model="procedural-1",
    fingerprints=("c" * 64,),
    manifest_id="urn:c2pa:x",
    clip_sha256="d" * 64,
    chat=ChatRef("telegram", "-100", "7", "42"),
)
TRUSTED = Credentials(CredentialState.TRUSTED, signer="alive signer", ledger_id=ENTRY.id)
NONE = Credentials(CredentialState.NONE)
OTHER = Credentials(
    CredentialState.VALID,
    codes=("signingCredential.untrusted",),
    reasons=("The signer is not one we know and trust.",),
    signer="Eve signer",
    ai_generated=True,
)
BROKEN = Credentials(
    CredentialState.INVALID,
    codes=("assertion.bmffHash.mismatch",),
    reasons=("The video was changed after it was signed.",),
    signer="alive signer",
)


@pytest.mark.parametrize(
    ("credentials", "entry", "via", "distance", "kind"),
    [
        (TRUSTED, ENTRY, "manifest", -1, VerdictKind.OURS_INTACT),
        (NONE, ENTRY, "watermark", -1, VerdictKind.OURS_STRIPPED_WATERMARK),
        (NONE, ENTRY, "fingerprint", 12, VerdictKind.OURS_STRIPPED_FINGERPRINT),
        (OTHER, None, "", -1, VerdictKind.SIGNED_BY_OTHER),
        (OTHER, ENTRY, "watermark", -1, VerdictKind.SIGNED_BY_OTHER),
        (BROKEN, ENTRY, "watermark", -1, VerdictKind.ALTERED),
        (BROKEN, None, "", -1, VerdictKind.ALTERED),
        (NONE, None, "", -1, VerdictKind.NONE),
    ],
)
def test_decide_names_one_kind(
    credentials: Credentials, entry: LedgerEntry | None, via: str, distance: int, kind: VerdictKind
) -> None:
    verdict = decide(credentials, entry, via, distance, 31)
    assert verdict.kind is kind
    assert verdict.ledger_id == (entry.id if entry else "")
    assert verdict.made_at == (MADE if entry else 0.0)
    if kind is VerdictKind.SIGNED_BY_OTHER:
        assert (verdict.signer, verdict.trusted) == ("Eve signer", False)
    if kind is VerdictKind.ALTERED:
        assert verdict.altered == BROKEN.reasons
    if kind is VerdictKind.OURS_STRIPPED_FINGERPRINT:
        assert verdict.confidence == fingerprint_confidence(12, 31)


def test_confidence_falls_with_distance() -> None:
    values = [fingerprint_confidence(d, 31) for d in (0, 8, 16, 31)]
    assert values[0] == 1.0
    assert values[-1] == 0.5
    assert values == sorted(values, reverse=True)
    assert fingerprint_confidence(-1, 31) == 0.0


def _report(credentials: Credentials, entry: LedgerEntry | None, via: str, d: int = -1):
    return VerifyReport(
        media="video",
        credentials=credentials,
        ledger=entry,
        watermark_id=entry.id if entry and via == "watermark" else "",
        fingerprint_id=entry.id if entry and via == "fingerprint" else "",
        fingerprint_distance=d,
        verdict=decide(credentials, entry, via, d, 31),
    )


@pytest.mark.parametrize(
    ("credentials", "entry", "via", "en", "it"),
    [
        (TRUSTED, ENTRY, "manifest", "Content Credentials are intact", "sono integre"),
        (NONE, ENTRY, "watermark", "by its invisible watermark", "dalla filigrana invisibile"),
        (NONE, ENTRY, "fingerprint", "fingerprint (confidence 81%)", "affidabilità 81%"),
        (OTHER, None, "", "Signed by someone else: Eve signer, a signer we don't", "Eve signer"),
        (BROKEN, ENTRY, "watermark", "Altered after signing", "Modificata dopo la firma"),
        (NONE, None, "", "does not prove it is authentic", "non prova che sia autentica"),
    ],
)
def test_the_verdict_is_the_first_line_in_each_language(
    credentials: Credentials, entry: LedgerEntry | None, via: str, en: str, it: str
) -> None:
    report = _report(credentials, entry, via, 12 if via == "fingerprint" else -1)
    english, italian = verify_lines(report), verify_lines(report, lang="it")
    assert en in english[0]
    assert it in italian[0]
    if entry is not None and report.verdict.kind.value.startswith("ours"):
        assert english[0].startswith("AI-generated: made by this service on 2026-01-01 00:00 UTC")
    if credentials is BROKEN:
        assert "  · The video was changed after it was signed." in english
        assert any("It matches a clip this service made" in line for line in english)


def test_a_take_down_comes_first_with_its_date() -> None:
    revoked = dataclasses.replace(ENTRY, revoked=True, revoked_reason="x", revoked_at=TAKEN_DOWN)
    for via, creds in (("manifest", TRUSTED), ("watermark", NONE), ("fingerprint", NONE)):
        lines = verify_lines(_report(creds, revoked, via, 3))
        assert lines[0] == "⚠ Taken down by moderators on 2026-01-04 00:00 UTC."
        assert lines[1].startswith("AI-generated: made by this service")
    undated = dataclasses.replace(revoked, revoked_at=0.0)
    assert verify_lines(_report(NONE, undated, "watermark"))[0].startswith("⚠ Taken down")
    assert verify_lines(_report(NONE, undated, "watermark"), lang="it")[0].startswith("⚠ Rimossa")


def test_public_json_has_the_verdict_and_keeps_who_asked_private() -> None:
    revoked = dataclasses.replace(ENTRY, revoked=True, revoked_at=TAKEN_DOWN)
    data = json.loads(json.dumps(public_report(_report(NONE, revoked, "fingerprint", 7))))
    assert data["verdict"]["kind"] == "ours_stripped_fingerprint"
    assert data["verdict"]["revoked_at"] == TAKEN_DOWN
    assert data["verdict"]["confidence"] == fingerprint_confidence(7, 31)
    assert data["ours"] is True
    assert data["revoked"] is True
    assert data["lines"][0].startswith("⚠ Taken down by moderators on")
    for private in ("chat", "prompt_sha256", "source_sha256", "fingerprints"):
        assert private not in data["ledger"]
    assert data["ledger"]["id"] == ENTRY.id

"""Pure render functions shared by every adapter: outcomes, reasons and verify reports as text.

Messages are short, say what to change, and never explain how a check works (no evasion hints).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from bots.i18n import catalogue, t
from core.types import CredentialState, Outcome, Progress, VerdictKind, VerifyReport


def _section(name: str) -> dict[str, str]:
    """Return one English catalogue section as ``{key: text}`` (without its default)."""
    prefix = name + "."
    return {
        key.removeprefix(prefix): text
        for key, text in catalogue("en").items()
        if key.startswith(prefix) and key != prefix + "default"
    }


# English texts as plain mappings for callers that list them; the catalogue is the source.
REASONS: dict[str, str] = _section("reason")
FAILURES: dict[str, str] = _section("failure")
STEPS: dict[str, str] = _section("step")


def _lookup(section: str, code: str, lang: str) -> str:
    key = f"{section}.{code}"
    return t(key if key in catalogue("en") else f"{section}.default", lang)


def reason_message(code: str, *, lang: str = "en") -> str:
    """Return the user-facing message for a rejection code."""
    return _lookup("reason", code, lang)


def failure_message(code: str, *, lang: str = "en") -> str:
    """Return the user-facing apology for a failed job."""
    return _lookup("failure", code, lang)


def progress_message(event: Progress, *, lang: str = "en") -> str:
    """Return a one-line progress text, e.g. ``Animating… 40%``."""
    if event.step == "queued" and event.queue_position:
        return t("progress.queued", lang, position=event.queue_position)
    label = _lookup("step", event.step, lang)
    return t("progress.step", lang, label=label, percent=round(event.fraction * 100))


def outcome_message(outcome: Outcome, *, lang: str = "en") -> str:
    """Return the caption of a clip, or the rejection message."""
    if outcome.clip is not None:
        return outcome.note
    return reason_message(outcome.verdict.code, lang=lang)


_STATE_KEYS = {
    CredentialState.TRUSTED: "verify.trusted",
    CredentialState.VALID: "verify.valid",
    CredentialState.INVALID: "verify.invalid",
    CredentialState.NONE: "verify.none",
}


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def verdict_lines(report: VerifyReport, *, lang: str = "en") -> list[str]:
    """Return the one verdict in plain words: a take-down first, then what the file is."""
    v = report.verdict
    lines: list[str] = []
    if v.revoked:
        if v.revoked_at:
            lines.append(t("verdict.taken_down_on", lang, date=_when(v.revoked_at)))
        else:
            lines.append(t("verify.taken_down", lang))
    made = {"made": _when(v.made_at), "id": v.ledger_id}
    if v.kind is VerdictKind.OURS_INTACT:
        lines.append(t("verdict.ours_intact", lang, **made))
    elif v.kind is VerdictKind.OURS_STRIPPED_WATERMARK:
        lines.append(t("verdict.ours_stripped_watermark", lang, **made))
    elif v.kind is VerdictKind.OURS_STRIPPED_FINGERPRINT:
        percent = round(v.confidence * 100)
        lines.append(t("verdict.ours_stripped_fingerprint", lang, percent=percent, **made))
    elif v.kind is VerdictKind.SIGNED_BY_OTHER:
        signer = v.signer or t("verdict.unnamed_signer", lang)
        key = "verdict.signed_by_trusted" if v.trusted else "verdict.signed_by_unknown"
        lines.append(t(key, lang, signer=signer))
    elif v.kind is VerdictKind.ALTERED:
        lines.append(t("verdict.altered", lang))
    else:
        lines.append(t("verdict.none", lang))
    if v.kind in (VerdictKind.SIGNED_BY_OTHER, VerdictKind.ALTERED) and v.ledger_id:
        lines.append(t("verdict.also_ours", lang, **made))
    if not v.ledger_id and report.credentials.ai_generated:
        lines.append(t("verify.ai_generated", lang))
    return lines


def verify_lines(report: VerifyReport, *, lang: str = "en") -> list[str]:
    """Return the verify report as plain lines: the verdict first, then each layer."""
    c = report.credentials
    lines = verdict_lines(report, lang=lang)
    lines.append(t(_STATE_KEYS[c.state], lang))
    lines += [f"  · {reason}" for reason in c.reasons]
    if c.state is not CredentialState.NONE:
        lines += _signature_lines(report, lang)
    found = []
    if report.watermark_id:
        found.append(t("verify.watermark_found", lang))
    if report.fingerprint_id:
        found.append(t("verify.fingerprint_found", lang))
    if found:
        lines.append(t("verify.other_checks", lang, found=", ".join(found)))
    elif not report.ours:
        lines.append(t("verify.not_ours", lang))
    lines += [t("verify.unchecked", lang, item=item) for item in report.unchecked]
    return lines


def _signature_lines(report: VerifyReport, lang: str = "en") -> list[str]:
    c = report.credentials
    values = [
        ("verify.signed_by", c.signer),
        ("verify.signed_at", c.signed_at),
        ("verify.made_with", c.software),
        ("verify.source_type", c.source_type.rsplit("/", 1)[-1]),
    ]
    return [t(key, lang, value=value) for key, value in values if value]


def public_report(report: VerifyReport, *, lang: str = "en") -> dict[str, Any]:
    """Return the report as the one public JSON shape (``alive verify --json``, the web API).

    Who asked for the clip stays private: the ledger's chat reference names people, and the
    photo and prompt hashes can be matched against guesses. The verdict and the plain lines
    come along so a machine and a person read the same answer.
    """
    data = asdict(report)
    if data["ledger"] is not None:
        for private in ("chat", "prompt_sha256", "source_sha256", "fingerprints"):
            data["ledger"].pop(private)
    data["ours"] = report.ours
    data["revoked"] = report.revoked
    data["lines"] = verify_lines(report, lang=lang)
    return data


def verify_text(report: VerifyReport, *, lang: str = "en") -> str:
    """Return the verify report as one message."""
    return "\n".join(verify_lines(report, lang=lang))

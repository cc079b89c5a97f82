"""Pure render functions shared by every adapter: outcomes, reasons and verify reports as text.

Messages are short, say what to change, and never explain how a check works (no evasion hints).
"""

from __future__ import annotations

from datetime import UTC, datetime

from core.types import CredentialState, Outcome, Progress, VerifyReport

REASONS: dict[str, str] = {
    # input
    "empty": "That file is empty. Please send a photo.",
    "too_large": "That file is too big. Please send a smaller photo.",
    "not_an_image": "That is not a photo I can read. Please send a JPEG, PNG, WebP or HEIC photo.",
    "unsupported_format": "That image format is not supported. Send JPEG, PNG, WebP or HEIC.",
    "animated_image": "That image is animated already. Please send a still photo.",
    "too_many_pixels": "That photo is too large in pixels. Please send a smaller one.",
    "too_small": "That photo is too small. Please send a bigger one.",
    "corrupt": "That photo looks damaged or incomplete. Please send it again.",
    "decode_timeout": "That photo took too long to open. Please send a simpler one.",
    # photo and output
    "nsfw_photo": "This photo can't be animated: it appears to contain nudity.",
    "nsfw_output": "The animation was blocked by our safety check and was not sent.",
    "hash_match": "This photo can't be animated.",
    # prompt
    "prompt_too_long": "That prompt is too long. Please keep it short.",
    "prompt_sexual_minors": "This request can't be done.",
    "prompt_sexual": "Sexual content can't be made. Please try a different prompt.",
    "prompt_undress": "Undressing or nudifying people can't be done. Please try another prompt.",
    "prompt_violence": "Violent or gory content can't be made. Please try a different prompt.",
    "prompt_self_harm": (
        "This can't be made. If you are struggling, please reach out to someone you trust "
        "or a local helpline."
    ),
    "prompt_hate": "Hateful or harassing content can't be made. Please try a different prompt.",
    "prompt_impersonation": (
        "Clips that pass off public figures or authorities can't be made. Try another prompt."
    ),
    "prompt_illegal": "That can't be made. Please try a different prompt.",
}

FAILURES: dict[str, str] = {
    "provenance": "Sorry, the clip could not be signed, so it was not sent. Please try later.",
    "backend": "Sorry, the animation failed. Please try again.",
    "lost_input": "Sorry, your photo was lost before it could be animated. Please send it again.",
}

STEPS: dict[str, str] = {
    "queued": "Waiting in line",
    "starting": "Starting",
    "validate": "Checking the photo",
    "moderate": "Checking the photo",
    "animate": "Animating",
    "moderate_output": "Checking the result",
    "label_watermark": "Labelling",
    "encode": "Encoding",
    "sign": "Signing",
    "record": "Finishing",
    "done": "Done",
}


def reason_message(code: str) -> str:
    """Return the user-facing message for a rejection code."""
    return REASONS.get(code, "This request can't be done.")


def failure_message(code: str) -> str:
    """Return the user-facing apology for a failed job."""
    return FAILURES.get(code, "Sorry, something went wrong. Please try again later.")


def progress_message(event: Progress) -> str:
    """Return a one-line progress text, e.g. ``Animating… 40%``."""
    if event.step == "queued" and event.queue_position:
        return f"Animating… you are number {event.queue_position} in line"
    label = STEPS.get(event.step, "Working")
    return f"{label}… {round(event.fraction * 100)}%"


def outcome_message(outcome: Outcome) -> str:
    """Return the caption of a clip, or the rejection message."""
    if outcome.clip is not None:
        return outcome.note
    return reason_message(outcome.verdict.code)


_STATE_LINES = {
    CredentialState.TRUSTED: "Content Credentials: valid, from a signer we trust.",
    CredentialState.VALID: "Content Credentials: intact, but signed by someone we don't know.",
    CredentialState.INVALID: "Content Credentials: present but NOT valid — the file was changed "
    "after signing or the signature is broken.",
    CredentialState.NONE: "Content Credentials: none found (many apps strip them when sharing).",
}


def verify_lines(report: VerifyReport) -> list[str]:
    """Return the verify report as plain lines, most important first."""
    c = report.credentials
    lines: list[str] = []
    if report.revoked:
        lines.append("⚠ Taken down: moderators removed this clip.")
    if report.ours:
        assert report.ledger is not None
        made = datetime.fromtimestamp(report.ledger.created, UTC).strftime("%Y-%m-%d %H:%M UTC")
        lines.append(f"AI-generated: made by this service on {made} (clip id {report.ledger.id}).")
    elif c.ai_generated:
        lines.append("AI-generated: its Content Credentials say so.")
    lines.append(_STATE_LINES[c.state])
    lines += [f"  · {reason}" for reason in c.reasons]
    if c.state is not CredentialState.NONE:
        lines += _signature_lines(report)
    found = []
    if report.watermark_id:
        found.append("invisible watermark found")
    if report.fingerprint_id:
        found.append("matches a clip we made")
    if found:
        lines.append("Other checks: " + ", ".join(found) + ".")
    elif not report.ours:
        lines.append("Not a clip this service made, as far as we can tell.")
    lines += [f"Could not check {item}." for item in report.unchecked]
    return lines


def _signature_lines(report: VerifyReport) -> list[str]:
    c = report.credentials
    lines = []
    if c.signer:
        lines.append(f"Signed by: {c.signer}")
    if c.signed_at:
        lines.append(f"Signed at: {c.signed_at}")
    if c.software:
        lines.append(f"Made with: {c.software}")
    if c.source_type:
        lines.append(f"Source type: {c.source_type.rsplit('/', 1)[-1]}")
    return lines


def verify_text(report: VerifyReport) -> str:
    """Return the verify report as one message."""
    return "\n".join(verify_lines(report))

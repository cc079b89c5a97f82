"""Verify: walk the provenance layers of any file in order and say what each found.

The layers are Content Credentials, the watermark, the fingerprint and the ledger; what could not
be checked is said too.
"""

from __future__ import annotations

import logging

from core.errors import InputError
from core.services import Services
from core.types import CredentialState, Frames, LedgerEntry, Photo, VerifyReport

log = logging.getLogger(__name__)

MAX_VERIFY_FRAMES = 96  # NOTE: 4 s at 24 fps covers the watermark vote and per-second keyframes.


def verify(data: bytes, s: Services) -> VerifyReport:
    """Return what every layer says about ``data``; never raises on hostile input."""
    credentials = s.credential_reader.read(data)
    media, frames = _decode_any(data, s)
    unchecked: list[str] = []
    watermark_id, match = "", None
    if frames is None:
        unchecked.append(
            "watermark and fingerprint: the file is not a picture or video we can read"
        )
    else:
        watermark_id = s.watermark_reader.read(frames)
        fingerprints = s.fingerprinter.fingerprint(frames)
        if fingerprints:
            match = s.ledger.nearest(fingerprints, s.settings.provenance.fingerprint_max_distance)
        else:
            unchecked.append("fingerprint: the picture is too flat to fingerprint")
    entry = _ledger_entry(s, credentials.state, credentials.ledger_id, watermark_id, match)
    return VerifyReport(
        media=media,
        credentials=credentials,
        watermark_id=watermark_id if s.ledger.get(watermark_id) else "",
        fingerprint_id=match[0] if match else "",
        fingerprint_distance=match[1] if match else -1,
        ledger=entry,
        unchecked=tuple(unchecked),
    )


def _ledger_entry(
    s: Services,
    state: CredentialState,
    manifest_ledger_id: str,
    watermark_id: str,
    match: tuple[str, int] | None,
) -> LedgerEntry | None:
    """Find our ledger entry through the strongest layer that names one."""
    # A ledger id inside a manifest only counts when our trust anchors vouch for the signer:
    # anyone can write that assertion into a manifest of their own.
    candidates = [manifest_ledger_id if state is CredentialState.TRUSTED else "", watermark_id]
    candidates.append(match[0] if match else "")
    for ledger_id in candidates:
        entry = s.ledger.get(ledger_id) if ledger_id else None
        if entry:
            return entry
    return None


def _decode_any(data: bytes, s: Services) -> tuple[str, Frames | None]:
    """Decode a picture, else a video, within the configured limits."""
    from core.encode import decode as decode_video

    try:
        image = s.decode(Photo(data), s.settings.limits)
        return "image", Frames(image.pixels[None], fps=1)
    except InputError as exc:
        if exc.code not in ("not_an_image", "animated_image", "unsupported_format"):
            return "image" if exc.code != "empty" else "unknown", None
    try:
        return "video", decode_video(data, max_frames=MAX_VERIFY_FRAMES)
    except ValueError:
        return "unknown", None

"""Verify: walk the provenance layers of any file in order and draw one verdict from them.

The layers are Content Credentials, the watermark, the fingerprint and the ledger; what could not
be checked is said too. When our own trusted credentials are intact and name a clip in the
ledger, the watermark and fingerprint cannot add anything, so they are skipped (the ledger is
still read, for take-downs); that keeps verify of an intact clip to the C2PA read.
"""

from __future__ import annotations

import logging

from core.errors import InputError
from core.provenance.credentials import sniff_mime
from core.services import Services
from core.types import (
    Credentials,
    CredentialState,
    Frames,
    LedgerEntry,
    Photo,
    VerdictKind,
    VerifyReport,
    VerifyVerdict,
)

log = logging.getLogger(__name__)

# NOTE: 1.5 s at 24 fps still gives two per-second keyframes and the watermark's 24-frame vote,
# and keeps the fallback for a 5 MB clip under 2 s (bench/verify.py); 96 frames took 4.6 s.
MAX_VERIFY_FRAMES = 36


def verify(data: bytes, s: Services) -> VerifyReport:
    """Return what every layer says about ``data`` and the verdict; never raises on input."""
    credentials = s.credential_reader.read(data)
    entry = _manifest_entry(s, credentials)
    if entry is not None:
        verdict = decide(credentials, entry, "manifest", -1, 1)
        return VerifyReport(_media_of(data), credentials, ledger=entry, verdict=verdict)
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
    marked = s.ledger.get(watermark_id) if watermark_id else None
    found = s.ledger.get(match[0]) if match else None
    entry, via = (marked, "watermark") if marked else (found, "fingerprint" if found else "")
    distance = match[1] if match and entry is found else -1
    max_distance = s.settings.provenance.fingerprint_max_distance
    return VerifyReport(
        media=media,
        credentials=credentials,
        watermark_id=watermark_id if marked else "",
        fingerprint_id=match[0] if match else "",
        fingerprint_distance=match[1] if match else -1,
        ledger=entry,
        unchecked=tuple(unchecked),
        verdict=decide(credentials, entry, via, distance, max_distance),
    )


def decide(
    credentials: Credentials,
    entry: LedgerEntry | None,
    via: str,
    distance: int,
    max_distance: int,
) -> VerifyVerdict:
    """Draw the one verdict from the layers' findings.

    Args:
        credentials: the C2PA layer.
        entry: our ledger entry, if a layer led to one.
        via: which layer found the entry: ``"manifest"``, ``"watermark"``, ``"fingerprint"``.
        distance: the fingerprint distance when ``via`` is ``"fingerprint"``.
        max_distance: the largest distance that counts as a match.
    """
    state = credentials.state
    if entry is not None and via == "manifest":
        kind = VerdictKind.OURS_INTACT
    elif state is CredentialState.INVALID:
        # Broken credentials come first: whatever made the file, it was changed after signing.
        kind = VerdictKind.ALTERED
    elif state in (CredentialState.TRUSTED, CredentialState.VALID):
        kind = VerdictKind.SIGNED_BY_OTHER
    elif entry is not None and via == "watermark":
        kind = VerdictKind.OURS_STRIPPED_WATERMARK
    elif entry is not None:
        kind = VerdictKind.OURS_STRIPPED_FINGERPRINT
    else:
        kind = VerdictKind.NONE
    confidence = 0.0
    if entry is not None:
        confidence = fingerprint_confidence(distance, max_distance) if via == "fingerprint" else 1.0
    signed = kind in (VerdictKind.SIGNED_BY_OTHER, VerdictKind.ALTERED)
    return VerifyVerdict(
        kind=kind,
        made_at=entry.created if entry else 0.0,
        ledger_id=entry.id if entry else "",
        confidence=confidence,
        signer=credentials.signer if signed else "",
        trusted=state is CredentialState.TRUSTED,
        altered=credentials.reasons if kind is VerdictKind.ALTERED else (),
        revoked=bool(entry and entry.revoked),
        revoked_at=entry.revoked_at if entry and entry.revoked else 0.0,
    )


def fingerprint_confidence(distance: int, max_distance: int) -> float:
    """How sure a fingerprint match is: 1.0 at distance 0, falling to 0.5 at the limit.

    NOTE: unrelated pictures sit near 128 of 256 bits (random PDQ bits; tests/provenance/
    test_fingerprint.py sees over 60 for different pictures), while re-encoding and resizing our
    clips stays within the limit; a linear fall to one half at the limit says "likely, not sure".
    """
    if distance < 0:
        return 0.0
    return round(1.0 - 0.5 * min(distance, max_distance) / max(1, max_distance), 2)


def _manifest_entry(s: Services, credentials: Credentials) -> LedgerEntry | None:
    """Our ledger entry named by intact credentials our trust anchors vouch for."""
    # A ledger id inside a manifest only counts when our trust anchors vouch for the signer:
    # anyone can write that assertion into a manifest of their own.
    if credentials.state is not CredentialState.TRUSTED or not credentials.ledger_id:
        return None
    return s.ledger.get(credentials.ledger_id)


def _media_of(data: bytes) -> str:
    """``"image"`` or ``"video"`` from the file's signature, without decoding it."""
    mime = sniff_mime(data) or ""
    return {"image": "image", "video": "video"}.get(mime.split("/")[0], "unknown")


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

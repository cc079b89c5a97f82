"""The provenance note (pipeline step 9): the caption that says plainly what a clip is."""

from __future__ import annotations

from core.types import LedgerEntry


def provenance_note(entry: LedgerEntry, *, service: str, signer: str) -> str:
    """Return the caption sent with a clip: what it is, who made and signed it, how to check."""
    return (
        f"AI-generated: this clip was animated from a photo by {service} "
        f"({entry.backend} animation). It carries a visible label, an invisible watermark and "
        f"Content Credentials signed by {signer}. Clip id {entry.id}; anyone can "
        f"verify it, even after its metadata is stripped."
    )

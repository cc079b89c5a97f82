"""Finished clips on disk, kept for re-sends and takedowns for a configured number of days."""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

log = logging.getLogger(__name__)

_ID = re.compile(r"^[0-9a-f]{12}$")


class ClipStore:
    """Stores signed clips as ``<ledger id>.mp4`` under one directory."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root

    def path(self, ledger_id: str) -> Path:
        """Return where a clip lives; raise ValueError for anything that is not a ledger id."""
        if not _ID.match(ledger_id):
            raise ValueError("not a ledger id")
        return self.root / f"{ledger_id}.mp4"

    def save(self, ledger_id: str, data: bytes) -> Path:
        """Write a clip atomically (a crash leaves the old file or none, never half a file)."""
        final = self.path(ledger_id)
        tmp = final.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(final)
        return final

    def load(self, ledger_id: str) -> bytes | None:
        """Return a clip's bytes, or None when it is unknown, expired or taken down."""
        try:
            return self.path(ledger_id).read_bytes()
        except (ValueError, FileNotFoundError):
            return None

    def delete(self, ledger_id: str) -> bool:
        """Remove a clip (a takedown); return whether it existed."""
        try:
            self.path(ledger_id).unlink()
        except (ValueError, FileNotFoundError):
            return False
        return True

    def sweep(self, keep_days: float) -> int:
        """Delete clips older than ``keep_days``; return how many went."""
        cutoff = time.time() - keep_days * 86400
        removed = 0
        for path in self.root.glob("*.mp4"):
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        if removed:
            log.info("retention: deleted %d clips older than %s days", removed, keep_days)
        return removed

"""The ledger (pipeline step 9): what the service made, as hashes, and what moderators took down.

Embedded mode keeps it in SQLite; fingerprint lookups go through an in-memory multi-index
(``fingerprint_index``) loaded from the table at start and updated on every record.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import asdict

from core.provenance.fingerprint_index import FingerprintIndex
from core.store import Database
from core.types import ChatRef, LedgerEntry

log = logging.getLogger(__name__)

LEDGER_ID_BITS = 48  # NOTE: what the watermark carries next to its 16-bit check value.


def entry_to_json(entry: LedgerEntry) -> str:
    """Serialise an entry (without the revocation fields, which have their own columns)."""
    data = asdict(entry)
    for column in ("revoked", "revoked_reason", "revoked_at"):
        data.pop(column)
    return json.dumps(data, sort_keys=True)


def entry_from_row(text: str, revoked: bool, reason: str, revoked_at: float = 0.0) -> LedgerEntry:
    """Rebuild an entry from its JSON and revocation columns."""
    data = json.loads(text)
    chat = ChatRef(**data.pop("chat")) if data.get("chat") else None
    data.pop("chat", None)
    data["fingerprints"] = tuple(data["fingerprints"])
    return LedgerEntry(
        **data, chat=chat, revoked=revoked, revoked_reason=reason, revoked_at=revoked_at
    )


def hamming(a: str, b: str) -> int:
    """Hamming distance of two equal-length hex hashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


class SqliteLedger:
    """The Ledger port on the embedded database."""

    def __init__(self, db: Database) -> None:
        self._db = db
        _add_revoked_at(db)
        self._index = FingerprintIndex()
        self._index.add_many(
            (row["ledger_id"], row["hash"])
            for row in db.query("SELECT ledger_id, hash FROM fingerprints")
        )
        log.debug("fingerprint index loaded: %d hashes", len(self._index))

    def new_id(self) -> str:
        """Return a fresh 12-hex-character id not yet in the ledger."""
        while True:
            candidate = secrets.token_hex(LEDGER_ID_BITS // 8)
            if not self._db.query("SELECT 1 FROM ledger WHERE id = ?", (candidate,)):
                return candidate

    def record(self, entry: LedgerEntry) -> None:
        """Store an entry and its fingerprints."""
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO ledger (id, created, entry) VALUES (?, ?, ?)",
                (entry.id, entry.created, entry_to_json(entry)),
            )
            conn.executemany(
                "INSERT INTO fingerprints (ledger_id, hash) VALUES (?, ?)",
                [(entry.id, fp) for fp in entry.fingerprints],
            )
        self._index.add(entry.id, entry.fingerprints)

    def get(self, ledger_id: str) -> LedgerEntry | None:
        """Return the entry, or None."""
        rows = self._db.query(
            "SELECT entry, revoked, revoked_reason, revoked_at FROM ledger WHERE id = ?",
            (ledger_id,),
        )
        if not rows:
            return None
        row = rows[0]
        return entry_from_row(
            row["entry"], bool(row["revoked"]), row["revoked_reason"], row["revoked_at"]
        )

    def nearest(self, fingerprints: Sequence[str], max_distance: int) -> tuple[str, int] | None:
        """Return the closest ledger id by fingerprint Hamming distance, if within the limit."""
        return self._index.nearest(fingerprints, max_distance)

    def revoke(self, ledger_id: str, reason: str) -> bool:
        """Mark an entry taken down; return whether it existed."""
        # A second take-down keeps the first one's time: that is when the clip went away.
        changed = self._db.execute(
            "UPDATE ledger SET revoked = 1, revoked_reason = ?, "
            "revoked_at = CASE WHEN revoked = 1 AND revoked_at > 0 THEN revoked_at ELSE ? END "
            "WHERE id = ?",
            (reason, now(), ledger_id),
        )
        return changed > 0


def _add_revoked_at(db: Database) -> None:
    """Migrate a ledger table made before take-downs had a time (additive, idempotent)."""
    columns = {row["name"] for row in db.query("PRAGMA table_info(ledger)")}
    if "revoked_at" in columns:
        return
    try:
        db.execute("ALTER TABLE ledger ADD COLUMN revoked_at REAL NOT NULL DEFAULT 0")
    except sqlite3.OperationalError as exc:
        # Another process opening the same database may have added it a moment ago.
        if "duplicate column" not in str(exc):
            raise
    log.info("ledger table migrated: added revoked_at")


def now() -> float:
    """The current UNIX time (one place, so tests can reason about it)."""
    return time.time()

"""The ledger (pipeline step 9): what the service made, as hashes, and what moderators took down.

Embedded mode keeps it in SQLite; the fingerprint lookup here is a linear scan, fine for the
thousands of clips a community makes.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import asdict

from core.store import Database
from core.types import ChatRef, LedgerEntry

LEDGER_ID_BITS = 48  # NOTE: what the watermark carries next to its 16-bit check value.


def entry_to_json(entry: LedgerEntry) -> str:
    """Serialise an entry (without the revocation fields, which have their own columns)."""
    data = asdict(entry)
    data.pop("revoked")
    data.pop("revoked_reason")
    return json.dumps(data, sort_keys=True)


def entry_from_row(text: str, revoked: bool, reason: str) -> LedgerEntry:
    """Rebuild an entry from its JSON and revocation columns."""
    data = json.loads(text)
    chat = ChatRef(**data.pop("chat")) if data.get("chat") else None
    data.pop("chat", None)
    data["fingerprints"] = tuple(data["fingerprints"])
    return LedgerEntry(**data, chat=chat, revoked=revoked, revoked_reason=reason)


def hamming(a: str, b: str) -> int:
    """Hamming distance of two equal-length hex hashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


class SqliteLedger:
    """The Ledger port on the embedded database."""

    def __init__(self, db: Database) -> None:
        self._db = db

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

    def get(self, ledger_id: str) -> LedgerEntry | None:
        """Return the entry, or None."""
        rows = self._db.query(
            "SELECT entry, revoked, revoked_reason FROM ledger WHERE id = ?", (ledger_id,)
        )
        if not rows:
            return None
        row = rows[0]
        return entry_from_row(row["entry"], bool(row["revoked"]), row["revoked_reason"])

    def nearest(self, fingerprints: Sequence[str], max_distance: int) -> tuple[str, int] | None:
        """Return the closest ledger id by fingerprint Hamming distance, if within the limit."""
        if not fingerprints:
            return None
        best: tuple[str, int] | None = None
        for row in self._db.query("SELECT ledger_id, hash FROM fingerprints"):
            stored = row["hash"]
            for fp in fingerprints:
                if len(fp) != len(stored):
                    continue
                distance = hamming(fp, stored)
                if distance <= max_distance and (best is None or distance < best[1]):
                    best = (row["ledger_id"], distance)
        return best

    def revoke(self, ledger_id: str, reason: str) -> bool:
        """Mark an entry taken down; return whether it existed."""
        changed = self._db.execute(
            "UPDATE ledger SET revoked = 1, revoked_reason = ? WHERE id = ?", (reason, ledger_id)
        )
        return changed > 0


def now() -> float:
    """The current UNIX time (one place, so tests can reason about it)."""
    return time.time()

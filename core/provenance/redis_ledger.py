"""The ledger in Redis (distributed mode): every worker records into it, every adapter verifies.

An entry is a hash ``alive:ledger:<id>``; fingerprints are also appended to the stream
``alive:ledger:fingerprints``, which each process reads incrementally into its in-memory
``FingerprintIndex`` (as ``SqliteLedger`` does from its table), so a nearest-match lookup sees
every clip any worker recorded without rescanning Redis.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from core.provenance.fingerprint_index import FingerprintIndex
from core.provenance.ledger import LEDGER_ID_BITS, entry_from_row, entry_to_json
from core.types import LedgerEntry

FINGERPRINTS = "alive:ledger:fingerprints"

# Mark an entry taken down; a second take-down keeps the first one's time.
REVOKE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'revoked') ~= '1' then
  redis.call('HSET', KEYS[1], 'revoked_at', ARGV[2])
end
redis.call('HSET', KEYS[1], 'revoked', '1', 'reason', ARGV[1])
return 1
"""


def _key(ledger_id: str) -> str:
    return f"alive:ledger:{ledger_id}"


class RedisLedger:
    """The Ledger port on Redis (a synchronous client: the pipeline calls it from a thread)."""

    def __init__(self, client: Any) -> None:
        self._redis = client
        self._lock = threading.Lock()
        self._seen = "0-0"  # the last fingerprint stream entry indexed
        self._index = FingerprintIndex()

    def new_id(self) -> str:
        """Return a fresh 12-hex-character id not yet in the ledger."""
        while True:
            candidate = secrets.token_hex(LEDGER_ID_BITS // 8)
            if not self._redis.exists(_key(candidate)):
                return candidate

    def record(self, entry: LedgerEntry) -> None:
        """Store an entry and append its fingerprints to the shared stream."""
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                _key(entry.id),
                mapping={"entry": entry_to_json(entry), "revoked": "0", "reason": ""},
            )
            for fp in entry.fingerprints:
                pipe.xadd(FINGERPRINTS, {"id": entry.id, "hash": fp})
            pipe.execute()

    def get(self, ledger_id: str) -> LedgerEntry | None:
        """Return the entry, or None."""
        row = self._redis.hgetall(_key(ledger_id))
        if not row:
            return None
        revoked = row.get("revoked") == "1"
        entry = entry_from_row(row["entry"], revoked, row.get("reason", ""))
        if revoked and hasattr(entry, "revoked_at"):
            entry = replace(entry, revoked_at=float(row.get("revoked_at", 0) or 0))
        return entry

    def nearest(self, fingerprints: Sequence[str], max_distance: int) -> tuple[str, int] | None:
        """Return the closest ledger id by fingerprint Hamming distance, if within the limit."""
        if not fingerprints:
            return None
        with self._lock:
            self._catch_up()
        return self._index.nearest(fingerprints, max_distance)

    def _catch_up(self) -> None:
        """Index the fingerprints recorded (by any process) since the last lookup."""
        while entries := self._redis.xrange(FINGERPRINTS, f"({self._seen}", "+", count=10_000):
            self._index.add_many((fields["id"], fields["hash"]) for _, fields in entries)
            self._seen = entries[-1][0]

    def revoke(self, ledger_id: str, reason: str) -> bool:
        """Mark an entry taken down; return whether it existed."""
        return bool(self._redis.eval(REVOKE, 1, _key(ledger_id), reason, repr(time.time())))

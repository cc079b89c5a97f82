"""The audit log: one record per moderation decision and takedown.

Records hold hashes, codes and scores — never a photo, a clip or a prompt.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping

from core.store import Database
from core.types import ChatRef, Verdict

log = logging.getLogger(__name__)


class AuditLog:
    """Appends audit records to the embedded database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def verdict(
        self, verdict: Verdict, *, source_sha256: str, prompt_sha256: str, chat: ChatRef | None
    ) -> None:
        """Record a moderation decision."""
        self.write(
            "moderation",
            {
                "allowed": verdict.allowed,
                "code": verdict.code,
                "stage": str(verdict.stage),
                "check": verdict.check,
                "scores": dict(verdict.scores),
                "source_sha256": source_sha256,
                "prompt_sha256": prompt_sha256,
                "chat": [chat.platform, chat.chat_id] if chat else None,
            },
        )

    def write(self, kind: str, record: Mapping[str, object]) -> None:
        """Append one record of ``kind``."""
        self._db.execute(
            "INSERT INTO audit (time, kind, record) VALUES (?, ?, ?)",
            (time.time(), kind, json.dumps(record, sort_keys=True)),
        )
        log.info("audit %s %s", kind, record.get("code", ""))

    def records(self, kind: str | None = None) -> list[dict[str, object]]:
        """Return records, oldest first (for operators and tests)."""
        sql = "SELECT kind, time, record FROM audit"
        rows = (
            self._db.query(sql + " WHERE kind = ? ORDER BY id", (kind,))
            if kind
            else (self._db.query(sql + " ORDER BY id"))
        )
        return [{"kind": r["kind"], "time": r["time"], **json.loads(r["record"])} for r in rows]

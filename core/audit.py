"""The audit log: one record per moderation decision and takedown.

Records hold hashes, codes and scores — never a photo, a clip or a prompt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping

from core.store import Database
from core.types import ChatRef, Verdict

log = logging.getLogger(__name__)

# The moderation record fields an appeal carries to the moderators (never content).
DECISION_FIELDS = ("code", "stage", "check", "scores")


def request_ref(job_id: str) -> str:
    """Return the reference that links a job's audit records to an appeal of it.

    A hash, so the audit log does not hold a live job id that could fetch the job's result.
    """
    return hashlib.sha256(f"alive-job:{job_id}".encode()).hexdigest() if job_id else ""


def decision_summary(record: dict[str, object]) -> dict[str, object]:
    """Return the parts of a moderation record a moderator reading an appeal needs."""
    return {name: record[name] for name in DECISION_FIELDS if name in record}


class AuditLog:
    """Appends audit records to the embedded database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def verdict(
        self,
        verdict: Verdict,
        *,
        source_sha256: str,
        prompt_sha256: str,
        chat: ChatRef | None,
        request_ref: str = "",
    ) -> None:
        """Record a moderation decision (``request_ref``: see ``request_ref()``)."""
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
                "request_ref": request_ref,
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

    def find(self, kind: str, request_ref: str) -> dict[str, object] | None:
        """Return the newest record of ``kind`` written for ``request_ref``, or None."""
        if not request_ref:
            return None
        rows = self._db.query(
            "SELECT kind, time, record FROM audit WHERE kind = ?"
            " AND json_extract(record, '$.request_ref') = ? ORDER BY id DESC LIMIT 1",
            (kind, request_ref),
        )
        return (
            {"kind": rows[0]["kind"], "time": rows[0]["time"], **json.loads(rows[0]["record"])}
            if rows
            else None
        )

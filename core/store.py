"""The embedded mode's state: one SQLite database under ``data_dir``.

The ledger, the job table and the audit log share it; it is safe to use from worker threads.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT UNIQUE,
    state TEXT NOT NULL,
    request TEXT NOT NULL,
    photo_path TEXT NOT NULL,
    outcome TEXT,
    error_code TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, created);
CREATE TABLE IF NOT EXISTS ledger (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    entry TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    revoked_reason TEXT NOT NULL DEFAULT '',
    revoked_at REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS fingerprints (
    ledger_id TEXT NOT NULL REFERENCES ledger (id),
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS fingerprints_ledger ON fingerprints (ledger_id);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    kind TEXT NOT NULL,
    record TEXT NOT NULL
);
-- An appeal finds the decision it contests by the job's reference (see core.audit.find).
CREATE INDEX IF NOT EXISTS audit_request
    ON audit (kind, json_extract(record, '$.request_ref'));
"""


class Database:
    """A SQLite connection in WAL mode, serialised by a lock (the pipeline runs in threads)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        # NOTE: FULL makes each commit durable across power loss, which "nothing accepted is
        # lost" asks for; the write volume here is a few rows per job.
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(SCHEMA)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run statements atomically: commit on success, roll back on error."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Return all rows of a read-only statement."""
        with self._lock:
            return list(self._conn.execute(sql, params))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write statement in its own transaction; return the rows changed."""
        with self.transaction() as conn:
            return conn.execute(sql, params).rowcount

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

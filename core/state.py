"""The Store port's two implementations: SQLite in embedded mode, Redis in distributed mode.

``open_store`` is the one place that chooses, from ``settings.redis_url``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from core.audit import AuditLog
from core.community import CommunityStore
from core.ports import CommunityState, Ledger
from core.settings import Settings
from core.store import Database

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SqliteStore:
    """Shared state in the embedded SQLite database."""

    ledger: Ledger
    community: CommunityState
    audit: AuditLog
    db: Database

    @classmethod
    def open(cls, db: Database) -> SqliteStore:
        """Build the SQLite ledger, community tables and audit log on one database."""
        from core.provenance.ledger import SqliteLedger

        return cls(SqliteLedger(db), CommunityStore(db), AuditLog(db), db)

    def ping(self) -> bool:
        """SQLite is in this process: always reachable while open."""
        return True

    def close(self) -> None:
        """The database is closed by its owner (``Services.close``)."""


@dataclass(slots=True)
class RedisStore:
    """Shared state in Redis, for any number of adapters and workers."""

    ledger: Ledger
    community: CommunityState
    audit: AuditLog
    client: Any
    url: str

    @classmethod
    def open(cls, url: str) -> RedisStore:
        """Connect (lazily) and build the Redis ledger, community state and audit log."""
        from core.provenance.redis_ledger import RedisLedger
        from core.redis_store import RedisAuditLog, RedisCommunityStore

        client = redis_client(url)
        return cls(
            RedisLedger(client), RedisCommunityStore(client), RedisAuditLog(client), client, url
        )

    def ping(self) -> bool:
        """Return whether Redis answers within a second (no retries: readiness must be quick)."""
        import redis
        from redis.exceptions import RedisError

        probe = redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(probe.ping())
        except RedisError:
            return False
        finally:
            probe.close()

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()


def redis_client(url: str) -> Any:
    """Return a synchronous client that rides out a Redis restart of a few seconds."""
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError, TimeoutError
    from redis.retry import Retry

    # NOTE: 60 tries capped at 0.5 s: long enough for Redis to replay its AOF and come back.
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.02), retries=60),
        retry_on_error=[ConnectionError, TimeoutError],
        health_check_interval=30,
    )


def open_store(settings: Settings, db: Database) -> SqliteStore | RedisStore:
    """Return the Redis store when ``redis_url`` is set, else the SQLite one on ``db``."""
    if settings.redis_url:
        log.info("shared state in Redis")
        return RedisStore.open(settings.redis_url)
    return SqliteStore.open(db)

"""Chat-community state the adapters keep beside the pipeline: settings, quotas, consent, reports.

It lives in the embedded SQLite database (``core.store.Database``); a Redis implementation can
stand behind the same few methods. Nothing here knows a chat platform: chats are plain strings.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import time
from dataclasses import asdict, dataclass, replace

from core.store import Database

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS chat_settings (
    platform TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    daily_quota INTEGER NOT NULL,
    chat_daily_quota INTEGER NOT NULL,
    consent TEXT NOT NULL,
    seconds REAL NOT NULL,
    language TEXT NOT NULL,
    moderators_chat TEXT NOT NULL,
    channels TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (platform, chat_id)
);
CREATE TABLE IF NOT EXISTS quota (
    platform TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    day TEXT NOT NULL,
    used INTEGER NOT NULL,
    PRIMARY KEY (platform, chat_id, user_id, day)
);
CREATE TABLE IF NOT EXISTS consent (
    id TEXT PRIMARY KEY,
    platform TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    requester_id TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    photo_ref TEXT NOT NULL,
    request_text TEXT NOT NULL,
    state TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    platform TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    reporter_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    resolved_by TEXT NOT NULL DEFAULT '',
    decision TEXT NOT NULL DEFAULT '',
    UNIQUE (kind, platform, subject, reporter_id)
);
CREATE INDEX IF NOT EXISTS reports_reporter ON reports (platform, reporter_id, created);
CREATE TABLE IF NOT EXISTS clip_messages (
    ledger_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    requester_id TEXT NOT NULL,
    PRIMARY KEY (platform, chat_id, message_id)
);
CREATE INDEX IF NOT EXISTS clip_messages_ledger ON clip_messages (ledger_id);
CREATE TABLE IF NOT EXISTS request_keys (
    key TEXT PRIMARY KEY,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    job_id TEXT PRIMARY KEY,
    platform TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_replies (
    job_id TEXT PRIMARY KEY,
    platform TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    target TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS pending_replies_platform ON pending_replies (platform, created);
"""

CONSENT_RULES = ("ask", "allow", "never")
CHAT_WIDE = "*"  # the quota row counting every user of a chat


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """What a chat's admins chose.

    Attributes:
        enabled: whether the bot animates in this chat at all.
        daily_quota: clips per user per day.
        chat_daily_quota: clips per day for the whole chat.
        consent: ``"ask"`` the photo's owner, ``"allow"`` without asking, or ``"never"`` animate
            someone else's photo.
        seconds: clip length; ``0`` means the service default.
        language: reply language for everyone (``""``: each user's own).
        moderators_chat: where reports go (``""``: to the chat's own admins).
        channels: channel ids where animating is allowed (empty: everywhere); Discord uses it,
            Telegram ignores it.
    """

    enabled: bool = True
    daily_quota: int = 10
    chat_daily_quota: int = 100
    consent: str = "ask"
    seconds: float = 0.0
    language: str = ""
    moderators_chat: str = ""
    channels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ConsentRequest:
    """A request to animate a photo someone else posted, waiting for its owner.

    Attributes:
        id: short random id (fits in a button's callback data).
        photo_ref: the adapter's opaque reference to the photo (e.g. a file id).
        request_text: the requester's command text, replayed once allowed.
        state: ``"pending"``, ``"allowed"`` or ``"declined"``.
    """

    id: str
    platform: str
    chat_id: str
    requester_id: str
    owner_id: str
    photo_ref: str
    request_text: str
    state: str = "pending"
    created: float = 0.0


@dataclass(frozen=True, slots=True)
class Report:
    """A moderators' queue item: a report on a clip, or an appeal of a moderation block.

    Attributes:
        id: queue number.
        kind: ``"report"`` or ``"appeal"``.
        subject: the ledger id of the reported clip, or the job id of an appeal.
        state: ``"open"``, ``"taken_down"`` or ``"dismissed"``.
        resolved_by: the moderator's user id once resolved.
        decision: for an appeal, the contested decision's code, stage, check and scores as
            JSON (from its audit record; never content), or ``""`` if none was found.
    """

    id: int
    kind: str
    platform: str
    chat_id: str
    subject: str
    reporter_id: str
    reason: str
    state: str = "open"
    created: float = 0.0
    resolved_by: str = ""
    decision: str = ""


@dataclass(frozen=True, slots=True)
class ClipMessage:
    """Where a clip was sent, so a take-down can delete it and a reply can name it."""

    ledger_id: str
    platform: str
    chat_id: str
    message_id: str
    requester_id: str


@dataclass(frozen=True, slots=True)
class PendingReply:
    """An accepted request whose answer (clip, refusal or failure) is not posted yet.

    Recorded when the job is accepted and forgotten once answered, so an adapter that restarts
    mid-job finds the jobs it still owes a reply and posts them.

    Attributes:
        job_id: the runner's job id.
        target: the adapter's opaque reply target (where and how to answer, as JSON).
        created: UNIX time it was recorded.
    """

    job_id: str
    platform: str
    chat_id: str
    user_id: str
    target: str
    created: float = 0.0


class CommunityStore:
    """The chat-community tables on the embedded database."""

    def __init__(self, db: Database) -> None:
        self._db = db
        with db.transaction() as conn:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            columns = {row["name"] for row in conn.execute("PRAGMA table_info(chat_settings)")}
            if "channels" not in columns:  # a database made before the channels setting
                conn.execute(
                    "ALTER TABLE chat_settings ADD COLUMN channels TEXT NOT NULL DEFAULT ''"
                )
            columns = {row["name"] for row in conn.execute("PRAGMA table_info(reports)")}
            if "decision" not in columns:  # a database made before appeals named the decision
                conn.execute("ALTER TABLE reports ADD COLUMN decision TEXT NOT NULL DEFAULT ''")

    # Chat settings

    def chat_settings(self, platform: str, chat_id: str) -> ChatSettings:
        """Return a chat's settings, or the defaults."""
        rows = self._db.query(
            "SELECT * FROM chat_settings WHERE platform = ? AND chat_id = ?", (platform, chat_id)
        )
        if not rows:
            return ChatSettings()
        values = dict(rows[0])
        del values["platform"], values["chat_id"]
        channels = tuple(values.pop("channels").split())
        return ChatSettings(**{**values, "enabled": bool(values["enabled"]), "channels": channels})

    def save_chat_settings(self, platform: str, chat_id: str, settings: ChatSettings) -> None:
        """Store a chat's settings (replacing what was there)."""
        if settings.consent not in CONSENT_RULES:
            raise ValueError(
                f"consent rule must be one of {CONSENT_RULES}, not {settings.consent!r}"
            )
        values = {**asdict(settings), "channels": " ".join(settings.channels)}
        names = ", ".join(["platform", "chat_id", *values])
        self._db.execute(
            f"INSERT OR REPLACE INTO chat_settings ({names})"
            f" VALUES ({', '.join('?' * (len(values) + 2))})",
            (platform, chat_id, *values.values()),
        )

    # Quotas

    def take_quota(
        self, platform: str, chat_id: str, user_id: str, day: str, user_limit: int, chat_limit: int
    ) -> bool:
        """Count one clip for the user and the chat on ``day`` if both are under their limits.

        Returns:
            Whether the clip may go ahead (nothing is counted when it may not).
        """
        with self._db.transaction() as conn:
            return self._take(conn, platform, chat_id, user_id, day, user_limit, chat_limit)

    @staticmethod
    def _take(
        conn: sqlite3.Connection,
        platform: str,
        chat_id: str,
        user_id: str,
        day: str,
        user_limit: int,
        chat_limit: int,
    ) -> bool:
        key = (platform, chat_id)
        user_used = _used(conn, *key, user_id, day)
        chat_used = _used(conn, *key, CHAT_WIDE, day)
        if user_used >= user_limit or chat_used >= chat_limit:
            return False
        for who in (user_id, CHAT_WIDE):
            conn.execute(
                "INSERT INTO quota VALUES (?, ?, ?, ?, 1)"
                " ON CONFLICT DO UPDATE SET used = used + 1",
                (*key, who, day),
            )
        return True

    def take_quota_once(
        self,
        key: str,
        platform: str,
        chat_id: str,
        user_id: str,
        day: str,
        user_limit: int,
        chat_limit: int,
    ) -> str:
        """Count one clip for a request unless its idempotency ``key`` was counted before.

        Returns:
            ``"seen"`` (counted before: nothing changes), ``"taken"``, or ``"over"`` (a limit
            is reached: nothing is counted and the key is not remembered).
        """
        with self._db.transaction() as conn:
            if conn.execute("SELECT 1 FROM request_keys WHERE key = ?", (key,)).fetchone():
                return "seen"
            if not self._take(conn, platform, chat_id, user_id, day, user_limit, chat_limit):
                return "over"
            conn.execute("INSERT INTO request_keys VALUES (?, ?)", (key, time.time()))
        return "taken"

    def give_back_quota(self, platform: str, chat_id: str, user_id: str, day: str) -> None:
        """Undo one ``take_quota`` (the job was refused before any work, or cancelled)."""
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE quota SET used = MAX(0, used - 1) WHERE platform = ? AND chat_id = ?"
                " AND user_id IN (?, ?) AND day = ?",
                (platform, chat_id, user_id, CHAT_WIDE, day),
            )

    def quota_used(self, platform: str, chat_id: str, user_id: str, day: str) -> int:
        """Return how many clips a user (or ``CHAT_WIDE``) made in a chat on ``day``."""
        with self._db.transaction() as conn:
            return _used(conn, platform, chat_id, user_id, day)

    # Consent

    def create_consent(self, request: ConsentRequest) -> ConsentRequest:
        """Store a pending consent request under a fresh id and return it."""
        stored = replace(request, id=secrets.token_hex(6), state="pending", created=time.time())
        self._db.execute(
            "INSERT INTO consent VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", tuple(asdict(stored).values())
        )
        return stored

    def get_consent(self, consent_id: str) -> ConsentRequest | None:
        """Return a consent request, or None."""
        rows = self._db.query("SELECT * FROM consent WHERE id = ?", (consent_id,))
        return ConsentRequest(**dict(rows[0])) if rows else None

    def decide_consent(
        self, consent_id: str, owner_id: str, allowed: bool
    ) -> ConsentRequest | None:
        """Record the owner's answer once; return the request, or None if not theirs or decided."""
        state = "allowed" if allowed else "declined"
        changed = self._db.execute(
            "UPDATE consent SET state = ? WHERE id = ? AND owner_id = ? AND state = 'pending'",
            (state, consent_id, owner_id),
        )
        return self.get_consent(consent_id) if changed else None

    # Reports and appeals

    def add_report(self, report: Report) -> Report | None:
        """Queue a report or appeal; return it with its id, or None if this person already did."""
        try:
            with self._db.transaction() as conn:
                cursor = conn.execute(
                    "INSERT INTO reports (kind, platform, chat_id, subject, reporter_id, reason,"
                    " state, created, decision) VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?)",
                    (
                        report.kind,
                        report.platform,
                        report.chat_id,
                        report.subject,
                        report.reporter_id,
                        report.reason,
                        time.time(),
                        report.decision,
                    ),
                )
                report_id = cursor.lastrowid
        except sqlite3.IntegrityError:
            return None
        assert report_id is not None
        return self.get_report(report_id)

    def reports_since(
        self, platform: str, reporter_id: str, since: float, kind: str | None = None
    ) -> int:
        """Return how many reports and appeals (or only those of ``kind``) a person filed since."""
        rows = self._db.query(
            "SELECT COUNT(*) AS n FROM reports WHERE platform = ? AND reporter_id = ?"
            " AND created >= ? AND kind = COALESCE(?, kind)",
            (platform, reporter_id, since, kind),
        )
        return int(rows[0]["n"])

    def get_report(self, report_id: int) -> Report | None:
        """Return a queue item, or None."""
        rows = self._db.query("SELECT * FROM reports WHERE id = ?", (report_id,))
        return Report(**dict(rows[0])) if rows else None

    def open_reports(self, platform: str) -> list[Report]:
        """Return the open queue items of a platform, oldest first."""
        rows = self._db.query(
            "SELECT * FROM reports WHERE platform = ? AND state = 'open' ORDER BY id", (platform,)
        )
        return [Report(**dict(r)) for r in rows]

    def resolve_report(self, report_id: int, state: str, moderator_id: str) -> Report | None:
        """Close an open item (and, on a take-down, every open report on the same clip).

        Returns:
            The item as resolved, or None if it was unknown or already resolved.
        """
        item = self.get_report(report_id)
        if item is None or item.state != "open":
            return None
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE reports SET state = ?, resolved_by = ? WHERE id = ? AND state = 'open'",
                (state, moderator_id, report_id),
            )
            if state == "taken_down":
                conn.execute(
                    "UPDATE reports SET state = ?, resolved_by = ? WHERE kind = ?"
                    " AND platform = ? AND subject = ? AND state = 'open'",
                    (state, moderator_id, item.kind, item.platform, item.subject),
                )
        return self.get_report(report_id)

    # Sent clips

    def record_clip_message(self, message: ClipMessage) -> None:
        """Remember where a clip was sent."""
        self._db.execute(
            "INSERT OR REPLACE INTO clip_messages (ledger_id, platform, chat_id, message_id,"
            " requester_id) VALUES (?, ?, ?, ?, ?)",
            tuple(asdict(message).values()),
        )

    def claim_delivery(self, job_id: str, platform: str, chat_id: str) -> bool:
        """Record that a job's clip is about to be sent; False if it was claimed already.

        Recorded before sending, so a duplicate follower of the same job never sends it twice.
        """
        return bool(
            self._db.execute(
                "INSERT OR IGNORE INTO deliveries VALUES (?, ?, ?, ?)",
                (job_id, platform, chat_id, time.time()),
            )
        )

    def release_delivery(self, job_id: str) -> None:
        """Forget a delivery claim whose send failed for sure (so it can be sent again)."""
        self._db.execute("DELETE FROM deliveries WHERE job_id = ?", (job_id,))

    def delivered(self, job_id: str) -> bool:
        """Return whether a job's clip was claimed for sending."""
        return bool(self._db.query("SELECT 1 FROM deliveries WHERE job_id = ?", (job_id,)))

    # Replies owed

    def save_pending_reply(self, reply: PendingReply) -> None:
        """Record (or update the target of) a reply owed for an accepted job."""
        created = reply.created or time.time()
        self._db.execute(
            "INSERT INTO pending_replies VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (job_id) DO UPDATE SET target = excluded.target",
            (reply.job_id, reply.platform, reply.chat_id, reply.user_id, reply.target, created),
        )

    def pending_replies(self, platform: str) -> list[PendingReply]:
        """Return the replies a platform still owes, oldest first."""
        rows = self._db.query(
            "SELECT * FROM pending_replies WHERE platform = ? ORDER BY created", (platform,)
        )
        return [PendingReply(**dict(r)) for r in rows]

    def forget_pending_reply(self, platform: str, job_id: str) -> None:
        """Forget a reply that was posted (or can no longer be)."""
        self._db.execute(
            "DELETE FROM pending_replies WHERE platform = ? AND job_id = ?", (platform, job_id)
        )

    def clip_at(self, platform: str, chat_id: str, message_id: str) -> ClipMessage | None:
        """Return the clip sent as a given message, or None."""
        rows = self._db.query(
            "SELECT * FROM clip_messages WHERE platform = ? AND chat_id = ? AND message_id = ?",
            (platform, chat_id, message_id),
        )
        return ClipMessage(**dict(rows[0])) if rows else None

    def clip_messages(self, ledger_id: str) -> list[ClipMessage]:
        """Return every message a clip was sent as."""
        rows = self._db.query("SELECT * FROM clip_messages WHERE ledger_id = ?", (ledger_id,))
        return [ClipMessage(**dict(r)) for r in rows]

    def forget_clip_message(self, platform: str, chat_id: str, message_id: str) -> None:
        """Forget a message that was deleted."""
        self._db.execute(
            "DELETE FROM clip_messages WHERE platform = ? AND chat_id = ? AND message_id = ?",
            (platform, chat_id, message_id),
        )


def _used(conn: sqlite3.Connection, platform: str, chat_id: str, user_id: str, day: str) -> int:
    row = conn.execute(
        "SELECT used FROM quota WHERE platform = ? AND chat_id = ? AND user_id = ? AND day = ?",
        (platform, chat_id, user_id, day),
    ).fetchone()
    return int(row["used"]) if row else 0

"""Chat-community state and the audit log in Redis, for distributed mode.

Same methods and meaning as ``core.community.CommunityStore`` and ``core.audit.AuditLog`` on
SQLite (one contract suite runs against both); every check-and-change is one Lua script, so two
adapter processes cannot both spend the last unit of a quota or both decide a consent request.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict, replace
from typing import Any

from core.audit import AuditLog
from core.community import (
    CHAT_WIDE,
    CONSENT_RULES,
    ChatSettings,
    ClipMessage,
    ConsentRequest,
    PendingReply,
    Report,
)

P = "alive:"
QUOTA_TTL_S = 3 * 86400  # NOTE: a quota day is over after 24 h; two more cover time zones.
KEY_TTL_S = 30 * 86400  # NOTE: request keys and delivery claims outlive any retry or re-send.

TAKE_QUOTA = """
local user = tonumber(redis.call('GET', KEYS[1]) or '0')
local chat = tonumber(redis.call('GET', KEYS[2]) or '0')
if user >= tonumber(ARGV[1]) or chat >= tonumber(ARGV[2]) then return 0 end
for i = 1, 2 do
  redis.call('INCR', KEYS[i])
  redis.call('EXPIRE', KEYS[i], ARGV[3])
end
return 1
"""
GIVE_BACK = """
for i = 1, 2 do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
"""
DECIDE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local item = cjson.decode(raw)
if item['owner_id'] ~= ARGV[1] or item['state'] ~= 'pending' then return 0 end
item['state'] = ARGV[2]
redis.call('SET', KEYS[1], cjson.encode(item), 'KEEPTTL')
return 1
"""
RESOLVE = """
local function close(key)
  local raw = redis.call('GET', key)
  if not raw then return 0 end
  local item = cjson.decode(raw)
  if item['state'] ~= 'open' then return 0 end
  item['state'] = ARGV[1]
  item['resolved_by'] = ARGV[2]
  redis.call('SET', key, cjson.encode(item))
  redis.call('ZREM', KEYS[2], item['id'])
  return 1
end
if close(KEYS[1]) == 0 then return 0 end
if ARGV[1] == 'taken_down' then
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[3])) do close(ARGV[3] .. id) end
end
return 1
"""


def _j(*parts: str) -> str:
    """Join key parts; JSON-quoting keeps ids containing ``:`` from colliding."""
    return P + ":".join(json.dumps(p) if ":" in p else p for p in parts)


class RedisCommunityStore:
    """The chat-community state on Redis (a synchronous client; adapters call it in threads)."""

    def __init__(self, client: Any) -> None:
        self._r = client

    # Chat settings

    def chat_settings(self, platform: str, chat_id: str) -> ChatSettings:
        """Return a chat's settings, or the defaults."""
        raw = self._r.get(_j("chat", platform, chat_id))
        if raw is None:
            return ChatSettings()
        values = json.loads(raw)
        if "channels" in values:
            values["channels"] = tuple(values["channels"])
        return ChatSettings(**values)

    def save_chat_settings(self, platform: str, chat_id: str, settings: ChatSettings) -> None:
        """Store a chat's settings (replacing what was there)."""
        if settings.consent not in CONSENT_RULES:
            raise ValueError(
                f"consent rule must be one of {CONSENT_RULES}, not {settings.consent!r}"
            )
        self._r.set(_j("chat", platform, chat_id), json.dumps(asdict(settings)))

    # Quotas

    def _quota_keys(self, platform: str, chat_id: str, user_id: str, day: str) -> list[str]:
        return [_j("quota", platform, chat_id, who, day) for who in (user_id, CHAT_WIDE)]

    def take_quota(
        self, platform: str, chat_id: str, user_id: str, day: str, user_limit: int, chat_limit: int
    ) -> bool:
        """Count one clip for the user and the chat on ``day`` if both are under their limits."""
        keys = self._quota_keys(platform, chat_id, user_id, day)
        return bool(self._r.eval(TAKE_QUOTA, 2, *keys, user_limit, chat_limit, QUOTA_TTL_S))

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
        """Count one clip unless request ``key`` was: ``"seen"``, ``"taken"`` or ``"over"``."""
        seen = _j("request", key)
        if not self._r.set(seen, "1", nx=True, ex=KEY_TTL_S):
            return "seen"
        if self.take_quota(platform, chat_id, user_id, day, user_limit, chat_limit):
            return "taken"
        self._r.delete(seen)
        return "over"

    def give_back_quota(self, platform: str, chat_id: str, user_id: str, day: str) -> None:
        """Undo one ``take_quota``."""
        self._r.eval(GIVE_BACK, 2, *self._quota_keys(platform, chat_id, user_id, day))

    def quota_used(self, platform: str, chat_id: str, user_id: str, day: str) -> int:
        """Return how many clips a user (or ``CHAT_WIDE``) made in a chat on ``day``."""
        return int(self._r.get(_j("quota", platform, chat_id, user_id, day)) or 0)

    # Consent

    def create_consent(self, request: ConsentRequest) -> ConsentRequest:
        """Store a pending consent request under a fresh id and return it."""
        stored = replace(request, id=secrets.token_hex(6), state="pending", created=time.time())
        self._r.set(_j("consent", stored.id), json.dumps(asdict(stored)), ex=KEY_TTL_S)
        return stored

    def get_consent(self, consent_id: str) -> ConsentRequest | None:
        """Return a consent request, or None."""
        raw = self._r.get(_j("consent", consent_id))
        return ConsentRequest(**json.loads(raw)) if raw else None

    def decide_consent(
        self, consent_id: str, owner_id: str, allowed: bool
    ) -> ConsentRequest | None:
        """Record the owner's answer once; return the request, or None if not theirs or decided."""
        state = "allowed" if allowed else "declined"
        changed = self._r.eval(DECIDE, 1, _j("consent", consent_id), owner_id, state)
        return self.get_consent(consent_id) if changed else None

    # Reports and appeals

    def add_report(self, report: Report) -> Report | None:
        """Queue a report or appeal; return it with its id, or None if this person already did."""
        unique = _j("report-by", report.kind, report.platform, report.subject, report.reporter_id)
        if not self._r.set(unique, "1", nx=True):
            return None
        report_id = int(self._r.incr(_j("reports", "next")))
        stored = replace(report, id=report_id, state="open", created=time.time(), resolved_by="")
        with self._r.pipeline(transaction=True) as pipe:
            pipe.set(_j("report", str(report_id)), json.dumps(asdict(stored)))
            pipe.zadd(_j("reports", "open", report.platform), {str(report_id): report_id})
            pipe.sadd(_j("reports", "subject", report.kind, report.platform, report.subject),
                      report_id)  # fmt: skip
            pipe.zadd(_j("reports", "filed", report.platform, report.reporter_id),
                      {f"{report_id}:{report.kind}": stored.created})  # fmt: skip
            pipe.execute()
        return stored

    def reports_since(
        self, platform: str, reporter_id: str, since: float, kind: str | None = None
    ) -> int:
        """Return how many reports and appeals (or only those of ``kind``) a person filed since."""
        filed = self._r.zrangebyscore(_j("reports", "filed", platform, reporter_id), since, "+inf")
        return sum(1 for item in filed if kind is None or item.endswith(f":{kind}"))

    def get_report(self, report_id: int) -> Report | None:
        """Return a queue item, or None."""
        raw = self._r.get(_j("report", str(report_id)))
        return Report(**json.loads(raw)) if raw else None

    def open_reports(self, platform: str) -> list[Report]:
        """Return the open queue items of a platform, oldest first."""
        ids = self._r.zrange(_j("reports", "open", platform), 0, -1)
        items = (self.get_report(int(i)) for i in ids)
        return [item for item in items if item is not None]

    def resolve_report(self, report_id: int, state: str, moderator_id: str) -> Report | None:
        """Close an open item (and, on a take-down, every open report on the same clip)."""
        item = self.get_report(report_id)
        if item is None or item.state != "open":
            return None
        keys = [
            _j("report", str(report_id)),
            _j("reports", "open", item.platform),
            _j("reports", "subject", item.kind, item.platform, item.subject),
        ]
        if not self._r.eval(RESOLVE, 3, *keys, state, moderator_id, _j("report", "")):
            return None
        return self.get_report(report_id)

    # Sent clips and deliveries

    def record_clip_message(self, message: ClipMessage) -> None:
        """Remember where a clip was sent."""
        where = _j("clipmsg", message.platform, message.chat_id, message.message_id)
        with self._r.pipeline(transaction=True) as pipe:
            pipe.set(where, json.dumps(asdict(message)))
            pipe.sadd(_j("clipmsgs", message.ledger_id), where)
            pipe.execute()

    def clip_at(self, platform: str, chat_id: str, message_id: str) -> ClipMessage | None:
        """Return the clip sent as a given message, or None."""
        raw = self._r.get(_j("clipmsg", platform, chat_id, message_id))
        return ClipMessage(**json.loads(raw)) if raw else None

    def clip_messages(self, ledger_id: str) -> list[ClipMessage]:
        """Return every message a clip was sent as."""
        found = []
        for where in sorted(self._r.smembers(_j("clipmsgs", ledger_id))):
            raw = self._r.get(where)
            if raw and (message := ClipMessage(**json.loads(raw))).ledger_id == ledger_id:
                found.append(message)
        return found

    def forget_clip_message(self, platform: str, chat_id: str, message_id: str) -> None:
        """Forget a message that was deleted."""
        where = _j("clipmsg", platform, chat_id, message_id)
        raw = self._r.getdel(where)
        if raw:
            self._r.srem(_j("clipmsgs", json.loads(raw)["ledger_id"]), where)

    def claim_delivery(self, job_id: str, platform: str, chat_id: str) -> bool:
        """Record that a job's clip is about to be sent; False if it was claimed already."""
        claim = json.dumps([platform, chat_id, time.time()])
        return bool(self._r.set(_j("delivery", job_id), claim, nx=True, ex=KEY_TTL_S))

    def release_delivery(self, job_id: str) -> None:
        """Forget a delivery claim whose send failed for sure (so it can be sent again)."""
        self._r.delete(_j("delivery", job_id))

    def delivered(self, job_id: str) -> bool:
        """Return whether a job's clip was claimed for sending."""
        return bool(self._r.exists(_j("delivery", job_id)))

    # Replies owed: a hash per platform (job id -> JSON), so a restarted adapter finds them.

    def save_pending_reply(self, reply: PendingReply) -> None:
        """Record (or update the target of) a reply owed for an accepted job."""
        where = _j("pending", reply.platform)
        raw = self._r.hget(where, reply.job_id)
        created = json.loads(raw)["created"] if raw else (reply.created or time.time())
        self._r.hset(where, reply.job_id, json.dumps(asdict(replace(reply, created=created))))

    def pending_replies(self, platform: str) -> list[PendingReply]:
        """Return the replies a platform still owes, oldest first."""
        items = [PendingReply(**json.loads(v)) for v in self._r.hvals(_j("pending", platform))]
        return sorted(items, key=lambda r: r.created)

    def forget_pending_reply(self, platform: str, job_id: str) -> None:
        """Forget a reply that was posted (or can no longer be)."""
        self._r.hdel(_j("pending", platform), job_id)


class RedisAuditLog(AuditLog):
    """The audit log as a Redis stream (``alive:audit``); records as in ``AuditLog``."""

    def __init__(self, client: Any) -> None:
        self._r = client

    def write(self, kind: str, record: Mapping[str, object]) -> None:
        """Append one record of ``kind``."""
        body = json.dumps(record, sort_keys=True)
        fields = {"kind": kind, "time": repr(time.time()), "record": body}
        ref = record.get("request_ref")
        with self._r.pipeline(transaction=True) as pipe:
            pipe.xadd(P + "audit", fields)
            if ref:  # the newest record of a kind per request, for appeals (``find``)
                pipe.hset(P + "audit:ref", f"{kind}:{ref}", json.dumps(fields))
            pipe.execute()

    def records(self, kind: str | None = None) -> list[dict[str, object]]:
        """Return records, oldest first (for operators and tests)."""
        rows = self._r.xrange(P + "audit")
        return [
            {"kind": f["kind"], "time": float(f["time"]), **json.loads(f["record"])}
            for _, f in rows
            if kind is None or f["kind"] == kind
        ]

    def find(self, kind: str, request_ref: str) -> dict[str, object] | None:
        """Return the newest record of ``kind`` written for ``request_ref``, or None."""
        raw = self._r.hget(P + "audit:ref", f"{kind}:{request_ref}") if request_ref else None
        if not raw:
            return None
        f = json.loads(raw)
        return {"kind": f["kind"], "time": float(f["time"]), **json.loads(f["record"])}

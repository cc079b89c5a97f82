"""Chat logic every chat adapter shares: parse /alive, quotas, chat settings, consent, reports.

Adapters (Telegram, Discord) translate platform events into calls here and render the
``ChatError`` keys and results through ``bots.i18n``; nothing here imports a chat platform.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TypeVar

from bots.i18n import languages, t
from core.audit import decision_summary, request_ref
from core.community import (
    CONSENT_RULES,
    ChatSettings,
    ClipMessage,
    ConsentRequest,
    PendingReply,
    Report,
)
from core.ports import CommunityState, JobHandle
from core.service import AliveService
from core.settings import ClipDefaults
from core.types import Camera, ChatRef, ClipSpec, JobRequest, JobState, Photo

T = TypeVar("T")

MIN_SECONDS = 1.0  # NOTE: shorter loops read as a stutter rather than motion.
MAX_MOTION = 4  # NOTE: ClipSpec documents motion as 0 (still) to 4 (strong).
MAX_QUOTA = 1000
REPORTS_PER_HOUR = 5  # NOTE: a person rarely needs more; more is usually spam or a pile-on.
# NOTE: an appeal asks a moderator to read a blocked request again; three a day per person
# covers honest mistakes of the checks, while a person probing the checks meets the cap.
APPEALS_PER_DAY = 3
DAY_S = 86400.0
_CHANNEL = re.compile(r"^<?#?(\d+)>?$")  # a channel id, or a Discord mention <#id>
_OPTION = re.compile(r"^([a-z_]+)=(\S*)$")
_YES = {"yes", "y", "true", "on", "1", "si", "sì"}
_NO = {"no", "n", "false", "off", "0"}


class ChatError(Exception):
    """A reply the user should read instead of a clip: a catalogue key and its parameters."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params

    def text(self, lang: str = "en") -> str:
        """Return the message in ``lang`` (a ``hint_key`` parameter is rendered as ``hint``)."""
        params = dict(self.params)
        hint_key = params.pop("hint_key", None)
        if hint_key:
            params["hint"] = t(str(hint_key), lang, **params)
        return t(self.key, lang, **params)


# Parsing /alive


def command_args(text: str) -> str:
    """Return what follows a leading ``/command`` or ``/command@botname`` (or the whole text)."""
    text = text.strip()
    if text.startswith("/"):
        _, _, rest = text.partition(" ")
        return rest.strip()
    return text


def parse_alive(text: str, clip: ClipDefaults, *, seconds: float = 0.0) -> ClipSpec:
    """Turn ``/alive a prompt motion=3 camera=zoom_in seconds=4`` into a validated ClipSpec.

    Args:
        text: the command text (with or without the ``/alive`` word).
        clip: the service's clip defaults and maxima.
        seconds: the chat's clip length, or ``0`` for the service default.

    Raises:
        ChatError: naming the bad option and what it may be.
    """
    words, options = [], {}
    for word in command_args(text).split():
        match = _OPTION.match(word.lower())
        if not match:
            words.append(word)
            continue
        name, value = match.groups()
        if name not in _PARSERS:
            raise ChatError("alive.unknown_option", name=name)
        if name in options:
            raise ChatError("alive.duplicate_option", name=name)
        options[name] = value
    fields: dict[str, object] = {
        name: _PARSERS[name](value, clip) for name, value in options.items()
    }
    fields.setdefault("seconds", seconds or clip.seconds)
    fields.setdefault("motion", clip.motion)
    return ClipSpec(prompt=" ".join(words), fps=clip.fps, size=clip.size, **fields)  # type: ignore[arg-type]


def _motion(value: str, clip: ClipDefaults) -> int:
    if not value.isdigit() or int(value) > MAX_MOTION:
        raise ChatError("alive.bad_motion")
    return int(value)


def _camera(value: str, clip: ClipDefaults) -> Camera:
    try:
        return Camera(value.replace("-", "_"))
    except ValueError:
        raise ChatError("alive.bad_camera", allowed=", ".join(c.value for c in Camera)) from None


def _seconds(value: str, clip: ClipDefaults) -> float:
    try:
        seconds = float(value.replace(",", "."))
    except ValueError:
        seconds = -1.0
    if not MIN_SECONDS <= seconds <= clip.max_seconds:
        raise ChatError("alive.bad_seconds", low=MIN_SECONDS, high=clip.max_seconds)
    return seconds


def _loop(value: str, clip: ClipDefaults) -> bool:
    if value not in _YES | _NO:
        raise ChatError("alive.bad_loop")
    return value in _YES


def _seed(value: str, clip: ClipDefaults) -> int:
    if not value.isdigit() or int(value) >= 2**31:
        raise ChatError("alive.bad_seed")
    return int(value)


_PARSERS: dict[str, Callable[[str, ClipDefaults], object]] = {
    "motion": _motion,
    "camera": _camera,
    "seconds": _seconds,
    "loop": _loop,
    "seed": _seed,
}


# Chat settings


SETTING_NAMES = ("enabled", "quota", "consent", "seconds", "language", "moderators", "channels")


def apply_setting(current: ChatSettings, name: str, value: str, clip: ClipDefaults) -> ChatSettings:
    """Return ``current`` with one setting changed from its text form.

    Raises:
        ChatError: for an unknown setting or a bad value, with a hint.
    """
    name, value = name.lower(), value.strip().lower()
    if name == "enabled" and value in _YES | _NO:
        return replace(current, enabled=value in _YES)
    if name == "quota" and value.isdigit() and int(value) <= MAX_QUOTA:
        return replace(current, daily_quota=int(value))
    if name == "consent" and value in CONSENT_RULES:
        return replace(current, consent=value)
    if name == "seconds":
        if value == "default":
            return replace(current, seconds=0.0)
        try:
            return replace(current, seconds=_seconds(value, clip))
        except ChatError:
            pass
    if name == "language" and (value == "auto" or value in languages()):
        return replace(current, language="" if value == "auto" else value)
    if name == "moderators" and (found := re.fullmatch(r"<?#?(-?\d+)>?|none", value)):
        # a chat id (Telegram), or a Discord channel id or #channel mention (<#id>)
        return replace(current, moderators_chat=found.group(1) or "")
    if name == "channels":
        channels = _channels(value)
        if channels is not None:
            return replace(current, channels=channels)
    if name not in SETTING_NAMES:
        raise ChatError("settings.unknown", name=name)
    raise ChatError(
        "settings.bad_value",
        name=name,
        value=value or '""',
        hint_key=f"settings.hint_{name}",
        low=MIN_SECONDS,
        high=clip.max_seconds,
        allowed=", ".join(languages()),
    )


def _channels(value: str) -> tuple[str, ...] | None:
    """Parse ``all`` or channel ids (spaces or commas between); None if a word is not one."""
    if value in ("all", "none", ""):
        return ()
    matches = [_CHANNEL.match(word) for word in re.split(r"[\s,]+", value) if word]
    if not all(matches):
        return None
    return tuple(dict.fromkeys(m.group(1) for m in matches if m))


def settings_text(current: ChatSettings, lang: str, *, channels: bool = False) -> str:
    """Return a chat's settings as a message (with the channels line where it applies)."""
    text = t(
        "settings.show",
        lang,
        enabled=t("settings.on" if current.enabled else "settings.off", lang),
        quota=current.daily_quota,
        consent=current.consent,
        seconds=current.seconds or t("settings.default", lang),
        language=current.language or t("settings.auto", lang),
    )
    if not channels:
        return text
    listed = " ".join(f"<#{c}>" for c in current.channels) or t("settings.everywhere", lang)
    mods = f"<#{current.moderators_chat}>" if current.moderators_chat else ""
    mods = t("settings.show_moderators", lang, channel=mods or t("settings.moderators_here", lang))
    head, _, tail = text.partition("\n\n")
    lines = f"{t('settings.show_channels', lang, channels=listed)}\n{mods}"
    return f"{head}\n{lines}\n\n{tail}".strip()


@dataclass(frozen=True, slots=True)
class TrackedJob:
    """A user's job in a chat, for /queue and /cancel."""

    job_id: str
    chat: ChatRef
    day: str


class ChatLogic:
    """The shared chat rules, on top of the service and the community store.

    Args:
        service: the core service.
        store: the community state (``services.community``: SQLite, or Redis when distributed).
        clock: UNIX time source (tests pass a fixed one).
    """

    def __init__(
        self,
        service: AliveService,
        store: CommunityState,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self.store = store
        self._clock = clock
        self._jobs: dict[tuple[str, str, str], TrackedJob] = {}
        self._cancelled: set[str] = set()

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        # SQLite commits fsync (synchronous=FULL), so they stay off the event loop.
        return await asyncio.to_thread(fn, *args)

    def today(self) -> str:
        """Return the quota day (UTC date)."""
        return datetime.fromtimestamp(self._clock(), UTC).strftime("%Y-%m-%d")

    # Settings and language

    async def chat_settings(self, chat: ChatRef) -> ChatSettings:
        """Return a chat's settings."""
        return await self._call(self.store.chat_settings, chat.platform, chat.chat_id)

    async def change_setting(self, chat: ChatRef, name: str, value: str) -> ChatSettings:
        """Change one setting of a chat (the adapter checks the user is an admin first)."""
        current = await self.chat_settings(chat)
        changed = apply_setting(current, name, value, self.service.settings.clip)
        await self._call(self.store.save_chat_settings, chat.platform, chat.chat_id, changed)
        return changed

    async def language(self, chat: ChatRef, user_code: str | None) -> str:
        """Return the reply language for a user in a chat."""
        from bots.i18n import pick_language

        return pick_language((await self.chat_settings(chat)).language, user_code)

    # Animating

    async def check_allowed(self, chat: ChatRef, channel: str | None = None) -> ChatSettings:
        """Return the chat's settings if animating is allowed here; raise ``ChatError`` if not.

        Args:
            chat: where the request came from.
            channel: the channel (Discord) it was made in; None where channels do not apply.
        """
        settings = await self.chat_settings(chat)
        if not settings.enabled:
            raise ChatError("alive.disabled")
        if channel is not None and settings.channels and channel not in settings.channels:
            listed = " ".join(f"<#{c}>" for c in settings.channels)
            raise ChatError("alive.wrong_channel", channels=listed)
        return settings

    async def prepare(self, chat: ChatRef, text: str, channel: str | None = None) -> ClipSpec:
        """Check the chat allows animating and parse the request; raise ``ChatError`` if not."""
        settings = await self.check_allowed(chat, channel)
        return parse_alive(text, self.service.settings.clip, seconds=settings.seconds)

    async def consent_rule(self, chat: ChatRef, owner_id: str) -> str:
        """Return ``"go"``, ``"ask"`` or ``"never"`` for animating a photo ``owner_id`` posted."""
        if not owner_id or owner_id == chat.user_id:
            return "go"
        rule = (await self.chat_settings(chat)).consent
        return {"allow": "go", "never": "never"}.get(rule, "ask")

    async def ask_consent(
        self, chat: ChatRef, owner_id: str, photo_ref: str, text: str
    ) -> ConsentRequest:
        """Store a pending consent request from ``chat.user_id`` to ``owner_id``."""
        request = ConsentRequest(
            "", chat.platform, chat.chat_id, chat.user_id, owner_id, photo_ref, text
        )
        return await self._call(self.store.create_consent, request)

    async def answer_consent(self, consent_id: str, user_id: str, allowed: bool) -> ConsentRequest:
        """Record the owner's answer; raise ``ChatError`` if it is not theirs or already given."""
        request = await self._call(self.store.get_consent, consent_id)
        if request is None or request.state != "pending":
            raise ChatError("consent.gone")
        if request.owner_id != user_id:
            raise ChatError("consent.not_yours")
        decided = await self._call(self.store.decide_consent, consent_id, user_id, allowed)
        if decided is None:
            raise ChatError("consent.gone")
        return decided

    async def submit(
        self,
        chat: ChatRef,
        photo: Photo,
        spec: ClipSpec,
        idempotency_key: str,
        *,
        max_bytes: int = 0,
        reply_to: str = "",
    ) -> JobHandle:
        """Count the clip against the quotas, then queue the job; raise ``ChatError`` if over.

        A request whose idempotency key was counted before (a platform delivering the same
        event twice, a button pressed twice) is not counted again: the service returns the job
        it already accepted for that key.

        A newly accepted job is recorded as a reply owed (``reply_to``) in the shared store, so
        an adapter that restarts before answering finds it (``replies_owed``) and answers it.

        Args:
            chat: who asked, where.
            photo: the photo.
            spec: the clip asked for.
            idempotency_key: equal keys mean the same request.
            max_bytes: the destination's upload limit (0: the configured default).
            reply_to: the adapter's reply target (JSON), kept until ``reply_posted``; empty
                for an adapter that does not resume replies (nothing is recorded).
        """
        settings = await self.chat_settings(chat)
        day = self.today()
        limits = (day, settings.daily_quota, settings.chat_daily_quota)
        where = (chat.platform, chat.chat_id, chat.user_id)
        if idempotency_key:
            taken = await self._call(self.store.take_quota_once, idempotency_key, *where, *limits)
        else:
            taken = "taken" if await self._call(self.store.take_quota, *where, *limits) else "over"
        if taken == "over":
            used = await self._call(self.store.quota_used, *where, day)
            if used >= settings.daily_quota:
                raise ChatError("alive.quota_user", limit=settings.daily_quota)
            raise ChatError("alive.quota_chat")
        request = JobRequest(photo, spec, chat, idempotency_key, max_bytes=max_bytes)
        try:
            handle = await self.service.submit(request)
        except BaseException:
            if taken == "taken":
                await self._call(self.store.give_back_quota, *where, day)
            raise
        if taken == "taken":
            self._jobs[_user_key(chat)] = TrackedJob(handle.id, chat, day)
            if reply_to:  # an adapter that resumes replies says where; others record nothing
                await self.owe_reply(chat, handle.id, reply_to)
        return handle

    # Replies owed: recorded at submit, forgotten once posted, resumed after a restart.

    async def owe_reply(self, chat: ChatRef, job_id: str, target: str) -> None:
        """Record (or update the target of) the reply owed for a job."""
        reply = PendingReply(job_id, chat.platform, chat.chat_id, chat.user_id, target)
        await self._call(self.store.save_pending_reply, reply)

    async def replies_owed(self, platform: str) -> list[PendingReply]:
        """Return the replies this platform still owes, oldest first."""
        return await self._call(self.store.pending_replies, platform)

    async def reply_posted(self, platform: str, job_id: str) -> None:
        """Forget a reply owed once it is posted (or can no longer be)."""
        await self._call(self.store.forget_pending_reply, platform, job_id)

    # /queue and /cancel

    async def queue_position(self, chat: ChatRef) -> tuple[str, int]:
        """Return ``("queued", n)``, ``("running", 0)`` or ``("none", 0)`` for the user's job."""
        tracked = self._jobs.get(_user_key(chat))
        if tracked is None or tracked.job_id in self._cancelled:
            return "none", 0
        handle = await self.service.job(tracked.job_id)
        if handle is None:
            return "none", 0
        status = handle.status()
        if status.state is JobState.QUEUED:
            return "queued", status.progress.queue_position if status.progress else 0
        if status.state is JobState.RUNNING:
            return "running", 0
        return "none", 0

    async def cancel(self, chat: ChatRef) -> str:
        """Cancel the user's waiting or running job: ``"cancelled"``, ``"too_late"`` or ``"none"``.

        A queued job is dropped at once, a running one stops at its next step (it then fails
        with code ``"cancelled"``); either way its clip is never sent and the quota comes back.
        ``"too_late"`` means the job finished before the cancel reached it.
        """
        state, _ = await self.queue_position(chat)
        if state == "none":
            return "none"
        tracked = self._jobs[_user_key(chat)]
        if not await self.service.cancel(tracked.job_id):
            return "too_late"
        self._jobs.pop(_user_key(chat), None)
        self._cancelled.add(tracked.job_id)
        await self._call(
            self.store.give_back_quota, chat.platform, chat.chat_id, chat.user_id, tracked.day
        )
        return "cancelled"

    def is_cancelled(self, job_id: str) -> bool:
        """Return whether the requester cancelled this job (its clip must not be sent)."""
        return job_id in self._cancelled

    def job_finished(self, chat: ChatRef, job_id: str) -> None:
        """Forget a finished job of a user."""
        key = _user_key(chat)
        if key in self._jobs and self._jobs[key].job_id == job_id:
            del self._jobs[key]
        self._cancelled.discard(job_id)

    # Sent clips: a delivery is claimed (recorded) before the clip is sent, so it goes out once.

    async def claim_delivery(self, chat: ChatRef, job_id: str) -> bool:
        """Claim the sending of a job's clip; False if it was claimed (sent) before."""
        return await self._call(self.store.claim_delivery, job_id, chat.platform, chat.chat_id)

    async def release_delivery(self, job_id: str) -> None:
        """Give a claim back after a send that surely failed."""
        await self._call(self.store.release_delivery, job_id)

    async def delivered(self, job_id: str) -> bool:
        """Return whether a job's clip was sent (or is being sent)."""
        return await self._call(self.store.delivered, job_id)

    async def clip_sent(self, message: ClipMessage) -> None:
        """Remember where a clip was sent (for reports, deletes and take-downs)."""
        await self._call(self.store.record_clip_message, message)

    async def clip_at(self, chat: ChatRef) -> ClipMessage | None:
        """Return the clip sent as message ``chat.message_id``, or None."""
        return await self._call(self.store.clip_at, chat.platform, chat.chat_id, chat.message_id)

    async def clip_deleted(self, chat: ChatRef) -> None:
        """Forget a clip message that was deleted."""
        await self._call(
            self.store.forget_clip_message, chat.platform, chat.chat_id, chat.message_id
        )

    # Reports, appeals and the moderators' queue

    async def report(self, chat: ChatRef, ledger_id: str, reason: str) -> Report:
        """Record ``chat.user_id``'s report on a clip; raise ``ChatError`` if duplicate or spam."""
        return await self._file("report", chat, ledger_id, reason)

    async def appeal(self, chat: ChatRef, job_id: str, code: str, reason: str) -> Report:
        """Queue an appeal of a moderation block (``code``) of job ``job_id``.

        The appeal carries the decision it contests (code, stage, check, scores), found in the
        audit log by the job's ``request_ref``; never the photo or the prompt.

        Raises:
            ChatError: over the daily appeal cap, a duplicate, or over the report rate.
        """
        since = self._clock() - DAY_S
        appeals = await self._call(
            self.store.reports_since, chat.platform, chat.user_id, since, "appeal"
        )
        if appeals >= APPEALS_PER_DAY:
            raise ChatError("report.appeal_limit", limit=APPEALS_PER_DAY)
        audit = self.service.services.audit
        record = await self._call(audit.find, "moderation", request_ref(job_id))
        decision = json.dumps(decision_summary(record), sort_keys=True) if record else ""
        reason = f"[{code}] {reason}".strip()
        return await self._file("appeal", chat, job_id, reason, decision)

    async def _file(
        self, kind: str, chat: ChatRef, subject: str, reason: str, decision: str = ""
    ) -> Report:
        since = self._clock() - 3600
        recent = await self._call(self.store.reports_since, chat.platform, chat.user_id, since)
        if recent >= REPORTS_PER_HOUR:
            raise ChatError("report.rate_limited")
        item = Report(
            0, kind, chat.platform, chat.chat_id, subject, chat.user_id, reason[:500],
            decision=decision,
        )  # fmt: skip
        stored = await self._call(self.store.add_report, item)
        if stored is None:
            raise ChatError("report.appeal_duplicate" if kind == "appeal" else "report.duplicate")
        return stored

    async def resolve(
        self, report_id: int, moderator: ChatRef, *, take_down: bool
    ) -> tuple[Report, list[ClipMessage]]:
        """Take down the reported clip (revoking its ledger entry) or dismiss the item.

        Returns:
            The resolved item, and the messages that carried the clip (for the adapter to
            delete) — empty when dismissed.

        Raises:
            ChatError: if the item was already handled or is unknown.
        """
        state = "taken_down" if take_down else "dismissed"
        item = await self._call(self.store.resolve_report, report_id, state, moderator.user_id)
        if item is None:
            raise ChatError("moderation.already")
        if not take_down or item.kind != "report":
            return item, []
        await self.service.take_down(item.subject, item.reason or "reported", moderator)
        return item, await self._call(self.store.clip_messages, item.subject)


def decision_text(item: Report, lang: str = "en") -> str:
    """Return the contested decision of an appeal for the moderators, or ``""`` if unknown."""
    if not item.decision:
        return ""
    d = json.loads(item.decision)
    scores = ", ".join(f"{k}={v:.2f}" for k, v in sorted(d.get("scores", {}).items())) or "-"
    return t("report.appeal_decision", lang, code=d.get("code", ""), stage=d.get("stage", ""),
             check=d.get("check", ""), scores=scores)  # fmt: skip


def _user_key(chat: ChatRef) -> tuple[str, str, str]:
    return chat.platform, chat.chat_id, chat.user_id

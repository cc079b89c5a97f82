"""The Telegram adapter: Bot API updates in, ``bots.chat`` and ``core.service`` calls, replies out.

Handlers translate a message into a chat reference, a photo and a spec, call the shared chat
logic, and render the result from the message catalogue. Photo handlers never block the update
loop (``block=False``): a job's progress, clip and buttons arrive as later messages.
"""

# NOTE: longer than our usual ~300 lines: one handler per command and button, each short,
# and keeping them together shows the whole bot surface in one place.

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeVar
from urllib.parse import urlsplit

from telegram import (
    BotCommand,
    BotCommandScopeAllChatAdministrators,
    BotCommandScopeDefault,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatType
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bots.chat import ChatError, ChatLogic, command_args, decision_text, settings_text
from bots.i18n import languages, pick_language, t
from bots.render import failure_message, progress_message, reason_message, verify_text
from core.community import ClipMessage, PendingReply
from core.errors import ConfigError, JobFailed
from core.metrics import record_platform_error
from core.service import AliveService
from core.settings import Settings
from core.types import ChatRef, ClipSpec, Outcome, Photo, Stage

log = logging.getLogger(__name__)

T = TypeVar("T")
PLATFORM = "telegram"
PUBLIC_API = "https://api.telegram.org"
MB = 1024 * 1024
# NOTE: Bot API limits (core.telegram.org/bots/api#getfile, #sendvideo): bots download up to
# 20 MB and upload up to 50 MB through the public server; a self-hosted one lifts both to 2000 MB.
PUBLIC_DOWNLOAD_LIMIT, PUBLIC_UPLOAD_LIMIT, LOCAL_LIMIT = 20 * MB, 50 * MB, 2000 * MB
# NOTE: Telegram allows about 20 messages a minute per group (core.telegram.org/bots/faq);
# one edit every 5 s keeps a single job at 12 a minute, the rate limiter queues the rest.
PROGRESS_EDIT_INTERVAL_S = 5.0
SEND_ATTEMPTS = 4  # network errors: 1 s, 2 s, 4 s backoff, then give up
ALIVE_RE = re.compile(r"^/alive(?:@(\w+))?(?:\s|$)", re.IGNORECASE)
Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]
COMMANDS = ("alive", "verify", "report", "appeal", "help", "start", "queue", "cancel")
APPEAL_DATA = re.compile(r"^a:([0-9a-f]+):([a-z_]+)$")
HANDLERS = "alive.handlers"  # bot_data key of the application's TelegramHandlers


@dataclass(frozen=True, slots=True)
class PhotoRef:
    """Where a photo to animate is: a Bot API file and the messages around it."""

    file_id: str
    file_size: int
    filename: str
    request_message_id: int
    thread_id: int | None

    def to_json(self) -> str:
        """Serialise for a consent request."""
        return json.dumps([self.file_id, self.file_size, self.filename,
                           self.request_message_id, self.thread_id])  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> PhotoRef:
        """Deserialise from a consent request."""
        file_id, size, name, message_id, thread_id = json.loads(text)
        return cls(file_id, size, name, message_id, thread_id)


@dataclass(frozen=True, slots=True)
class ReplyTarget:
    """Where a job's answer goes: the request it replies to, its topic, its progress message.

    Kept with the reply owed (``ChatLogic.owe_reply``), so a restarted bot answers in place.
    """

    lang: str
    request_message_id: int
    thread_id: int | None
    status_message_id: int = 0

    def to_json(self) -> str:
        """Serialise for the shared store."""
        return json.dumps([self.lang, self.request_message_id, self.thread_id,
                           self.status_message_id])  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> ReplyTarget:
        """Deserialise from the shared store."""
        lang, message_id, thread_id, status_id = json.loads(text)
        return cls(lang, message_id, thread_id, status_id)

    def where(self) -> dict[str, Any]:
        """Return the send arguments that place a message as a reply in the right topic."""
        reply = ReplyParameters(self.request_message_id, allow_sending_without_reply=True)
        return {"reply_parameters": reply, "message_thread_id": self.thread_id}


def build_application(
    service: AliveService, settings: Settings
) -> Application[Any, Any, Any, Any, Any, Any]:
    """Build the PTB Application for ``service``, talking to ``settings.telegram_api_url``.

    Raises:
        ConfigError: if no token is set.
    """
    if settings.telegram_token is None:
        raise ConfigError("ALIVE_TELEGRAM_TOKEN is not set")
    api = settings.telegram_api_url.rstrip("/")
    app = (
        ApplicationBuilder()
        .token(settings.telegram_token.get_secret_value())
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        # RetryAfter (429) is waited out and the same request retried, so a clip is sent once.
        .rate_limiter(AIORateLimiter(max_retries=3))
        .concurrent_updates(True)
        .build()
    )
    handlers = TelegramHandlers(service, ChatLogic(service, service.services.community))
    handlers.public_api = is_public_api(api)
    handlers.add_to(app)
    app.bot_data[HANDLERS] = handlers
    return app


def is_public_api(api_url: str) -> bool:
    """Return whether ``api_url`` is Telegram's public Bot API (not a self-hosted server)."""
    return urlsplit(api_url).hostname == urlsplit(PUBLIC_API).hostname


def upload_limit_for(api_url: str) -> int:
    """Return the largest clip sendVideo accepts through ``api_url``."""
    return PUBLIC_UPLOAD_LIMIT if is_public_api(api_url) else LOCAL_LIMIT


async def register_commands(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Register the command menu per scope and language (admins also see /settings)."""
    for lang in languages():
        code = "" if lang == "en" else lang
        everyone = [BotCommand(name, t(f"command.{name}", lang)) for name in COMMANDS]
        admins = [*everyone, BotCommand("settings", t("command.settings", lang))]
        await app.bot.set_my_commands(
            everyone, BotCommandScopeDefault(), language_code=code or None
        )
        await app.bot.set_my_commands(
            admins, BotCommandScopeAllChatAdministrators(), language_code=code or None
        )


async def run_telegram(service: AliveService, settings: Settings, stop: asyncio.Event) -> None:
    """Run the bot on the current loop until ``stop`` is set, then shut down in order."""
    app = build_application(service, settings)
    assert settings.telegram_token is not None
    with redacted_logs(settings.telegram_token.get_secret_value()):
        async with app:  # initialize ... shutdown
            await register_commands(app)
            assert app.updater is not None
            await app.updater.start_polling(allowed_updates=Update.ALL_TYPES)
            await app.start()
            log.info("telegram bot @%s is polling", app.bot.username)
            handlers: TelegramHandlers = app.bot_data[HANDLERS]
            await handlers.resume()
            try:
                await stop.wait()
            finally:
                await app.updater.stop()
                # Unanswered jobs stay owed in the shared store; the next start answers them,
                # so stopping never waits for a job to finish.
                await handlers.abandon()
                await app.stop()


# Logging: the token is part of every Bot API URL.


@contextmanager
def redacted_logs(token: str) -> Iterator[None]:
    """Keep ``token`` out of every log record, and quiet the HTTP client loggers."""
    for name in ("httpx", "httpcore", "telegram", "telegram.ext"):
        logging.getLogger(name).setLevel(logging.WARNING)
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        return redact_record(record, token)

    logging.setLogRecordFactory(factory)
    try:
        yield
    finally:
        logging.setLogRecordFactory(previous)


def redact_record(record: logging.LogRecord, token: str) -> logging.LogRecord:
    """Format the record's message and traceback now, with the token replaced."""
    if not token:
        return record
    try:
        message = record.getMessage()
    except (TypeError, ValueError):
        message = str(record.msg)
    record.msg, record.args = message.replace(token, "<token>"), ()
    if record.exc_info:
        text = logging.Formatter().formatException(record.exc_info)
        record.exc_text = text.replace(token, "<token>")
    return record


# Retries at the edge: RetryAfter is the rate limiter's; network errors are retried here.


async def with_retries(send: Callable[[], Awaitable[T]]) -> T:
    """Call ``send``, retrying network errors with backoff (RetryAfter is waited out too)."""
    for attempt in range(SEND_ATTEMPTS):
        try:
            return await send()
        except RetryAfter as exc:
            wait = exc.retry_after
            await asyncio.sleep(wait if isinstance(wait, float | int) else wait.total_seconds())
        except TimedOut:
            # A timed-out upload may have arrived: retrying could send the clip twice.
            raise
        except NetworkError:
            if attempt == SEND_ATTEMPTS - 1:
                raise
            await asyncio.sleep(2**attempt)
    return await send()


class TelegramHandlers:
    """The bot's handlers; each translates an update and calls the chat logic."""

    def __init__(self, service: AliveService, chat: ChatLogic) -> None:
        self.service = service
        self.chat = chat
        self.public_api = True
        self.bot: Any = None
        self._following: set[str] = set()  # jobs this process is answering
        self._answers: set[asyncio.Task[None]] = set()  # their tasks, cancelled on shutdown
        self._closing = False
        self._requests: set[str] = set()  # idempotency keys of requests being answered here

    @property
    def download_limit(self) -> int:
        """Largest file getFile serves."""
        return PUBLIC_DOWNLOAD_LIMIT if self.public_api else LOCAL_LIMIT

    @property
    def upload_limit(self) -> int:
        """Largest file sendVideo accepts."""
        return PUBLIC_UPLOAD_LIMIT if self.public_api else LOCAL_LIMIT

    def add_to(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Register every handler and the error handler."""
        self.bot = app.bot
        alive = filters.Regex(ALIVE_RE) | filters.CaptionRegex(ALIVE_RE)
        app.add_handler(MessageHandler(alive, self.on_alive, block=False))
        commands: dict[str, Handler] = {
            "verify": self.on_verify,
            "report": self.on_report,
            "appeal": self.on_appeal,
            "help": self.on_help,
            "start": self.on_help,
            "settings": self.on_settings,
            "cancel": self.on_cancel,
            "queue": self.on_queue,
        }
        for name, callback in commands.items():
            app.add_handler(CommandHandler(name, callback, block=name != "verify"))
        app.add_handler(CallbackQueryHandler(self.on_button, block=False))
        app.add_handler(MessageHandler(filters.COMMAND, self.on_unknown))
        app.add_error_handler(self.on_error)

    # Helpers

    async def _context(self, update: Update) -> tuple[Message, ChatRef, str]:
        msg = update.effective_message
        user = update.effective_user
        assert msg is not None
        assert update.effective_chat is not None
        ref = ChatRef(
            PLATFORM,
            str(update.effective_chat.id),
            str(user.id) if user else "",
            str(msg.message_id),
        )
        lang = await self.chat.language(ref, user.language_code if user else None)
        return msg, ref, lang

    async def _say(self, chat_id: str | int, text: str, **kwargs: Any) -> Message:
        bot = self.bot
        return await with_retries(lambda: bot.send_message(chat_id, text, **kwargs))

    async def _reply(self, msg: Message, text: str, **kwargs: Any) -> Message:
        return await with_retries(lambda: msg.reply_text(text, do_quote=True, **kwargs))

    async def _download(self, file_id: str, size: int) -> bytes | None:
        """Return a file's bytes, or None when it is over the Bot API's download limit."""
        if size > self.download_limit:
            return None
        try:
            file = await with_retries(lambda: self.bot.get_file(file_id))
        except BadRequest as exc:
            if "too big" in exc.message.lower():
                return None
            raise
        return bytes(await with_retries(file.download_as_bytearray))

    # /alive

    async def on_alive(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Animate the photo this message carries or replies to."""
        msg, ref, lang = await self._context(update)
        text = msg.text or msg.caption or ""
        addressed = ALIVE_RE.match(text)
        if (
            addressed
            and addressed.group(1)
            and addressed.group(1).lower() != (context.bot.username or "").lower()
        ):
            return  # a command for another bot
        source = msg if _photo_of(msg) else msg.reply_to_message
        photo = _photo_of(source) if source else None
        if source is None or photo is None:
            await self._reply(msg, t("alive.need_photo", lang))
            return
        file_id, size, filename = photo
        thread = msg.message_thread_id if msg.is_topic_message else None
        pref = PhotoRef(file_id, size, filename, msg.message_id, thread)
        try:
            spec = await self.chat.prepare(ref, text)
            owner = source.from_user
            rule = await self.chat.consent_rule(
                ref, str(owner.id) if owner and not owner.is_bot else ""
            )
            if rule == "never":
                raise ChatError("consent.never")
        except ChatError as exc:
            await self._reply(msg, exc.text(lang))
            return
        if rule == "ask":
            assert owner is not None
            name = update.effective_user.first_name if update.effective_user else ""
            await self._ask_consent(source, ref, (owner.id, owner.first_name, name), pref, text)
            await self._reply(msg, t("consent.waiting", lang))
            return
        await self._animate(ref, lang, pref, spec)

    async def _ask_consent(
        self, source: Message, ref: ChatRef, names: tuple[int, str, str], pref: PhotoRef, text: str
    ) -> None:
        owner_id, owner_name, requester_name = names
        lang = await self.chat.language(ref, None)
        request = await self.chat.ask_consent(ref, str(owner_id), pref.to_json(), f"{lang} {text}")
        owner_lang = await self.chat.language(ref, None)
        answers = [("button.allow", "1"), ("button.decline", "0")]
        buttons = InlineKeyboardMarkup([[
            InlineKeyboardButton(t(key, owner_lang), callback_data=f"c:{request.id}:{value}")
            for key, value in answers
        ]])  # fmt: skip
        await self._reply(
            source,
            t("consent.ask", owner_lang, owner=owner_name, requester=requester_name),
            reply_markup=buttons,
        )

    async def _animate(self, ref: ChatRef, lang: str, pref: PhotoRef, spec: ClipSpec) -> bool:
        """Download, queue, follow progress, then send the clip as a reply to the request.

        Returns:
            False when this request is a duplicate (the same update delivered again, a button
            pressed twice) whose job is already being answered or was answered.
        """
        target = ReplyTarget(lang, pref.request_message_id, pref.thread_id)
        where = target.where()
        data = await self._download(pref.file_id, pref.file_size)
        if data is None:
            await self._say(
                ref.chat_id,
                t("alive.file_too_big", lang, limit_mb=self.download_limit // MB),
                **where,
            )
            return True
        key = f"{PLATFORM}:{ref.chat_id}:{ref.message_id}:{spec.seed}"
        if key in self._requests:  # checked and added with no await between: no race here
            log.info("request %s is already being answered; ignoring a repeat", key)
            return False
        self._requests.add(key)
        try:
            return await self._submit_and_answer(ref, target, Photo(data, pref.filename), spec, key)
        finally:
            self._requests.discard(key)

    async def _submit_and_answer(
        self, ref: ChatRef, target: ReplyTarget, photo: Photo, spec: ClipSpec, key: str
    ) -> bool:
        try:
            handle = await self.chat.submit(
                ref, photo, spec, key, max_bytes=self.upload_limit, reply_to=target.to_json()
            )
        except ChatError as exc:
            await self._say(ref.chat_id, exc.text(target.lang), **target.where())
            return True
        if handle.id in self._following or await self.chat.delivered(handle.id):
            log.info("job %s is already answered; ignoring a repeat of its request", handle.id)
            return False
        await self._answer_tracked(ref, target, handle)
        return True

    # Answering: each answer is a task this process tracks, so shutting down can drop it (the
    # reply stays owed in the shared store) and the next start resumes it.

    async def resume(self) -> None:
        """Answer, in the background, every job accepted before a restart and never answered."""
        for owed in await self.chat.replies_owed(PLATFORM):
            if owed.job_id not in self._following:
                self._track(self._resume_one(owed))

    async def abandon(self) -> None:
        """Stop answering (shutting down); the replies stay owed for the next start."""
        self._closing = True
        for task in list(self._answers):
            task.cancel()
        await asyncio.gather(*self._answers, return_exceptions=True)

    def _track(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)
        return task

    async def _resume_one(self, owed: PendingReply) -> None:
        """Answer one owed reply: follow its job, then post through the usual delivery."""
        try:
            target = ReplyTarget.from_json(owed.target)
            handle = await self.service.job(owed.job_id)
            if handle is None:  # expired (or unknown): nothing left to post
                log.info("job %s owed a reply but is gone; forgetting it", owed.job_id)
                await self.chat.reply_posted(PLATFORM, owed.job_id)
                return
            log.info("resuming the reply to job %s after a restart", owed.job_id)
            if target.status_message_id:  # the progress message the previous run left
                await _delete_by_id(self.bot, owed.chat_id, str(target.status_message_id))
            ref = ChatRef(PLATFORM, owed.chat_id, owed.user_id, str(target.request_message_id))
            await self._answer_tracked(ref, target, handle)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception:
            log.exception("could not resume the reply to job %s", owed.job_id)

    async def _answer_tracked(self, ref: ChatRef, target: ReplyTarget, handle: Any) -> None:
        """Answer a job as a tracked task; return quietly if shutting down drops it."""
        if self._closing:
            return  # the reply stays owed: the next start answers it
        self._following.add(handle.id)
        task = self._track(self._answer(ref, target, handle))
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            self._following.discard(handle.id)
        if not task.cancelled():
            task.result()  # re-raise a failure for the error handler

    async def _answer(self, ref: ChatRef, target: ReplyTarget, handle: Any) -> None:
        """Show progress, then the clip, the refusal or the failure; then the reply is paid."""
        await self._answer_job(ref, target, handle)
        await self.chat.reply_posted(PLATFORM, handle.id)

    async def _answer_job(self, ref: ChatRef, target: ReplyTarget, handle: Any) -> None:
        lang, where = target.lang, target.where()
        first = handle.status().progress
        status = await self._say(
            ref.chat_id,
            progress_message(first, lang=lang) if first else t("progress.waiting", lang),
            **where,
        )
        target = replace(target, status_message_id=status.message_id)
        await self.chat.owe_reply(ref, handle.id, target.to_json())
        try:
            await self._follow(handle, status, lang)
            outcome = await handle.result()
        except JobFailed as exc:
            await _edit(status, failure_message(exc.code, lang=lang))
            return
        finally:
            self.chat.job_finished(ref, handle.id)
        if self.chat.is_cancelled(handle.id):
            await _edit(status, failure_message("cancelled", lang=lang))
            return
        await self._deliver(ref, lang, outcome, status, where, handle.id)

    async def _follow(self, handle: Any, status: Message, lang: str) -> None:
        last_text, last_edit = status.text, time.monotonic()
        async for event in handle.events():
            text = progress_message(event, lang=lang)
            if text != last_text and time.monotonic() - last_edit >= PROGRESS_EDIT_INTERVAL_S:
                await _edit(status, text)
                last_text, last_edit = text, time.monotonic()

    async def _deliver(
        self, ref: ChatRef, lang: str, outcome: Outcome, status: Message,
        where: dict[str, Any], job_id: str,
    ) -> None:  # fmt: skip
        clip = outcome.clip
        if clip is None:
            appeal = None
            if outcome.verdict.stage is not Stage.INPUT:
                code = outcome.verdict.code
                data = f"a:{job_id}:{code}"[:64]
                appeal = InlineKeyboardMarkup(
                    [[InlineKeyboardButton(t("button.appeal", lang), callback_data=data)]]
                )
            await _edit(status, reason_message(outcome.verdict.code, lang=lang), appeal)
            return
        if len(clip.data) > self.upload_limit:  # the encoder fits max_bytes; never send past it
            await _edit(status, failure_message("too_large", lang=lang))
            return
        # Claimed before sending: a second follower of this job (a repeated update, a double
        # press) finds the claim and sends nothing.
        if not await self.chat.claim_delivery(ref, job_id):
            await _delete(status)
            return
        buttons = clip_buttons(clip.ledger_id, lang)
        try:
            sent = await with_retries(lambda: self.bot.send_video(
                ref.chat_id, clip.data, duration=round(clip.duration) or 1, width=clip.width,
                height=clip.height, thumbnail=clip.poster or None, supports_streaming=True,
                caption=outcome.note[:1024], reply_markup=buttons,
                filename=f"alive-{clip.ledger_id}.mp4", **where,
            ))  # fmt: skip
        except TelegramError as exc:
            if not isinstance(exc, TimedOut):  # a timed-out upload may have arrived
                await self.chat.release_delivery(job_id)
            raise
        await self.chat.clip_sent(
            ClipMessage(clip.ledger_id, PLATFORM, ref.chat_id, str(sent.message_id), ref.user_id)
        )
        await _delete(status)

    # /verify, /report

    async def on_verify(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Check the provenance of the replied-to photo, video, animation or file."""
        msg, _, lang = await self._context(update)
        target = _any_file_of(msg.reply_to_message) if msg.reply_to_message else None
        if target is None:
            await self._reply(msg, t("verify.need_reply", lang))
            return
        data = await self._download(*target)
        if data is None:
            await self._reply(
                msg, t("alive.file_too_big", lang, limit_mb=self.download_limit // MB)
            )
            return
        report = await self.service.verify(data)
        await self._reply(msg, verify_text(report, lang=lang))

    async def on_report(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Report the replied-to clip to the moderators."""
        msg, ref, lang = await self._context(update)
        clip_msg = msg.reply_to_message
        if clip_msg is None:
            await self._reply(msg, t("report.need_reply", lang))
            return
        sent = await self.chat.clip_at(
            ChatRef(PLATFORM, ref.chat_id, ref.user_id, str(clip_msg.message_id))
        )
        if sent is None:
            await self._reply(msg, t("report.not_ours", lang))
            return
        await self._reply(
            msg, await self._file_report(ref, lang, sent.ledger_id, command_args(msg.text or ""))
        )

    async def on_appeal(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Appeal the block in the replied-to refusal (the Appeal button, as a command)."""
        msg, ref, lang = await self._context(update)
        refusal = msg.reply_to_message
        found = _appeal_of(refusal) if refusal else None
        # Only the bot's own refusals carry an appeal: a user cannot forge its buttons.
        if (
            refusal is None
            or found is None
            or refusal.from_user is None
            or (refusal.from_user.id != context.bot.id)
        ):
            await self._reply(msg, t("report.appeal_need_reply", lang))
            return
        job_id, code = found
        reason = command_args(msg.text or "")
        await self._reply(msg, await self._file_appeal(ref, lang, job_id, code, reason))

    async def _file_report(self, ref: ChatRef, lang: str, ledger_id: str, reason: str) -> str:
        try:
            item = await self.chat.report(ref, ledger_id, reason)
        except ChatError as exc:
            return exc.text(lang)
        text = t("report.notify", lang, id=item.id, ledger_id=ledger_id, chat=ref.chat_id,
                 reason=reason or t("report.no_reason", lang))  # fmt: skip
        await self._notify_moderators(ref, item.id, text, lang, take_down=True)
        return t("report.ack", lang)

    async def _notify_moderators(
        self, ref: ChatRef, item_id: int, text: str, lang: str, *, take_down: bool
    ) -> None:
        row = [InlineKeyboardButton(t("button.dismiss", lang), callback_data=f"m:{item_id}:d")]
        if take_down:
            row.insert(
                0, InlineKeyboardButton(t("button.take_down", lang), callback_data=f"m:{item_id}:t")
            )
        markup = InlineKeyboardMarkup([row])
        target = (await self.chat.chat_settings(ref)).moderators_chat
        if target:
            await self._say(target, text, reply_markup=markup)
            return
        delivered = 0
        for admin in await self._admins(ref.chat_id):
            try:
                await self._say(admin, text, reply_markup=markup)
                delivered += 1
            except Forbidden:
                pass  # this admin never started a private chat with the bot
        if not delivered:
            await self._say(ref.chat_id, text, reply_markup=markup)

    async def _admins(self, chat_id: str) -> list[int]:
        if not chat_id.startswith("-"):
            return [int(chat_id)]  # a private chat: its user administers it
        members = await with_retries(lambda: self.bot.get_chat_administrators(chat_id))
        return [m.user.id for m in members if not m.user.is_bot]

    async def _is_admin(self, chat_id: str, user_id: str) -> bool:
        return int(user_id) in await self._admins(chat_id)

    # Buttons

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Dispatch an inline button press by its callback data prefix."""
        query = update.callback_query
        assert query is not None
        assert query.data is not None
        kind, _, rest = query.data.partition(":")
        _, ref, lang = await self._context(update)
        actions = {"c": self._on_consent, "v": self._on_verify_button, "r": self._on_report_button,
                   "d": self._on_delete, "rt": self._on_retry, "m": self._on_moderate,
                   "a": self._on_appeal}  # fmt: skip
        action = actions.get(kind)
        answer = await action(query, ref, lang, rest) if action else ""
        await with_retries(lambda: query.answer(answer or None))

    async def _on_consent(self, query: Any, ref: ChatRef, lang: str, rest: str) -> str:
        consent_id, _, allowed = rest.partition(":")
        try:
            request = await self.chat.answer_consent(consent_id, ref.user_id, allowed == "1")
        except ChatError as exc:
            return exc.text(lang)
        requester_lang, _, text = request.request_text.partition(" ")
        pref = PhotoRef.from_json(request.photo_ref)
        word = "consent.allowed" if request.state == "allowed" else "consent.declined"
        await _edit(query.message, t(word, requester_lang))
        if request.state == "allowed":
            requester = ChatRef(
                PLATFORM, request.chat_id, request.requester_id, str(pref.request_message_id)
            )
            spec = await self.chat.prepare(requester, text)
            await self._animate(requester, requester_lang, pref, spec)
        return ""

    async def _on_verify_button(self, query: Any, ref: ChatRef, lang: str, rest: str) -> str:
        video = query.message.video if query.message else None
        if video is None:
            return t("verify.need_reply", lang)
        data = await self._download(video.file_id, video.file_size or 0)
        report = await self.service.verify(data or b"")
        await self._reply(query.message, verify_text(report, lang=lang))
        return ""

    async def _on_report_button(self, query: Any, ref: ChatRef, lang: str, rest: str) -> str:
        return await self._file_report(ref, lang, rest, "")

    async def _on_delete(self, query: Any, ref: ChatRef, lang: str, rest: str) -> str:
        where = ChatRef(PLATFORM, ref.chat_id, ref.user_id, str(query.message.message_id))
        sent = await self.chat.clip_at(where)
        if sent is None or sent.requester_id != ref.user_id:
            return t("alive.delete_not_yours", lang)
        await _delete(query.message)
        await self.chat.clip_deleted(where)
        return t("alive.deleted", lang)

    async def _on_retry(self, query: Any, ref: ChatRef, lang: str, rest: str) -> str:
        clip_message = query.message
        where = ChatRef(PLATFORM, ref.chat_id, ref.user_id, str(clip_message.message_id))
        sent = await self.chat.clip_at(where)
        request = clip_message.reply_to_message
        source = (
            request if request and _photo_of(request) else (request and request.reply_to_message)
        )
        photo = _photo_of(source) if source else None
        if sent is None or sent.requester_id != ref.user_id or request is None or photo is None:
            return t("alive.retry_not_yours", lang)
        try:
            spec = await self.chat.prepare(ref, request.text or request.caption or "")
        except ChatError as exc:
            return exc.text(lang)
        # A retry asks for a different clip: the seed moves on, and keys the job by the press.
        spec = _with_seed(spec, spec.seed + clip_message.message_id % 997 + 1)
        thread = request.message_thread_id if request.is_topic_message else None
        requester = ChatRef(PLATFORM, ref.chat_id, ref.user_id, str(request.message_id))
        pref = PhotoRef(*photo, request.message_id, thread)
        if not await self._animate(requester, lang, pref, spec):
            return t("alive.retry_pending", lang)
        return ""

    async def _on_moderate(self, query: Any, ref: ChatRef, lang: str, rest: str) -> str:
        report_id, _, action = rest.partition(":")
        found = await asyncio.to_thread(self.chat.store.get_report, int(report_id))
        if found is None:
            return t("moderation.already", lang)
        settings = await self.chat.chat_settings(ChatRef(PLATFORM, found.chat_id))
        in_mod_chat = settings.moderators_chat and settings.moderators_chat == ref.chat_id
        if not in_mod_chat and not await self._is_admin(found.chat_id, ref.user_id):
            return t("moderation.only_moderators", lang)
        try:
            resolved, messages = await self.chat.resolve(
                int(report_id), ref, take_down=action == "t"
            )
        except ChatError as exc:
            return exc.text(lang)
        for message in messages:
            await _delete_by_id(self.bot, message.chat_id, message.message_id)
            await self.chat.clip_deleted(ChatRef(PLATFORM, message.chat_id, "", message.message_id))
        done = (t("moderation.taken_down", lang, ledger_id=resolved.subject)
                if action == "t" else t("moderation.dismissed", lang, id=resolved.id))  # fmt: skip
        await _edit(query.message, done)
        return done

    async def _on_appeal(self, query: Any, ref: ChatRef, lang: str, rest: str) -> str:
        job_id, _, code = rest.partition(":")
        return await self._file_appeal(ref, lang, job_id, code, "")

    async def _file_appeal(
        self, ref: ChatRef, lang: str, job_id: str, code: str, reason: str
    ) -> str:
        try:
            item = await self.chat.appeal(ref, job_id, code, reason)
        except ChatError as exc:
            return exc.text(lang)
        text = t("report.appeal_notify", lang, id=item.id, code=code, chat=ref.chat_id,
                 reason=reason or t("report.no_reason", lang))  # fmt: skip
        if decision := decision_text(item, lang):
            text = f"{text}\n{decision}"
        await self._notify_moderators(ref, item.id, text, lang, take_down=False)
        return t("report.appeal_ack", lang)

    # /help, /settings, /queue, /cancel, unknown commands, errors

    async def on_help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Explain usage, the label and the credentials, and the privacy note."""
        msg, _, lang = await self._context(update)
        await self._reply(msg, t("help.text", lang, days=self.service.settings.retention.clip_days))

    async def on_settings(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Show the chat's settings, or change one (chat admins only)."""
        msg, ref, lang = await self._context(update)
        args = context.args or []
        if args and not await self._is_admin(ref.chat_id, ref.user_id):
            await self._reply(msg, t("settings.admins_only", lang))
            return
        if len(args) >= 2:
            try:
                await self.chat.change_setting(ref, args[0], " ".join(args[1:]))
            except ChatError as exc:
                await self._reply(msg, exc.text(lang))
                return
            lang = await self.chat.language(
                ref, update.effective_user.language_code if update.effective_user else None
            )
        current = await self.chat.chat_settings(ref)
        await self._reply(msg, settings_text(current, lang))

    async def on_queue(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Say the user's place in line."""
        msg, ref, lang = await self._context(update)
        state, position = await self.chat.queue_position(ref)
        key = {"queued": "queue.position", "running": "queue.running"}.get(state, "queue.none")
        await self._reply(msg, t(key, lang, position=position))

    async def on_cancel(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Cancel the user's queued job."""
        msg, ref, lang = await self._context(update)
        result = await self.chat.cancel(ref)
        key = {"cancelled": "queue.cancelled", "too_late": "queue.too_late"}.get(
            result, "queue.none"
        )
        await self._reply(msg, t(key, lang))

    async def on_unknown(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Ignore other commands in groups (maybe another bot's); point to /help in private."""
        chat = update.effective_chat
        if chat is not None and chat.type == ChatType.PRIVATE and update.effective_message:
            lang = pick_language(
                "", update.effective_user.language_code if update.effective_user else None
            )
            await self._reply(update.effective_message, t("command.help_hint", lang))

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log the failure with its traceback, then apologise where the update came from."""
        log.error("update failed", exc_info=context.error)
        record_platform_error(PLATFORM)
        if isinstance(update, Update) and update.effective_message:
            user = update.effective_user
            lang = pick_language("", user.language_code if user else None)
            try:
                await update.effective_message.reply_text(t("error.sorry", lang))
            except TelegramError:
                log.warning("could not send the apology either")


def clip_buttons(ledger_id: str, lang: str) -> InlineKeyboardMarkup:
    """Return the buttons under a clip: Verify, Report, Delete, Retry."""
    return InlineKeyboardMarkup([[
        InlineKeyboardButton(t("button.verify", lang), callback_data=f"v:{ledger_id}"),
        InlineKeyboardButton(t("button.report", lang), callback_data=f"r:{ledger_id}"),
        InlineKeyboardButton(t("button.delete", lang), callback_data=f"d:{ledger_id}"),
        InlineKeyboardButton(t("button.retry", lang), callback_data=f"rt:{ledger_id}"),
    ]])  # fmt: skip


def _appeal_of(msg: Message) -> tuple[str, str] | None:
    """Return (job id, code) of the Appeal button under a refusal, or None."""
    markup = msg.reply_markup
    for row in markup.inline_keyboard if markup else ():
        for button in row:
            data = button.callback_data
            match = APPEAL_DATA.match(data) if isinstance(data, str) else None
            if match:
                return match.group(1), match.group(2)
    return None


def _photo_of(msg: Message | None) -> tuple[str, int, str] | None:
    """Return (file id, size, name) of the photo or image document a message carries."""
    if msg is None:
        return None
    if msg.photo:
        best = msg.photo[-1]
        return best.file_id, best.file_size or 0, "photo.jpg"
    doc = msg.document
    if doc and ((doc.mime_type or "").startswith("image/") or _image_name(doc.file_name)):
        return doc.file_id, doc.file_size or 0, doc.file_name or "image"
    return None


def _image_name(name: str | None) -> bool:
    return bool(name) and str(name).lower().rsplit(".", 1)[-1] in {
        "jpg", "jpeg", "png", "webp", "heic", "heif", "avif"}  # fmt: skip


def _any_file_of(msg: Message) -> tuple[str, int] | None:
    """Return (file id, size) of the photo, video, animation or document a message carries."""
    photo = _photo_of(msg)
    if photo:
        return photo[0], photo[1]
    for item in (msg.video, msg.animation, msg.document, msg.video_note):
        if item is not None:
            return item.file_id, item.file_size or 0
    return None


def _with_seed(spec: ClipSpec, seed: int) -> ClipSpec:
    from dataclasses import replace

    return replace(spec, seed=seed % 2**31)


async def _edit(msg: Message | None, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    if msg is None:
        return
    try:
        await with_retries(lambda: msg.edit_text(text, reply_markup=markup))
    except BadRequest as exc:
        if "not modified" not in exc.message:
            raise


async def _delete(msg: Message) -> None:
    try:
        await with_retries(msg.delete)
    except BadRequest:
        log.info("message %s was already gone", msg.message_id)


async def _delete_by_id(bot: Any, chat_id: str, message_id: str) -> None:
    try:
        await with_retries(lambda: bot.delete_message(chat_id, int(message_id)))
    except BadRequest:
        log.info("message %s was already gone", message_id)

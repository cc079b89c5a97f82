"""Discord replies owed across restarts: where each job's answer goes, and posting it after one.

Every accepted job is recorded with a ``ReplyTarget`` (``ChatLogic.owe_reply``) until it is
answered. The answers this process is following run as tracked tasks (``ReplyTasks``): stopping
the bot cancels them at once instead of waiting for the jobs, and the records stay owed. The
next start follows each owed job (``resume_replies``) and posts its clip as a channel message
that mentions the requester, since the interaction token of the original request is gone,
through the same delivery claim as a live answer, so a clip is posted once.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord

from bots import render
from bots.discord_views import appeal_view, clip_view
from core.community import ClipMessage, PendingReply
from core.errors import JobFailed
from core.types import ChatRef

if TYPE_CHECKING:
    from bots.discord_bot import PhotoBot

log = logging.getLogger(__name__)

PLATFORM = "discord"


@dataclass(frozen=True, slots=True)
class ReplyTarget:
    """Where a job's answer goes when its interaction can no longer carry it.

    Attributes:
        lang: the requester's language.
        channel_id: the channel the request was made in.
        message_id: the message the request was about (a context menu's photo, a pressed
            clip), replied to; 0 for a slash command.
        status_message_id: the public "thinking" or progress message of the interaction,
            removed when a restarted bot answers; 0 until known.
    """

    lang: str
    channel_id: int
    message_id: int = 0
    status_message_id: int = 0

    def to_json(self) -> str:
        """Serialise for the shared store."""
        return json.dumps([self.lang, self.channel_id, self.message_id, self.status_message_id])

    @classmethod
    def from_json(cls, text: str) -> ReplyTarget:
        """Deserialise from the shared store."""
        lang, channel_id, message_id, status_id = json.loads(text)
        return cls(lang, int(channel_id), int(message_id), int(status_id))


class ReplyTasks:
    """The answers this process is following; shutting down drops them (they stay owed)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self.closing = False

    def track(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``work`` as a task that ``abandon`` cancels."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def run(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` tracked and wait for it; return quietly if shutting down drops it."""
        if self.closing:
            work.close()  # the reply stays owed: the next start answers it
            return
        task = self.track(work)
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not task.cancelled():
            task.result()  # re-raise a failure for the error handler

    async def abandon(self) -> None:
        """Stop answering (shutting down) without waiting for any job."""
        self.closing = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def resume_replies(bot: PhotoBot) -> None:
    """Once the gateway is ready, answer every job accepted before a restart, in the background."""
    await bot.wait_until_ready()
    for owed in await bot.chat.replies_owed(PLATFORM):
        bot.replies.track(resume_one(bot, owed))


async def resume_one(bot: PhotoBot, owed: PendingReply) -> None:
    """Follow one owed job and post its answer in its channel; then the reply is paid."""
    try:
        target = ReplyTarget.from_json(owed.target)
        handle = await bot.service.job(owed.job_id)
        if handle is None:  # expired (or unknown): nothing left to post
            log.info("job %s owed a reply but is gone; forgetting it", owed.job_id)
        else:
            log.info("resuming the reply to job %s after a restart", owed.job_id)
            channel = bot.get_partial_messageable(target.channel_id, guild_id=_guild_of(owed))
            await _remove_status(channel, target.status_message_id)
            await _answer(bot, owed, target, channel, handle)
        await bot.chat.reply_posted(PLATFORM, owed.job_id)
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise
    except Exception:
        log.exception("could not resume the reply to job %s", owed.job_id)


async def _answer(
    bot: PhotoBot, owed: PendingReply, target: ReplyTarget, channel: Any, handle: Any
) -> None:
    """Post the clip, or the refusal or failure, mentioning the requester."""
    requester = ChatRef(PLATFORM, owed.chat_id, owed.user_id)
    try:
        outcome = await handle.result()
    except JobFailed as exc:
        await _say(channel, owed, target, render.failure_message(exc.code, lang=target.lang))
        return
    clip = outcome.clip
    if clip is None:
        view = appeal_view(outcome.verdict, owed.job_id, int(owed.user_id), target.lang)
        text = render.outcome_message(outcome, lang=target.lang)
        await _say(channel, owed, target, text, view=view)
        return
    # Claimed before sending: if the stopped process posted it already, nothing goes out.
    if not await bot.chat.claim_delivery(requester, owed.job_id):
        return
    try:
        sent = await _say(
            channel, owed, target, outcome.note,
            file=discord.File(io.BytesIO(clip.data), f"alive-{clip.ledger_id}.mp4"),
            view=clip_view(clip.ledger_id, int(owed.user_id), owed.job_id, target.lang),
        )  # fmt: skip
    except discord.HTTPException as exc:
        await bot.chat.release_delivery(owed.job_id)
        if exc.status == 429 or exc.status >= 500:
            raise  # passing trouble: the reply stays owed for the next start
        log.warning("clip of job %s was refused (%s); not posting it", owed.job_id, exc.status)
        return
    await bot.chat.clip_sent(
        ClipMessage(clip.ledger_id, PLATFORM, str(sent.channel.id), str(sent.id), owed.user_id)
    )


async def _say(
    channel: Any, owed: PendingReply, target: ReplyTarget, text: str, **extra: Any
) -> discord.Message:
    """Send ``text`` in the channel, mentioning the requester (only them)."""
    reference = None
    if target.message_id:
        reference = discord.MessageReference(
            message_id=target.message_id, channel_id=target.channel_id, fail_if_not_exists=False
        )
    user = discord.Object(int(owed.user_id))
    message: discord.Message = await channel.send(
        f"<@{owed.user_id}> {text}",
        reference=reference,
        allowed_mentions=discord.AllowedMentions(users=[user], replied_user=False),
        **extra,
    )
    return message


async def _remove_status(channel: Any, message_id: int) -> None:
    """Delete the "thinking" message the stopped process left (it may be gone already)."""
    if not message_id:
        return
    try:
        await channel.get_partial_message(message_id).delete()
    except discord.HTTPException as exc:
        log.info("could not remove the earlier progress message (%s)", exc.status)


def _guild_of(owed: PendingReply) -> int | None:
    """Return the guild id of a reply's chat (``dm:<channel>`` chats have none)."""
    return int(owed.chat_id) if owed.chat_id.isdigit() else None

"""Discord features as a cog: /alive, /verify, /report, context menus and the clip's buttons.

Each handler translates the interaction into a plain request, calls ``AliveService``, and renders
the outcome with ``bots.render``. A job is deferred within a second, its progress edits the
original response (paced), and the clip is posted as a follow-up carrying its provenance note.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bots import render
from bots.chat import SETTING_NAMES, ChatError, decision_text, settings_text
from bots.discord_bot import AttachmentRefused, AttachmentTooLarge
from bots.discord_replies import ReplyTarget
from bots.discord_translator import english
from bots.discord_views import (
    APPEAL_REASON_MAX,
    BUTTONS,
    AppealForm,
    appeal_view,
    clip_view,
    consent_view,
    moderation_view,
    report_ids,
)
from bots.i18n import has, t
from core.community import ClipMessage, Report
from core.errors import JobFailed
from core.metrics import record_platform_error
from core.ports import JobHandle
from core.types import Camera, ChatRef, ClipSpec, JobRequest, Outcome, Photo

if TYPE_CHECKING:
    from bots.discord_bot import PhotoBot

log = logging.getLogger(__name__)

# NOTE: Discord rejects follow-ups after a 429 for retry_after seconds; three tries cover the
# bursts we have seen without hammering the API with invalid requests.
FOLLOWUP_TRIES = 3
RETRY_CACHE_SIZE = 64
VIDEO_OR_IMAGE = re.compile(r"^(image|video)/")
SECONDS_CHOICES = [1.0, 2.0, 3.0, 4.0, 6.0]


def is_image(attachment: discord.Attachment) -> bool:
    """Return whether Discord says the attachment is an image."""
    return (attachment.content_type or "").startswith("image/")


def spec_for(
    bot: PhotoBot,
    prompt: str = "",
    motion: int | None = None,
    camera: str | None = None,
    seconds: float | None = None,
) -> ClipSpec:
    """Build the clip spec from the command options and the configured defaults."""
    clip = bot.alive_settings.clip
    return ClipSpec(
        prompt=prompt.strip(),
        seconds=min(seconds or clip.seconds, clip.max_seconds),
        fps=clip.fps,
        size=clip.size,
        motion=clip.motion if motion is None else motion,
        camera=Camera(camera) if camera else Camera.AUTO,
    )


def upload_limit(interaction: discord.Interaction) -> int:
    """Return the upload limit Discord gave this interaction, else the guild's (10 MiB default)."""
    limit = getattr(interaction, "filesize_limit", 0)
    if not limit and interaction.guild is not None:
        limit = interaction.guild.filesize_limit
    return int(limit or discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES)


class PhotoCog(commands.Cog):
    """Animate, verify and report photos and clips in guild channels."""

    def __init__(self, bot: PhotoBot) -> None:
        self.bot = bot
        self.service = bot.service
        self._menus: list[app_commands.ContextMenu] = []
        self._recent: dict[str, JobRequest] = {}
        self._following: set[str] = set()  # jobs a Retry press is answering now

    async def cog_load(self) -> None:
        """Add the message context menus and the clip's persistent buttons."""
        self._menus = [
            app_commands.ContextMenu(name=menu_name("animate_photo"), callback=self.animate_menu),
            app_commands.ContextMenu(
                name=menu_name("verify_credentials"), callback=self.verify_menu
            ),
            app_commands.ContextMenu(name=menu_name("report_clip"), callback=self.report_menu),
        ]
        for menu in self._menus:
            self.bot.tree.add_command(menu)
        self.bot.add_dynamic_items(*BUTTONS)

    async def cog_unload(self) -> None:
        """Remove what cog_load added."""
        for menu in self._menus:
            self.bot.tree.remove_command(menu.name, type=menu.type)
        self.bot.remove_dynamic_items(*BUTTONS)

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Log first, then apologise plainly and privately."""
        name = interaction.command and interaction.command.name
        await self.apologise(interaction, f"command {name}", error)

    async def apologise(
        self, interaction: discord.Interaction, what: str, error: BaseException
    ) -> None:
        """The one error handler: log ``what`` failed with the traceback, then apologise privately.

        ``what`` names the handler, never user text; an error's message is ours or Discord's.
        """
        log.error("%s failed", what, exc_info=error)
        record_platform_error("discord")
        lang = await self.bot.chat.language(chat_ref(interaction), str(interaction.locale))
        await send_error(interaction, render.failure_message("internal", lang=lang))

    # --- commands ---------------------------------------------------------------------------

    # Names and descriptions are the catalogue's English; other languages are added at sync
    # by bots.discord_translator (the names here are the keys Discord sends back).
    @app_commands.command(name="alive", description=english("cmd_alive_about"))
    @app_commands.describe(
        photo=english("opt_alive_photo_about"),
        prompt=english("opt_alive_prompt_about"),
        motion=english("opt_alive_motion_about"),
        camera=english("opt_alive_camera_about"),
        seconds=english("opt_alive_seconds_about"),
    )
    @app_commands.choices(
        camera=[
            app_commands.Choice(name=english(f"choice_{c.value}"), value=c.value) for c in Camera
        ]
    )
    @app_commands.choices(
        seconds=[app_commands.Choice(name=f"{s:g} s", value=s) for s in SECONDS_CHOICES]
    )
    @app_commands.guild_only()
    async def alive(
        self,
        interaction: discord.Interaction,
        photo: discord.Attachment,
        prompt: str = "",
        motion: app_commands.Range[int, 0, 4] | None = None,
        camera: str | None = None,
        seconds: float | None = None,
    ) -> None:
        """Animate an attached photo."""
        spec = spec_for(self.bot, prompt, motion, camera, seconds)
        await self.animate(interaction, photo, spec, explicit_seconds=seconds is not None)

    @app_commands.command(name="verify", description=english("cmd_verify_about"))
    @app_commands.describe(file=english("opt_verify_file_about"))
    async def verify(self, interaction: discord.Interaction, file: discord.Attachment) -> None:
        """Verify an attached file."""
        await self.verify_attachment(interaction, file)

    @app_commands.command(name="alive-settings", description=english("cmd_alive_settings_about"))
    @app_commands.describe(
        name=english("opt_alive_settings_name_about"),
        value=english("opt_alive_settings_value_about"),
    )
    @app_commands.choices(name=[app_commands.Choice(name=n, value=n) for n in SETTING_NAMES])
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def alive_settings(
        self, interaction: discord.Interaction, name: str | None = None, value: str = ""
    ) -> None:
        """Show the settings, or change one (Manage Server only)."""
        ref = chat_ref(interaction)
        lang = await self.bot.chat.language(ref, str(interaction.locale))
        if not interaction.permissions.manage_guild:
            await send_error(interaction, t("settings.admins_only", lang))
            return
        try:
            if name is not None:
                await self.bot.chat.change_setting(ref, name, value)
        except ChatError as exc:
            await send_error(interaction, error_text(exc, lang))
            return
        current = await self.bot.chat.chat_settings(ref)
        text = settings_text(current, lang, channels=True).rsplit("\n\n", 1)[0]
        await interaction.response.send_message(text, ephemeral=True)

    @app_commands.command(name="report", description=english("cmd_report_about"))
    @app_commands.describe(
        clip=english("opt_report_clip_about"), reason=english("opt_report_reason_about")
    )
    @app_commands.guild_only()
    async def report(self, interaction: discord.Interaction, clip: str, reason: str = "") -> None:
        """Report a clip by its id."""
        await self.file_report(interaction, clip.strip().lower(), reason)

    # --- context menus (built in cog_load: they cannot be cog methods) -----------------------

    async def animate_menu(
        self, interaction: discord.Interaction, message: discord.Message
    ) -> None:
        """Animate the first photo of a message."""
        ref = chat_ref(interaction)
        lang = await self.bot.chat.language(ref, str(interaction.locale))
        photo = next((a for a in message.attachments if is_image(a)), None)
        if photo is None:
            await send_error(interaction, render.reason_message("not_an_image", lang=lang))
            return
        owner = "" if message.author.bot else str(message.author.id)
        rule = await self.bot.chat.consent_rule(ref, owner)
        if rule == "never":
            await send_error(interaction, t("consent.never", lang))
            return
        if rule == "ask":
            await self.ask_consent(interaction, message, photo, lang)
            return
        await self.animate(interaction, photo, spec_for(self.bot))

    async def verify_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Verify the first photo or clip of a message."""
        found = next(
            (a for a in message.attachments if VIDEO_OR_IMAGE.match(a.content_type or "")), None
        )
        if found is None:
            lang = await self.bot.chat.language(chat_ref(interaction), str(interaction.locale))
            await send_error(interaction, t("verify.nothing_to_check", lang))
            return
        await self.verify_attachment(interaction, found)

    async def report_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Report the clip in a message by reading the id from its buttons."""
        ours = self.bot.user is not None and message.author.id == self.bot.user.id
        ids = report_ids(message) if ours else []
        if not ids:
            lang = await self.bot.chat.language(chat_ref(interaction), str(interaction.locale))
            await send_error(interaction, t("report.not_ours", lang))
            return
        await self.file_report(interaction, ids[0], "")

    # --- the flows ----------------------------------------------------------------------------

    async def animate(
        self,
        interaction: discord.Interaction,
        photo: discord.Attachment,
        spec: ClipSpec,
        *,
        explicit_seconds: bool = False,
    ) -> None:
        """Check the request, defer, download, run the job and post the clip."""
        limits = self.bot.alive_settings.limits
        ref = chat_ref(interaction)
        lang = await self.bot.chat.language(ref, str(interaction.locale))
        if not is_image(photo):
            await send_error(interaction, render.reason_message("not_an_image", lang=lang))
            return
        if photo.size > limits.max_bytes:
            await send_error(interaction, render.reason_message("too_large", lang=lang))
            return
        try:
            chat_settings = await self.bot.chat.check_allowed(ref, str(interaction.channel_id))
        except ChatError as exc:
            await send_error(interaction, error_text(exc, lang))
            return
        if chat_settings.seconds and not explicit_seconds:
            spec = replace(spec, seconds=chat_settings.seconds)
        status_id = await defer_public(interaction)
        data = await self.fetch_photo(interaction, photo.url, lang)
        if data is not None:
            key = f"discord:{interaction.id}"
            job = JobRequest(Photo(data, photo.filename), spec, ref, key)
            await self.run_job(interaction, job, status_id)

    async def fetch_photo(
        self, interaction: discord.Interaction, url: str, lang: str
    ) -> bytes | None:
        """Download a photo after deferring; on refusal, say why and return None."""
        try:
            return await self.bot.download(url, self.bot.alive_settings.limits.max_bytes)
        except AttachmentTooLarge:
            await fail_after_defer(interaction, render.reason_message("too_large", lang=lang))
        except AttachmentRefused as exc:
            log.warning("refused to fetch an attachment from host %r", str(exc))
            await fail_after_defer(interaction, render.reason_message("not_an_image", lang=lang))
        return None

    async def ask_consent(
        self,
        interaction: discord.Interaction,
        message: discord.Message,
        photo: discord.Attachment,
        lang: str,
    ) -> None:
        """Ask the photo's owner (Allow / Decline); nothing is animated without the answer."""
        ref = chat_ref(interaction)
        try:
            await self.bot.chat.check_allowed(ref, str(interaction.channel_id))
        except ChatError as exc:
            await send_error(interaction, error_text(exc, lang))
            return
        photo_ref = json.dumps([photo.url, photo.filename, photo.size, str(interaction.channel_id)])
        request = await self.bot.chat.ask_consent(ref, str(message.author.id), photo_ref, lang)
        owner_lang = await self.bot.chat.language(ref, None)
        text = t("consent.ask", owner_lang, owner=message.author.mention,
                 requester=interaction.user.mention)  # fmt: skip
        await interaction.response.send_message(
            text,
            view=consent_view(request.id, owner_lang),
            allowed_mentions=discord.AllowedMentions(users=[message.author]),
        )
        await interaction.followup.send(t("consent.waiting", lang), ephemeral=True)

    async def answer_consent(
        self, interaction: discord.Interaction, consent_id: str, allow: bool
    ) -> None:
        """Record the owner's answer; on Allow, animate for the requester (their quota)."""
        lang = await self.bot.chat.language(chat_ref(interaction), str(interaction.locale))
        try:
            request = await self.bot.chat.answer_consent(
                consent_id, str(interaction.user.id), allow
            )
        except ChatError as exc:
            await send_error(interaction, error_text(exc, lang))
            return
        requester_lang = request.request_text or lang
        if request.state != "allowed":
            await interaction.response.edit_message(
                content=t("consent.declined", requester_lang), view=None
            )
            return
        await interaction.response.edit_message(
            content=t("consent.allowed", requester_lang), view=None
        )
        url, filename, _, _ = json.loads(request.photo_ref)
        data = await self.fetch_photo(interaction, url, requester_lang)
        if data is None:
            return
        requester = ChatRef("discord", request.chat_id, request.requester_id, str(interaction.id))
        key = f"discord:consent:{request.id}"
        job = JobRequest(Photo(data, filename), spec_for(self.bot), requester, key)
        # The question message now shows the progress (the response edited it).
        status_id = interaction.message.id if interaction.message else 0
        await self.run_job(interaction, job, status_id, about=0)

    async def submit(
        self, interaction: discord.Interaction, request: JobRequest, target: ReplyTarget
    ) -> JobHandle:
        """Count the quota (once per idempotency key) and queue the job; remember it for Retry.

        The clip is encoded to fit this interaction's upload limit (``max_bytes``), so what is
        posted is the signed file itself, never a re-encoded copy. The job is recorded as a
        reply owed to ``target`` until it is answered, so a restarted bot answers it.

        Raises:
            ChatError: the chat's rules refuse it (quota, disabled, channel).
        """
        assert request.chat is not None
        handle = await self.bot.chat.submit(
            request.chat,
            request.photo,
            request.spec,
            request.idempotency_key,
            max_bytes=upload_limit(interaction),
            reply_to=target.to_json(),
        )
        self._remember(handle.id, request)
        return handle

    async def run_job(
        self,
        interaction: discord.Interaction,
        request: JobRequest,
        status_id: int,
        about: int | None = None,
    ) -> None:
        """Submit a deferred interaction's job, then follow it to the clip or a plain error.

        Args:
            interaction: the deferred interaction.
            request: the job.
            status_id: the interaction's public progress message (0: unknown).
            about: the message the request is about (None: the interaction's own).
        """
        assert request.chat is not None
        lang = await self.bot.chat.language(request.chat, str(interaction.locale))
        target = reply_target(interaction, lang, status_id, about)
        try:
            handle = await self.submit(interaction, request, target)
        except ChatError as exc:
            await fail_after_defer(interaction, error_text(exc, lang))
            return
        await self.follow(interaction, request.chat, handle, lang)

    async def follow(
        self, interaction: discord.Interaction, requester: ChatRef, handle: JobHandle, lang: str
    ) -> None:
        """Answer the job as a tracked task, then forget the reply owed.

        Stopping the bot cancels the task rather than waiting for the job; the reply then stays
        owed and the next start posts it (``bots.discord_replies``).
        """
        await self.bot.replies.run(self._answer(interaction, requester, handle, lang))

    async def _answer(
        self, interaction: discord.Interaction, requester: ChatRef, handle: JobHandle, lang: str
    ) -> None:
        await self._follow(interaction, requester, handle, lang)
        await self.bot.chat.reply_posted("discord", handle.id)

    async def _follow(
        self, interaction: discord.Interaction, requester: ChatRef, handle: JobHandle, lang: str
    ) -> None:
        """Show paced progress, then post the clip or a plain error."""
        progress = asyncio.create_task(self._show_progress(interaction, handle, lang))
        try:
            outcome = await handle.result()
        except JobFailed as exc:
            await fail_after_defer(interaction, render.failure_message(exc.code, lang=lang))
            return
        finally:
            progress.cancel()
            self.bot.chat.job_finished(requester, handle.id)
        if outcome.clip is None:
            view = appeal_view(outcome.verdict, handle.id, int(requester.user_id), lang)
            await fail_after_defer(interaction, render.outcome_message(outcome, lang=lang), view)
            return
        await self.post_clip(interaction, outcome, handle.id, requester, lang)

    async def _show_progress(
        self, interaction: discord.Interaction, handle: Any, lang: str
    ) -> None:
        """Edit the original response as the job moves, at most once per interval."""
        interval = self.bot.options.progress_interval_s
        shown, last = "", 0.0
        async for event in handle.events():
            text = render.progress_message(event, lang=lang)
            if text == shown or time.monotonic() - last < interval:
                continue
            try:
                await interaction.edit_original_response(content=text)
            except discord.HTTPException as exc:
                log.info("progress edit failed (%s); skipping it", exc.status)
            shown, last = text, time.monotonic()

    async def post_clip(
        self,
        interaction: discord.Interaction,
        outcome: Outcome,
        job_id: str,
        requester: ChatRef,
        lang: str,
    ) -> None:
        """Post the clip as a follow-up, or in the channel once the token has expired."""
        clip = outcome.clip
        assert clip is not None
        if len(clip.data) > upload_limit(interaction):
            # The job was encoded to fit max_bytes; should the limit have shrunk since (a
            # server lost its boost), never send a truncated or re-encoded, unsigned copy.
            log.warning("clip %s is %d bytes, over the upload limit", clip.ledger_id,
                        len(clip.data))  # fmt: skip
            await fail_after_defer(interaction, render.failure_message("too_large", lang=lang))
            return
        # Claimed before sending, so a second follower of the same job never posts it again.
        if not await self.bot.chat.claim_delivery(requester, job_id):
            return
        view = clip_view(clip.ledger_id, int(requester.user_id), job_id, lang)
        filename = f"alive-{clip.ledger_id}.mp4"
        mention = f"<@{requester.user_id}>"
        expired = time.time() - interaction.created_at.timestamp() > self.bot.options.token_ttl_s
        try:
            if expired and isinstance(interaction.channel, discord.abc.Messageable):
                sent = await interaction.channel.send(
                    f"{mention} {outcome.note}",
                    file=discord.File(io.BytesIO(clip.data), filename),
                    view=view,
                    allowed_mentions=discord.AllowedMentions(
                        users=[discord.Object(int(requester.user_id))]
                    ),
                )
            else:
                sent = await send_followup(interaction, outcome.note, clip.data, filename, view)
        except discord.HTTPException:
            await self.bot.chat.release_delivery(job_id)
            raise
        await self.bot.chat.clip_sent(ClipMessage(
            clip.ledger_id, "discord", str(sent.channel.id), str(sent.id), requester.user_id
        ))  # fmt: skip
        if expired:
            return
        try:
            await interaction.delete_original_response()
        except discord.HTTPException as exc:
            log.info("could not remove the progress message (%s)", exc.status)

    async def verify_attachment(
        self, interaction: discord.Interaction, attachment: discord.Attachment
    ) -> None:
        """Download a file, verify it, and answer with the report."""
        limit = self.bot.alive_settings.limits.max_bytes
        lang = await self.bot.chat.language(chat_ref(interaction), str(interaction.locale))
        if attachment.size > limit:
            await send_error(interaction, render.reason_message("too_large", lang=lang))
            return
        await interaction.response.defer(thinking=True)
        try:
            data = await self.bot.download(attachment.url, limit)
        except (AttachmentTooLarge, AttachmentRefused):
            await fail_after_defer(interaction, render.reason_message("too_large", lang=lang))
            return
        report = await self.service.verify(data)
        await interaction.followup.send(render.verify_text(report, lang=lang))

    async def verify_ledger_clip(self, interaction: discord.Interaction, ledger_id: str) -> None:
        """Verify a stored clip of ours (the Verify button): privately, to whoever asked."""
        lang = await self.bot.chat.language(chat_ref(interaction), str(interaction.locale))
        data = await asyncio.to_thread(self.service.clips.load, ledger_id)
        if data is None:
            await send_error(interaction, t("alive.clip_gone", lang))
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        report = await self.service.verify(data)
        await interaction.followup.send(render.verify_text(report, lang=lang), ephemeral=True)

    async def file_report(
        self, interaction: discord.Interaction, ledger_id: str, reason: str
    ) -> None:
        """Record a report on a clip for the moderators."""
        ref = chat_ref(interaction)
        lang = await self.bot.chat.language(ref, str(interaction.locale))
        entry = await asyncio.to_thread(self.service.services.ledger.get, ledger_id)
        if entry is None:
            await send_error(interaction, t("report.not_ours", lang))
            return
        try:
            item = await self.bot.chat.report(ref, ledger_id, reason)
        except ChatError as exc:
            await send_error(interaction, error_text(exc, lang))
            return
        await interaction.response.send_message(t("report.ack", lang), ephemeral=True)
        mod_lang = await self.bot.chat.language(ref, None)
        text = t("report.notify", mod_lang, id=item.id, ledger_id=ledger_id,
                 chat=f"<#{interaction.channel_id}>",
                 reason=reason or t("report.no_reason", mod_lang))  # fmt: skip
        await self.notify_moderators(interaction, item, text, mod_lang)

    async def open_appeal(
        self, interaction: discord.Interaction, job_id: str, code: str, requester: int
    ) -> None:
        """Show the requester the form asking why (the Appeal button); refuse anyone else."""
        lang = await self.bot.chat.language(chat_ref(interaction), str(interaction.locale))
        if interaction.user.id != requester:
            await send_error(interaction, t("report.appeal_not_yours", lang))
            return
        await interaction.response.send_modal(AppealForm(job_id, code, requester, lang))

    async def file_appeal(
        self,
        interaction: discord.Interaction,
        job_id: str,
        code: str,
        requester: int,
        reason: str = "",
    ) -> None:
        """Queue the requester's appeal of a moderation refusal, with the decision it contests.

        Like a report, it goes to the moderators' queue (``open_reports``), where the audit
        record's decision (``decision_text``) goes with it; never the photo or the prompt. The
        reason is the requester's own words: it goes to the moderators, never to the log.
        """
        ref = chat_ref(interaction)
        lang = await self.bot.chat.language(ref, str(interaction.locale))
        if interaction.user.id != requester:  # checked at the press too; the form is theirs
            await send_error(interaction, t("report.appeal_not_yours", lang))
            return
        # One line, so it cannot pass for the decision line that follows it in the notice.
        reason = " ".join(reason.split())[:APPEAL_REASON_MAX]
        try:
            item = await self.bot.chat.appeal(ref, job_id, code, reason)
        except ChatError as exc:
            duplicate = exc.key == "report.duplicate"
            text = t("report.appeal_duplicate", lang) if duplicate else error_text(exc, lang)
            await send_error(interaction, text)
            return
        log.info("appeal #%d of job %s queued for the moderators", item.id, job_id)
        await interaction.response.send_message(t("report.appeal_ack", lang), ephemeral=True)
        mod_lang = await self.bot.chat.language(ref, None)
        text = t("report.appeal_notify", mod_lang, id=item.id, code=code,
                 chat=f"<#{interaction.channel_id}>",
                 reason=reason or t("report.no_reason", mod_lang))  # fmt: skip
        if decision := decision_text(item, mod_lang):
            text = f"{text}\n{decision}"
        await self.notify_moderators(interaction, item, text, mod_lang)

    async def notify_moderators(
        self, interaction: discord.Interaction, item: Report, text: str, lang: str
    ) -> None:
        """Post a queue item's notice, with its buttons, in the server's moderators' channel.

        Without a moderators' channel (``/alive-settings name:moderators``), or when it is not
        one of this server's, the notice goes where the report or appeal was made. A failed
        post leaves the item in the queue (``open_reports``) and is only logged.
        """
        target = (await self.bot.chat.chat_settings(chat_ref(interaction))).moderators_chat
        channel: Any = self.bot.get_channel(int(target)) if target.isdigit() else None
        if getattr(getattr(channel, "guild", None), "id", None) != interaction.guild_id:
            channel = interaction.channel  # not set, gone, or another server's
        view = moderation_view(item.id, take_down=item.kind == "report", lang=lang)
        try:
            await channel.send(text, view=view, allowed_mentions=discord.AllowedMentions.none())
        except (discord.HTTPException, AttributeError) as exc:
            log.warning("could not post the moderators' notice of #%d (%s)", item.id,
                        getattr(exc, "status", type(exc).__name__))  # fmt: skip

    async def moderate(
        self, interaction: discord.Interaction, report_id: int, take_down: bool
    ) -> None:
        """Take the reported clip down (deleting its messages) or dismiss; moderators only."""
        ref = chat_ref(interaction)
        lang = await self.bot.chat.language(ref, str(interaction.locale))
        perms = interaction.permissions
        found = await asyncio.to_thread(self.bot.chat.store.get_report, report_id)
        if not (perms.manage_messages or perms.manage_guild) or (
            found is not None and found.chat_id != ref.chat_id  # another server's item
        ):
            await send_error(interaction, t("moderation.only_moderators_discord", lang))
            return
        try:
            item, messages = await self.bot.chat.resolve(report_id, ref, take_down=take_down)
        except ChatError as exc:
            await send_error(interaction, error_text(exc, lang))
            return
        for message in messages:
            await self._delete_clip_message(message)
        mod_lang = await self.bot.chat.language(ref, None)
        who = interaction.user.mention
        done = (t("moderation.taken_down_by", mod_lang, ledger_id=item.subject, moderator=who)
                if take_down else t("moderation.dismissed_by", mod_lang, id=item.id,
                                    moderator=who))  # fmt: skip
        await interaction.response.edit_message(
            content=done, view=None, allowed_mentions=discord.AllowedMentions.none()
        )

    async def _delete_clip_message(self, message: ClipMessage) -> None:
        """Delete one recorded message of a clip that was taken down, then forget it."""
        if message.platform == "discord" and message.chat_id.isdigit():
            channel: Any = self.bot.get_partial_messageable(int(message.chat_id))
            try:
                await channel.get_partial_message(int(message.message_id)).delete()
            except discord.NotFound:
                pass  # deleted already (by its requester or a moderator's hand)
            except discord.HTTPException as exc:
                log.warning("could not delete a message of taken-down clip %s (%s)",
                            message.ledger_id, exc.status)  # fmt: skip
                return
        where = ChatRef(message.platform, message.chat_id, "", message.message_id)
        await self.bot.chat.clip_deleted(where)

    async def delete_clip(self, interaction: discord.Interaction, requester: int) -> None:
        """Delete a clip message; only the person who asked for it may."""
        ref = chat_ref(interaction)
        lang = await self.bot.chat.language(ref, str(interaction.locale))
        if interaction.user.id != requester:
            await send_error(interaction, t("alive.delete_not_yours", lang))
            return
        if interaction.message is not None:
            await interaction.message.delete()
            channel = str(interaction.message.channel.id)  # clips are recorded by channel
            where = ChatRef("discord", channel, ref.user_id, str(interaction.message.id))
            await self.bot.chat.clip_deleted(where)
        await interaction.response.send_message(t("alive.deleted", lang), ephemeral=True)

    async def retry(self, interaction: discord.Interaction, job_id: str) -> None:
        """Run a recent request again with another seed; a second press gets a private note.

        The job's key names the original request and the pressed clip message (never the
        interaction, which is new on every press), so pressing twice is one request: counted
        against the quota once, run once, posted once (the delivery claim).
        """
        ref = chat_ref(interaction)
        lang = await self.bot.chat.language(ref, str(interaction.locale))
        request = self._recent.get(job_id)
        if request is None or request.chat is None or interaction.message is None:
            await send_error(interaction, t("alive.retry_gone", lang))
            return
        if request.chat.user_id != ref.user_id:  # their photo, their consent, their quota
            await send_error(interaction, t("alive.retry_not_yours", lang))
            return
        again = replace(
            request,
            spec=replace(request.spec, seed=request.spec.seed + 1),
            chat=ref,
            idempotency_key=f"{request.idempotency_key}:retry:{interaction.message.id}",
        )
        target = reply_target(interaction, lang)
        try:
            # Before deferring: a refusal is private, with no public "thinking" flash.
            handle = await self.submit(interaction, again, target)
        except ChatError as exc:
            await send_error(interaction, error_text(exc, lang))
            return
        if handle.id in self._following:
            await send_error(interaction, t("alive.retry_pending", lang))
            return
        self._following.add(handle.id)  # checked and added with no await between
        try:
            if await self.bot.chat.delivered(handle.id):
                await send_error(interaction, t("alive.retry_pending", lang))
                return
            status_id = await defer_public(interaction)
            if status_id:  # now known: a restarted bot removes it
                target = replace(target, status_message_id=status_id)
                await self.bot.chat.owe_reply(ref, handle.id, target.to_json())
            await self.follow(interaction, ref, handle, lang)
        finally:
            self._following.discard(handle.id)

    def _remember(self, job_id: str, request: JobRequest) -> None:
        """Keep a few recent requests in memory, for Retry; photos never go to disk for it."""
        self._recent[job_id] = request
        while len(self._recent) > RETRY_CACHE_SIZE:
            self._recent.pop(next(iter(self._recent)))


def menu_name(key: str) -> app_commands.locale_str:
    """Return a context menu's English name, carrying its catalogue key for the translator."""
    return app_commands.locale_str(english(f"menu_{key}"), key=f"menu_{key}")


def error_text(exc: ChatError, lang: str) -> str:
    """Render a chat rule's refusal, in Discord's words (``<key>_discord``) where they differ."""
    key = f"{exc.key}_discord"
    return ChatError(key, **exc.params).text(lang) if has(key) else exc.text(lang)


def reply_target(
    interaction: discord.Interaction, lang: str, status_id: int = 0, about: int | None = None
) -> ReplyTarget:
    """Return where a restarted bot answers this interaction's job.

    ``about`` defaults to the message the interaction came from: a pressed clip's, or the
    target of a message context menu; a slash command has none (0).
    """
    if about is None:
        data: Any = interaction.data or {}
        message = interaction.message
        about = message.id if message is not None else int(data.get("target_id") or 0)
    return ReplyTarget(lang, interaction.channel_id or 0, about, status_id)


async def defer_public(interaction: discord.Interaction) -> int:
    """Defer with a public "thinking" message; return that message's id (0 if not told)."""
    response = await interaction.response.defer(thinking=True)
    return (response.message_id or 0) if response is not None else 0


def chat_ref(interaction: discord.Interaction) -> ChatRef:
    """Return where an interaction came from, as plain strings."""
    chat = str(interaction.guild_id or f"dm:{interaction.channel_id}")
    return ChatRef("discord", chat, str(interaction.user.id), str(interaction.id))


async def send_error(interaction: discord.Interaction, text: str) -> None:
    """Answer with a plain, ephemeral error, whether or not the interaction was answered."""
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True)
    else:
        await interaction.response.send_message(text, ephemeral=True)


async def fail_after_defer(
    interaction: discord.Interaction, text: str, view: discord.ui.View | None = None
) -> None:
    """Replace the public 'thinking' message with a private error (with ``view``'s buttons)."""
    try:
        await interaction.delete_original_response()
    except discord.HTTPException as exc:
        log.info("could not remove the deferred message (%s)", exc.status)
    extra: dict[str, Any] = {"view": view} if view is not None else {}
    await interaction.followup.send(text, ephemeral=True, **extra)


async def send_followup(
    interaction: discord.Interaction, note: str, data: bytes, filename: str, view: discord.ui.View
) -> discord.Message:
    """Send the clip as a follow-up, waiting out a 429 that discord.py did not retry itself."""
    for attempt in range(FOLLOWUP_TRIES):
        try:
            return await interaction.followup.send(
                note, file=discord.File(io.BytesIO(data), filename), view=view, wait=True
            )
        except discord.HTTPException as exc:
            if exc.status != 429 or attempt == FOLLOWUP_TRIES - 1:
                raise
            wait = _retry_after(exc)
            log.warning("follow-up rate limited; retrying in %.2f s", wait)
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")


def _retry_after(exc: discord.HTTPException) -> float:
    """Return how long Discord asked us to wait (body first, then the header)."""
    body = exc.text
    match = re.search(r'"retry_after":\s*([0-9.]+)', body) if body else None
    if match:
        return float(match.group(1))
    return float(exc.response.headers.get("Retry-After", "1"))


async def setup(bot: commands.Bot) -> None:
    """Add the cog (the extension entry point ``load_extension`` calls)."""
    from bots.discord_bot import PhotoBot

    assert isinstance(bot, PhotoBot)
    await bot.add_cog(PhotoCog(bot))

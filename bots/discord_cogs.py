"""Discord features as a cog: /alive, /verify, /report, context menus and the clip's buttons.

Each handler translates the interaction into a plain request, calls ``AliveService``, and renders
the outcome with ``bots.render``. A job is deferred within a second, its progress edits the
original response (paced), and the clip is posted as a follow-up carrying its provenance note.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bots import render
from bots.chat import SETTING_NAMES, ChatError, settings_text
from bots.discord_bot import AttachmentRefused, AttachmentTooLarge
from bots.i18n import t
from core.community import ClipMessage
from core.errors import JobFailed
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

    async def cog_load(self) -> None:
        """Add the message context menus and the clip's persistent buttons."""
        self._menus = [
            app_commands.ContextMenu(name="Animate photo", callback=self.animate_menu),
            app_commands.ContextMenu(name="Verify credentials", callback=self.verify_menu),
            app_commands.ContextMenu(name="Report clip", callback=self.report_menu),
        ]
        for menu in self._menus:
            self.bot.tree.add_command(menu)
        self.bot.add_dynamic_items(VerifyButton, ReportButton, DeleteButton, RetryButton)

    async def cog_unload(self) -> None:
        """Remove what cog_load added."""
        for menu in self._menus:
            self.bot.tree.remove_command(menu.name, type=menu.type)
        self.bot.remove_dynamic_items(VerifyButton, ReportButton, DeleteButton, RetryButton)

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Log first, then apologise plainly and privately."""
        log.error("command %s failed", interaction.command and interaction.command.name,
                  exc_info=error)  # fmt: skip
        await send_error(interaction, render.failure_message("internal"))

    # --- commands ---------------------------------------------------------------------------

    @app_commands.command(name="alive", description="Bring a photo to life as a short clip.")
    @app_commands.describe(
        photo="The photo to animate",
        prompt="What should move (optional)",
        motion="How much motion, 0 (still) to 4 (strong)",
        camera="A camera move",
        seconds="Clip length",
    )
    @app_commands.choices(
        camera=[app_commands.Choice(name=c.value.replace("_", " "), value=c.value) for c in Camera]
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

    @app_commands.command(name="verify", description="Check a photo's or clip's credentials.")
    @app_commands.describe(file="The photo or clip to check")
    async def verify(self, interaction: discord.Interaction, file: discord.Attachment) -> None:
        """Verify an attached file."""
        await self.verify_attachment(interaction, file)

    @app_commands.command(
        name="alive-settings", description="Show or change this server's settings."
    )
    @app_commands.describe(name="The setting to change", value="Its new value")
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
            await send_error(interaction, exc.text(lang))
            return
        current = await self.bot.chat.chat_settings(ref)
        text = settings_text(current, lang).rsplit("\n\n", 1)[0]
        await interaction.response.send_message(text, ephemeral=True)

    @app_commands.command(name="report", description="Report a clip this bot made.")
    @app_commands.describe(clip="The clip id from its caption", reason="What is wrong with it")
    @app_commands.guild_only()
    async def report(self, interaction: discord.Interaction, clip: str, reason: str = "") -> None:
        """Report a clip by its id."""
        await self.file_report(interaction, clip.strip().lower(), reason)

    # --- context menus (built in cog_load: they cannot be cog methods) -----------------------

    async def animate_menu(
        self, interaction: discord.Interaction, message: discord.Message
    ) -> None:
        """Animate the first photo of a message."""
        photo = next((a for a in message.attachments if is_image(a)), None)
        if photo is None:
            await send_error(interaction, render.reason_message("not_an_image"))
            return
        ref = chat_ref(interaction)
        rule = await self.bot.chat.consent_rule(ref, str(message.author.id))
        if rule != "go":
            # Asking the owner needs a consent round trip that is not built for Discord yet;
            # until then someone else's photo is refused unless the server allows it.
            lang = await self.bot.chat.language(ref, str(interaction.locale))
            await send_error(interaction, t("consent.never", lang))
            return
        await self.animate(interaction, photo, spec_for(self.bot))

    async def verify_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Verify the first photo or clip of a message."""
        found = next(
            (a for a in message.attachments if VIDEO_OR_IMAGE.match(a.content_type or "")), None
        )
        if found is None:
            await send_error(interaction, "That message has no photo or clip to check.")
            return
        await self.verify_attachment(interaction, found)

    async def report_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Report the clip in a message by reading the id from its buttons."""
        ids = [m.group(1) for m in map(ReportButton.match, _custom_ids(message)) if m]
        if not ids:
            await send_error(interaction, "That message is not a clip this bot made.")
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
        chat_settings = await self.bot.chat.chat_settings(ref)
        if not chat_settings.enabled:
            await send_error(interaction, t("alive.disabled", lang))
            return
        if chat_settings.seconds and not explicit_seconds:
            spec = replace(spec, seconds=chat_settings.seconds)
        await interaction.response.defer(thinking=True)
        try:
            data = await self.bot.download(photo.url, limits.max_bytes)
        except AttachmentTooLarge:
            await fail_after_defer(interaction, render.reason_message("too_large"))
            return
        except AttachmentRefused as exc:
            log.warning("refused to fetch an attachment from host %r", str(exc))
            await fail_after_defer(interaction, render.reason_message("not_an_image"))
            return
        request = JobRequest(Photo(data, photo.filename), spec, ref, f"discord:{interaction.id}")
        await self.run_job(interaction, request)

    async def run_job(self, interaction: discord.Interaction, request: JobRequest) -> None:
        """Count the quota, submit, show paced progress, then post the clip or a plain error."""
        assert request.chat is not None
        lang = await self.bot.chat.language(request.chat, str(interaction.locale))
        try:
            handle = await self.bot.chat.submit(
                request.chat, request.photo, request.spec, request.idempotency_key
            )
        except ChatError as exc:
            await fail_after_defer(interaction, exc.text(lang))
            return
        self._remember(handle.id, request)
        progress = asyncio.create_task(self._show_progress(interaction, handle, lang))
        try:
            outcome = await handle.result()
        except JobFailed as exc:
            await fail_after_defer(interaction, render.failure_message(exc.code, lang=lang))
            return
        finally:
            progress.cancel()
            self.bot.chat.job_finished(request.chat, handle.id)
        if outcome.clip is None:
            await fail_after_defer(interaction, render.outcome_message(outcome, lang=lang))
            return
        await self.post_clip(interaction, outcome, handle.id)

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
        self, interaction: discord.Interaction, outcome: Outcome, job_id: str
    ) -> None:
        """Post the clip as a follow-up, or in the channel once the token has expired."""
        clip = outcome.clip
        assert clip is not None
        if len(clip.data) > upload_limit(interaction):
            # NOTE: core re-encodes and re-signs for a smaller limit (see docs/discord.md);
            # never send an unsigned or truncated clip.
            log.warning(
                "clip %s is %d bytes, over the upload limit", clip.ledger_id, len(clip.data)
            )
            await fail_after_defer(interaction, "Sorry, the clip is too large for this server.")
            return
        view = clip_view(clip.ledger_id, interaction.user.id, job_id)
        filename = f"alive-{clip.ledger_id}.mp4"
        expired = time.time() - interaction.created_at.timestamp() > self.bot.options.token_ttl_s
        if expired and isinstance(interaction.channel, discord.abc.Messageable):
            sent = await interaction.channel.send(
                f"{interaction.user.mention} {outcome.note}",
                file=discord.File(io.BytesIO(clip.data), filename),
                view=view,
                allowed_mentions=discord.AllowedMentions(users=[interaction.user]),
            )
        else:
            sent = await send_followup(interaction, outcome.note, clip.data, filename, view)
        ref = chat_ref(interaction)
        await self.bot.chat.clip_sent(
            ClipMessage(clip.ledger_id, "discord", ref.chat_id, str(sent.id), ref.user_id)
        )
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
        if attachment.size > limit:
            await send_error(interaction, render.reason_message("too_large"))
            return
        await interaction.response.defer(thinking=True)
        try:
            data = await self.bot.download(attachment.url, limit)
        except (AttachmentTooLarge, AttachmentRefused):
            await fail_after_defer(interaction, render.reason_message("too_large"))
            return
        report = await self.service.verify(data)
        await interaction.followup.send(render.verify_text(report))

    async def verify_ledger_clip(self, interaction: discord.Interaction, ledger_id: str) -> None:
        """Verify a stored clip of ours (the Verify button): privately, to whoever asked."""
        data = self.service.clips.load(ledger_id)
        if data is None:
            await send_error(interaction, "That clip is no longer stored (expired or taken down).")
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        report = await self.service.verify(data)
        await interaction.followup.send(render.verify_text(report), ephemeral=True)

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
            await self.bot.chat.report(ref, ledger_id, reason)
        except ChatError as exc:
            await send_error(interaction, exc.text(lang))
            return
        await interaction.response.send_message(t("report.ack", lang), ephemeral=True)

    async def delete_clip(self, interaction: discord.Interaction, requester: int) -> None:
        """Delete a clip message; only the person who asked for it may."""
        if interaction.user.id != requester:
            await send_error(interaction, "Only the person who asked for this clip can delete it.")
            return
        if interaction.message is not None:
            await interaction.message.delete()
        await interaction.response.send_message("Deleted.", ephemeral=True)

    async def retry(self, interaction: discord.Interaction, job_id: str) -> None:
        """Run a recent request again with another seed."""
        request = self._recent.get(job_id)
        if request is None:
            await send_error(interaction, "Please send the photo again: it is no longer kept.")
            return
        await interaction.response.defer(thinking=True)
        spec = replace(request.spec, seed=request.spec.seed + 1)
        again = replace(request, spec=spec, chat=chat_ref(interaction),
                        idempotency_key=f"discord:{interaction.id}")  # fmt: skip
        await self.run_job(interaction, again)

    def _remember(self, job_id: str, request: JobRequest) -> None:
        """Keep a few recent requests in memory, for Retry; photos never go to disk for it."""
        self._recent[job_id] = request
        while len(self._recent) > RETRY_CACHE_SIZE:
            self._recent.pop(next(iter(self._recent)))


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


async def fail_after_defer(interaction: discord.Interaction, text: str) -> None:
    """Replace the public 'thinking' message with a private error."""
    try:
        await interaction.delete_original_response()
    except discord.HTTPException as exc:
        log.info("could not remove the deferred message (%s)", exc.status)
    await interaction.followup.send(text, ephemeral=True)


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


def clip_view(ledger_id: str, requester: int, job_id: str) -> discord.ui.View:
    """Return the clip's buttons: Verify, Report, Delete (requester only), Retry."""
    view = discord.ui.View(timeout=None)
    view.add_item(VerifyButton(ledger_id))
    view.add_item(ReportButton(ledger_id))
    view.add_item(DeleteButton(ledger_id, requester))
    view.add_item(RetryButton(job_id))
    return view


def _custom_ids(message: discord.Message) -> list[str]:
    ids = []
    for row in message.components:
        for child in getattr(row, "children", []):
            custom_id = getattr(child, "custom_id", None)
            if custom_id:
                ids.append(custom_id)
    return ids


def _cog(interaction: discord.Interaction) -> PhotoCog:
    cog = interaction.client.get_cog("PhotoCog")  # type: ignore[attr-defined]
    assert isinstance(cog, PhotoCog)
    return cog


class VerifyButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"alive:verify:(?P<id>[0-9a-f]{12})",
):
    """Verifies the stored clip, privately."""

    def __init__(self, ledger_id: str) -> None:
        super().__init__(discord.ui.Button(label="Verify", custom_id=f"alive:verify:{ledger_id}"))
        self.ledger_id = ledger_id

    @classmethod
    async def from_custom_id(
        cls, interaction: Any, item: Any, match: re.Match[str]
    ) -> VerifyButton:
        """Rebuild from the custom id."""
        return cls(match["id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        """Verify."""
        await _cog(interaction).verify_ledger_clip(interaction, self.ledger_id)


class ReportButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"alive:report:(?P<id>[0-9a-f]{12})",
):
    """Reports the clip to the moderators."""

    PATTERN = re.compile(r"^alive:report:([0-9a-f]{12})$")

    def __init__(self, ledger_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Report", style=discord.ButtonStyle.secondary,
                custom_id=f"alive:report:{ledger_id}",
            )
        )  # fmt: skip
        self.ledger_id = ledger_id

    @classmethod
    def match(cls, custom_id: str) -> re.Match[str] | None:
        """Return the match of a report button's custom id."""
        return cls.PATTERN.match(custom_id)

    @classmethod
    async def from_custom_id(
        cls, interaction: Any, item: Any, match: re.Match[str]
    ) -> ReportButton:
        """Rebuild from the custom id."""
        return cls(match["id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        """Report."""
        await _cog(interaction).file_report(interaction, self.ledger_id, "")


class DeleteButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"alive:delete:(?P<id>[0-9a-f]{12}):(?P<user>[0-9]+)",
):
    """Deletes the clip message; only for the requester."""

    def __init__(self, ledger_id: str, requester: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Delete", style=discord.ButtonStyle.danger,
                custom_id=f"alive:delete:{ledger_id}:{requester}",
            )
        )  # fmt: skip
        self.requester = requester

    @classmethod
    async def from_custom_id(
        cls, interaction: Any, item: Any, match: re.Match[str]
    ) -> DeleteButton:
        """Rebuild from the custom id."""
        return cls(match["id"], int(match["user"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        """Delete."""
        await _cog(interaction).delete_clip(interaction, self.requester)


class RetryButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"alive:retry:(?P<job>[0-9a-f]+)",
):
    """Runs the same photo again with another seed."""

    def __init__(self, job_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Retry", style=discord.ButtonStyle.secondary,
                custom_id=f"alive:retry:{job_id}",
            )
        )  # fmt: skip
        self.job_id = job_id

    @classmethod
    async def from_custom_id(cls, interaction: Any, item: Any, match: re.Match[str]) -> RetryButton:
        """Rebuild from the custom id."""
        return cls(match["job"])

    async def callback(self, interaction: discord.Interaction) -> None:
        """Retry."""
        await _cog(interaction).retry(interaction, self.job_id)


async def setup(bot: commands.Bot) -> None:
    """Add the cog (the extension entry point ``load_extension`` calls)."""
    from bots.discord_bot import PhotoBot

    assert isinstance(bot, PhotoBot)
    await bot.add_cog(PhotoCog(bot))

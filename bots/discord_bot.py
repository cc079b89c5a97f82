"""The Discord adapter's process side: the bot, where it connects, and how it starts and stops.

The feature code (commands, context menus, buttons) lives in ``bots.discord_cogs``; this module
owns the client, the endpoints it talks to, attachment downloads, and ``run_discord`` for the
composition root.

Pointing discord.py at another REST base: discord.py builds every REST URL, including the
interaction and webhook routes, from the class attribute ``discord.http.Route.BASE``, and dials
``DiscordWebSocket.DEFAULT_GATEWAY`` for the first gateway connection without asking
``GET /gateway/bot``. An ``HTTPClient`` subclass would not reach the webhook adapter that sends
interaction responses, so :func:`discord_endpoints` sets both class attributes for the process
(one Discord bot per process) and restores them on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Iterator
from urllib.parse import urlsplit

import aiohttp
import discord
import yarl
from discord.ext import commands
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from bots.chat import ChatLogic
from bots.discord_replies import ReplyTasks, resume_replies
from bots.discord_translator import CatalogueTranslator
from core.service import AliveService
from core.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://discord.com/api/v10"
# NOTE: Discord serves attachments from these hosts (developer docs, "Image Formatting"/CDN).
CDN_HOSTS = frozenset({"cdn.discordapp.com", "media.discordapp.net"})
DOWNLOAD_TIMEOUT_S = 30.0


class DiscordOptions(BaseSettings):
    """Discord-only settings that ``core.settings`` does not carry, read from the environment.

    Attributes:
        guild_id: ``ALIVE_DISCORD_GUILD_ID``: sync commands to this one guild (instant, for
            development) instead of globally (may take up to an hour to appear).
        sync_commands: ``ALIVE_DISCORD_SYNC_COMMANDS``: whether to sync commands at start-up.
        progress_interval_s: ``ALIVE_DISCORD_PROGRESS_INTERVAL_S``: least time between edits.
        token_ttl_s: ``ALIVE_DISCORD_TOKEN_TTL_S``: how long an interaction token is trusted.
    """

    model_config = SettingsConfigDict(env_prefix="ALIVE_DISCORD_", extra="ignore", frozen=True)

    guild_id: int | None = None
    sync_commands: bool = True
    # NOTE: Discord allows about 5 edits per 2 s per interaction webhook (X-RateLimit headers);
    # one edit per 2 s leaves room for the follow-up and never meets a 429.
    progress_interval_s: float = Field(default=2.0, ge=0.0)
    # NOTE: interaction tokens last 15 minutes (developer docs, "Receiving and Responding");
    # a minute of margin covers the upload itself.
    token_ttl_s: float = Field(default=14 * 60.0, ge=0.0)


@contextlib.contextmanager
def discord_endpoints(api_url: str, gateway_url: str | None = None) -> Iterator[None]:
    """Point discord.py's REST routes (and, if given, its first gateway) elsewhere for a while."""
    from discord.gateway import DiscordWebSocket
    from discord.http import Route

    old_base, old_gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = api_url.rstrip("/")
    if gateway_url:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url.rstrip("/") + "/")
    try:
        yield
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = old_base, old_gateway


def is_loopback(host: str) -> bool:
    """Return whether ``host`` names this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def attachment_hosts(api_url: str) -> frozenset[str]:
    """Return the hosts attachments may be fetched from for this REST base.

    A loopback base (a test server) allows only that host, so tests can never reach out.
    """
    host = urlsplit(api_url).hostname or ""
    if is_loopback(host):
        return frozenset({host})
    if api_url.rstrip("/") == DEFAULT_API_URL:
        return CDN_HOSTS
    return CDN_HOSTS | {host}


class AttachmentTooLarge(Exception):
    """An attachment is larger than the service accepts."""


class AttachmentRefused(Exception):
    """An attachment URL points somewhere the bot does not fetch from."""


class PhotoBot(commands.Bot):
    """The Discord client: slash commands, context menus and buttons for one ``AliveService``."""

    def __init__(
        self, service: AliveService, settings: Settings, options: DiscordOptions | None = None
    ) -> None:
        intents = discord.Intents.none()
        intents.guilds = True  # guild metadata (upload limit, locale); no message content needed
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, help_command=None)
        self.service = service
        self.alive_settings = settings
        self.options = options or DiscordOptions()
        self.allowed_hosts = attachment_hosts(settings.discord_api_url)
        self.chat = ChatLogic(service, service.services.community)
        self.replies = ReplyTasks()
        self._downloads: aiohttp.ClientSession | None = None

    async def setup_hook(self) -> None:
        """Open the download session, load the cogs, sync the localised commands, and resume.

        Replies owed from before a restart are answered in the background once the gateway is
        ready (``bots.discord_replies``).
        """
        if self._downloads is not None:
            raise RuntimeError("PhotoBot was set up twice")
        self._downloads = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT_S)
        )
        await self.tree.set_translator(CatalogueTranslator())
        await self.load_extension("bots.discord_cogs")
        if self.options.sync_commands:
            await self.sync_commands()
        self.replies.track(resume_replies(self))

    async def sync_commands(self) -> int:
        """Register the commands globally, or to the development guild; return how many."""
        guild = discord.Object(self.options.guild_id) if self.options.guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        synced = await self.tree.sync(guild=guild)
        log.info(
            "synced %d application commands (%s)", len(synced), (guild and "guild") or "global"
        )
        return len(synced)

    async def close(self) -> None:
        """Drop the answers in progress (they stay owed), close the client, then downloads."""
        await self.replies.abandon()
        await super().close()
        if self._downloads is not None:
            await self._downloads.close()
            self._downloads = None

    async def download(self, url: str, limit: int) -> bytes:
        """Fetch an attachment, refusing other hosts and stopping past ``limit`` bytes."""
        if urlsplit(url).hostname not in self.allowed_hosts:
            raise AttachmentRefused(urlsplit(url).hostname or "")
        assert self._downloads is not None, "download before setup_hook"
        async with self._downloads.get(url, allow_redirects=False) as response:
            response.raise_for_status()
            if (response.content_length or 0) > limit:
                raise AttachmentTooLarge()
            data = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                data += chunk
                if len(data) > limit:
                    raise AttachmentTooLarge()
        return bytes(data)


async def run_discord(service: AliveService, settings: Settings, stop: asyncio.Event) -> None:
    """Run the Discord bot until ``stop`` is set (or the connection ends for good)."""
    if settings.discord_token is None:
        raise ValueError("ALIVE_DISCORD_TOKEN is not set")
    options = DiscordOptions()
    custom = settings.discord_api_url.rstrip("/") != DEFAULT_API_URL
    with discord_endpoints(settings.discord_api_url):
        bot = PhotoBot(service, settings, options)
        async with bot:
            await bot.login(settings.discord_token.get_secret_value())
            gateway = None
            if custom:
                # Plain discord.py would dial Discord's public gateway; ask the configured base.
                _, gateway, _ = await bot.http.get_bot_gateway()
            with discord_endpoints(settings.discord_api_url, gateway):
                await _connect_until(bot, stop)


async def _connect_until(bot: PhotoBot, stop: asyncio.Event) -> None:
    """Run the gateway connection until ``stop`` is set; re-raise if it ends on its own."""
    connection = asyncio.create_task(bot.connect(reconnect=True), name="discord-gateway")
    stopping = asyncio.create_task(stop.wait(), name="discord-stop")
    try:
        await asyncio.wait({connection, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        await bot.close()
        if connection.done():
            connection.result()
        else:
            connection.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connection

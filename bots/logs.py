"""Logging for every entry point: one format, noisy HTTP clients quietened, secrets redacted."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import TextIO

# NOTE: Telegram request URLs contain the bot token, so the HTTP client loggers stay at WARNING;
# at DEBUG the platforms' update and gateway loggers print whole updates (prompts, appeal
# reasons, photos' captions), so they stay at WARNING too.
QUIET_LOGGERS = (
    "httpx", "httpcore", "telegram.ext.ExtBot", "discord.http", "aiohttp.access",
    "telegram.ext.Application", "telegram.ext.Updater", "discord.gateway", "discord.state",
)  # fmt: skip


class RedactFilter(logging.Filter):
    """Replaces every known secret in a record's final message with asterisks."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s and len(s) >= 6]

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact in place; never drops a record."""
        if not self._secrets:
            return True
        message = record.getMessage()
        text = message
        for secret in self._secrets:
            text = text.replace(secret, "********")
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            for secret in self._secrets:
                record.exc_text = record.exc_text.replace(secret, "********")
        if text != message:
            record.msg, record.args = text, None
        return True


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each record."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """Ignore: the stream is always the current stderr."""


def configure_logging(level: int, secrets: Iterable[str] = ()) -> None:
    """Log to stderr at ``level``, with secrets redacted; calling it again replaces the setup."""
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactFilter(secrets))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))

"""Logging for every entry point: one format, noisy HTTP clients quietened, secrets redacted."""

from __future__ import annotations

import logging
from collections.abc import Iterable

# NOTE: Telegram request URLs contain the bot token, so the HTTP client loggers stay at WARNING.
QUIET_LOGGERS = ("httpx", "httpcore", "telegram.ext.ExtBot", "discord.http", "aiohttp.access")


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


def configure_logging(level: int, secrets: Iterable[str] = ()) -> None:
    """Log to stderr at ``level``, with secrets redacted from every handler's output."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))

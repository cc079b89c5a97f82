"""Logging: secrets redacted, and the loggers that print tokens or user content kept quiet."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import pytest

from bots.logs import QUIET_LOGGERS, configure_logging


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    configure_logging(logging.WARNING)


def _stderr(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """Our handler writes to whatever sys.stderr is (pytest swaps it per phase, so set it here)."""
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buffer)
    return buffer


def test_a_secret_is_redacted_in_messages_and_tracebacks(monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = _stderr(monkeypatch)
    secret = "123456:AAH-very-secret-token"
    configure_logging(logging.INFO, [secret])
    log = logging.getLogger("alive.test")
    log.info("calling https://api.example/bot%s/getMe", secret)
    try:
        raise RuntimeError(f"failed with {secret}")
    except RuntimeError:
        log.exception("request failed")
    text = stderr.getvalue()
    assert secret not in text
    assert text.count("********") >= 2


def test_at_debug_the_platform_update_loggers_stay_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = _stderr(monkeypatch)
    configure_logging(logging.DEBUG)
    logging.getLogger("alive.test").debug("ours")
    for name in ("telegram.ext.Application", "discord.gateway", "telegram.ext.ExtBot"):
        assert name in QUIET_LOGGERS
        logging.getLogger(name).debug("Processing update {'text': 'a private prompt'}")
    assert "ours" in stderr.getvalue()
    assert "a private prompt" not in stderr.getvalue()

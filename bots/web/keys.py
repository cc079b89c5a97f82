"""The typed keys under which the web app keeps what its handlers share (aiohttp ``AppKey``s)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from core.service import AliveService

if TYPE_CHECKING:
    from bots.web.app import RateLimiter

SERVICE = web.AppKey("service", AliveService)
"""The opened service every handler calls; the composition root owns its lifetime."""

LIMITER: web.AppKey[RateLimiter] = web.AppKey("limiter")
"""Per-client-address token buckets for the POST routes."""

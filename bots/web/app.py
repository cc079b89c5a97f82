"""The web adapter's app factory: the page and its JSON API, with limits, errors and headers.

The composition root opens the service and passes it in; nothing here is created at import time.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from bots.render import failure_message, reason_message
from bots.web.keys import LIMITER, SERVICE
from bots.web.routes import json_error, setup_routes
from core.metrics import record_platform_error
from core.service import AliveService

log = logging.getLogger(__name__)

SECONDS_PER_MINUTE = 60.0
MAX_TRACKED_CLIENTS = 10_000  # NOTE: bounds the limiter's memory; an idle full bucket is dropped.

SECURITY_HEADERS = {
    # Everything comes from this server: no CDN, no fonts, no analytics. ``blob:`` images are
    # the local preview of the photo being chosen, which never leaves the browser until sent.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob:; media-src 'self'; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

_PLAIN_ERRORS = {
    400: "That request could not be understood.",
    404: "Not found.",
    405: "That method is not allowed here.",
    413: reason_message("too_large"),
}


def make_app(service: AliveService) -> web.Application:
    """Return the web application bound to an opened service.

    Args:
        service: the service the composition root opened; the app never closes it.

    Returns:
        An application serving the page, ``/api/*``, ``/clips/*`` and ``/healthz``.
    """
    settings = service.settings.web
    app = web.Application(
        client_max_size=settings.max_upload_bytes,
        middlewares=[error_middleware, limit_middleware],
    )
    app[SERVICE] = service
    store = service.services.store
    if service.settings.redis_url and hasattr(store, "client"):
        # Every web process behind the same Redis shares each address's bucket.
        app[LIMITER] = RedisRateLimiter(store.client, settings.requests_per_minute)
    else:
        app[LIMITER] = RateLimiter(settings.requests_per_minute)
    app.on_response_prepare.append(add_security_headers)
    setup_routes(app)
    return app


class RateLimiter:
    """Token buckets per client address, in memory: ``per_minute`` requests, refilled evenly.

    A burst of up to ``per_minute`` requests is allowed; after that one request per
    ``60 / per_minute`` seconds.
    """

    def __init__(
        self,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_TRACKED_CLIENTS,
    ) -> None:
        self.capacity = float(max(1, per_minute))
        self.rate = self.capacity / SECONDS_PER_MINUTE
        self._clock = clock
        self._max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str) -> float:
        """Spend one token of ``client``; return 0 when allowed, else the seconds to wait."""
        now = self._clock()
        tokens, last = self._buckets.pop(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[client] = (tokens, now)
        if len(self._buckets) > self._max_clients:
            self._prune(now)
        return wait

    async def acquire(self, client: str) -> float:
        """``take``, for the middleware (in memory: no waiting)."""
        return self.take(client)

    def _prune(self, now: float) -> None:
        """Forget buckets that are full again, then the least recently seen ones."""
        for client, (tokens, last) in list(self._buckets.items()):
            if tokens + (now - last) * self.rate >= self.capacity:
                del self._buckets[client]
        while len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)


# One token bucket per address in a Redis hash; Redis's clock, so every process agrees.
TAKE_TOKEN = """
local capacity, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'last')
local tokens = tonumber(bucket[1]) or capacity
local last = tonumber(bucket[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - last) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'last', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return tostring(wait)
"""


class RedisRateLimiter(RateLimiter):
    """The same token buckets in Redis (distributed mode), shared by every web process.

    A bucket is forgotten once it would be full again (its key expires), so memory follows the
    clients seen in the last minute. While Redis is unreachable, requests are let through: the
    page's availability matters more than the limit, and ``/readyz`` already says Redis is gone.
    """

    def __init__(self, client: Any, per_minute: int) -> None:
        super().__init__(per_minute)
        self._redis = client

    def take(self, client: str) -> float:
        """Spend one token of ``client`` in Redis; return 0 when allowed, else seconds to wait."""
        from redis.exceptions import RedisError

        try:
            wait = self._redis.eval(
                TAKE_TOKEN, 1, f"alive:ratelimit:{client}", self.capacity, self.rate
            )
        except RedisError:
            log.warning("rate limit: Redis unreachable; letting the request through")
            return 0.0
        return float(wait)

    async def acquire(self, client: str) -> float:
        """``take`` in a thread: the Redis client is synchronous and retries through restarts."""
        return await asyncio.to_thread(self.take, client)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every error into plain JSON ``{"error": ...}``; log unexpected ones in full."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = _PLAIN_ERRORS.get(exc.status, exc.reason)
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
        return json_error(exc.status, message, headers)
    except Exception:
        # The log gets the traceback; the client gets an apology without paths or internals.
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=True)
        record_platform_error("web")
        return json_error(500, failure_message("internal"))


@web.middleware
async def limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse oversized bodies up front and rate-limit the POST routes per client address."""
    if request.method != "POST":
        return await handler(request)
    max_bytes = request.app[SERVICE].settings.web.max_upload_bytes
    if request.content_length is not None and request.content_length > max_bytes:
        return json_error(413, _PLAIN_ERRORS[413])
    # NOTE: the peer address; behind a reverse proxy every client shares the proxy's bucket
    # unless the proxy's address is replaced by aiohttp-remotes or similar at deployment.
    wait = await request.app[LIMITER].acquire(request.remote or "unknown")
    if wait > 0:
        seconds = math.ceil(wait)
        log.info("rate limit: refused a %s to %s", request.method, request.path)
        return json_error(
            429,
            f"Too many requests. Please wait {seconds} seconds and try again.",
            {"Retry-After": str(seconds)},
        )
    return await handler(request)


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Add the security headers to every response, streamed ones and errors included."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)

"""Fixtures for the web page's tests: an opened service on the test settings, and app clients."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bots.web.app import make_app
from core.service import AliveService, open_service
from core.services import Services
from core.settings import Web

WebOpen = Callable[..., Awaitable[AliveService]]
WebClient = Callable[..., Awaitable[tuple[TestClient[Any, Any], AliveService]]]


@pytest.fixture
async def web_open(services: Services) -> AsyncIterator[WebOpen]:
    """Open the service on the real test services; keyword arguments replace services fields.

    ``web=Web(...)`` replaces the web section of the settings (upload cap, rate limit).
    """
    async with contextlib.AsyncExitStack() as stack:

        async def open_(web: Web | None = None, **changes: Any) -> AliveService:
            settings = services.settings
            if web is not None:
                settings = settings.model_copy(update={"web": web})
            changed = dataclasses.replace(services, settings=settings, **changes)
            return await stack.enter_async_context(open_service(settings, changed))

        yield open_


@pytest.fixture
async def web_client(web_open: WebOpen, aiohttp_client: Any) -> WebClient:
    """Return a factory of (test client, service) for the app on a freshly opened service."""

    async def make(**changes: Any) -> tuple[TestClient[Any, Any], AliveService]:
        service = await web_open(**changes)
        return await aiohttp_client(make_app(service)), service

    return make

"""A fake Discord on 127.0.0.1 for the adapter's tests: REST under /api/v10 and a gateway websocket.

It speaks the real wire protocol to the real discord.py client: HELLO, IDENTIFY, READY,
HEARTBEAT/ACK, RESUME/RESUMED, RECONNECT, GUILD_CREATE and INTERACTION_CREATE dispatches, each
gateway message zlib-compressed on one compressor per connection and flushed with Z_SYNC_FLUSH
(``compress=zlib-stream``). Every REST call is recorded so tests can assert what the bot sent;
a form the bot opens (callback type 9, MODAL) is kept in ``modals``, and ``modal_submit`` answers
it as a person filling it in would (an interaction of type 5, MODAL_SUBMIT).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

API = "/api/v10"
TOKEN = "fake-bot-token.not-a-secret"
# NOTE: Discord's usual HELLO interval (gateway docs); the client heartbeats at once anyway.
HEARTBEAT_INTERVAL_MS = 41250
DISCORD_EPOCH_MS = 1_420_070_400_000  # NOTE: 2015-01-01, from Discord's snowflake docs.
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
MANAGE_GUILD = 1 << 5
SEND_MESSAGES_AND_FILES = (1 << 11) | (1 << 15) | (1 << 10)
MODAL = 9  # NOTE: interaction callback type (Discord's "Interaction Response Type" table).
MODAL_SUBMIT = 5  # NOTE: interaction type, from the same docs.
ACTION_ROW, TEXT_INPUT, LABEL = 1, 4, 18  # NOTE: component types (Discord's components docs).


@dataclass
class Recorded:
    """One REST request the bot made: method, path (below /api/v10), JSON body, uploaded files."""

    method: str
    path: str
    json: Any = None
    files: dict[str, bytes] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    status: int = 200


@dataclass
class _Session:
    """A gateway session: its id, the sequence so far and every dispatch, for RESUME replay."""

    id: str
    seq: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """Answer JSON as Discord does: discord.py compares the content type without a charset."""
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


class FakeDiscord:
    """Discord's REST API and gateway, in one aiohttp app on a free loopback port."""

    def __init__(self, *, upload_limit: int = DEFAULT_UPLOAD_LIMIT) -> None:
        self._ids = itertools.count(1)
        self.app_id = self.next_id()
        self.bot_id = self.app_id
        self.guild_id = self.next_id()
        self.channel_id = self.next_id()
        self.owner_id = self.next_id()
        self.upload_limit = upload_limit
        self.requests: list[Recorded] = []
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.attachments: dict[str, tuple[bytes, str]] = {}
        self.attachment_fetches: list[str] = []
        self.modals: list[dict[str, Any]] = []  # the forms the bot opened, in order
        self.identifies = 0
        self.resumes = 0
        self.heartbeats = 0
        self.rate_limits: dict[tuple[str, str], list[bool]] = {}
        self._session: _Session | None = None
        self._ws: web.WebSocketResponse | None = None
        self._compressor: Any = None
        self._connected = asyncio.Event()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> FakeDiscord:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for path in ("/gateway", "/gateway/", "/resume-gateway", "/resume-gateway/"):
            app.router.add_get(path, self._gateway)
        app.router.add_get("/attachments/{name}", self._attachment)
        app.router.add_route("*", API + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        assert self._runner is not None
        await self._runner.cleanup()

    @property
    def base(self) -> str:
        """The server's root URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """The REST base to give the bot (``ALIVE_DISCORD_API_URL``)."""
        return self.base + API

    # --- what tests call ----------------------------------------------------------------------

    def next_id(self) -> int:
        """Return a fresh snowflake: milliseconds since Discord's epoch, then a counter."""
        millis = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return (millis << 22) | (next(self._ids) & 0xFFF)

    def rate_limit_once(self, method: str, path_prefix: str, *, via: bool = True) -> None:
        """Answer the next request matching ``method`` and ``path_prefix`` with a 429."""
        self.rate_limits[(method, path_prefix)] = [via]

    def add_attachment(self, filename: str, data: bytes, content_type: str) -> dict[str, Any]:
        """Serve ``data`` over HTTP and return the attachment payload that points at it."""
        attachment_id = self.next_id()
        name = f"{attachment_id}-{filename}"
        self.attachments[name] = (data, content_type)
        url = f"{self.base}/attachments/{name}"
        return {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
        }

    async def wait_connected(self, wait_s: float = 10.0) -> None:
        """Wait until a client has identified (or resumed) and holds the gateway."""
        await asyncio.wait_for(self._connected.wait(), wait_s)

    async def wait_for(
        self, predicate: Callable[[Recorded], bool], wait_s: float = 45.0
    ) -> Recorded:
        """Wait for a recorded REST request matching ``predicate`` and return it."""

        def found() -> Recorded | None:
            return next((r for r in self.requests if predicate(r)), None)

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: found() is not None), wait_s)
        result = found()
        assert result is not None
        return result

    def find(self, method: str, path_prefix: str) -> list[Recorded]:
        """Return the successful recorded requests with this method and path prefix."""
        return [
            r
            for r in self.requests
            if r.method == method and r.path.startswith(path_prefix) and r.status < 300
        ]

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a DISPATCH (op 0) on the current connection; it is kept for RESUME replay."""
        await self._connected.wait()
        assert self._session is not None
        self._session.seq += 1
        message = {"op": 0, "t": event, "s": self._session.seq, "d": data}
        self._session.sent.append(message)
        await self._send(message)

    async def reconnect(self) -> None:
        """Ask the client to reconnect (op 7); it must come back with RESUME."""
        self._connected.clear()
        await self._send({"op": 7, "d": None})

    async def interact(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Dispatch an INTERACTION_CREATE and return its payload."""
        await self.dispatch("INTERACTION_CREATE", payload)
        return payload

    def slash(
        self, name: str, options: list[dict[str, Any]] | None = None, **extra: Any
    ) -> dict[str, Any]:
        """Build a chat-input command interaction (type 2, command type 1)."""
        attachments = extra.pop("attachments", [])
        data: dict[str, Any] = {
            "id": str(self._command_id(name)),
            "name": name,
            "type": 1,
            "options": options or [],
        }
        if attachments:
            data["resolved"] = {"attachments": {a["id"]: a for a in attachments}}
        return self._interaction(2, data, **extra)

    def message_command(self, name: str, message: dict[str, Any], **extra: Any) -> dict[str, Any]:
        """Build a message context-menu interaction (type 2, command type 3)."""
        data = {
            "id": str(self._command_id(name)),
            "name": name,
            "type": 3,
            "target_id": message["id"],
            "resolved": {"messages": {message["id"]: message}},
        }
        return self._interaction(2, data, **extra)

    def button(self, custom_id: str, message: dict[str, Any], **extra: Any) -> dict[str, Any]:
        """Build a button press (type 3, component type 2) on ``message``."""
        data = {"custom_id": custom_id, "component_type": 2}
        return self._interaction(3, data, message=message, **extra)

    def modal_submit(
        self, modal: dict[str, Any], values: dict[str, str], **extra: Any
    ) -> dict[str, Any]:
        """Build the MODAL_SUBMIT interaction (type 5) of a form the bot opened (``modals``).

        As Discord does, the submitted components follow the form's layout: a text input in an
        action row comes back in an action row, one under a label under a label (each with the
        numeric ``id`` Discord gave it), carrying its ``value`` from ``values`` by custom id
        ("" when left empty). Pass ``message=`` when the form was opened from a message's button.
        """
        ids = itertools.count(1)

        def answer(component: dict[str, Any]) -> dict[str, Any]:
            kind, own_id = component["type"], component.get("id") or next(ids)
            if kind == ACTION_ROW:
                return {"type": kind, "id": own_id,
                        "components": [answer(c) for c in component["components"]]}  # fmt: skip
            if kind == LABEL:
                return {"type": kind, "id": own_id, "component": answer(component["component"])}
            assert kind == TEXT_INPUT, f"the fake answers only text inputs, not type {kind}"
            custom_id = component["custom_id"]
            return {"type": kind, "id": own_id, "custom_id": custom_id,
                    "value": values.get(custom_id, "")}  # fmt: skip

        data = {
            "custom_id": modal["custom_id"],
            "components": [answer(c) for c in modal["components"]],
        }
        return self._interaction(MODAL_SUBMIT, data, **extra)

    def message(
        self, attachments: list[dict[str, Any]], author_id: int | None = None, content: str = ""
    ) -> dict[str, Any]:
        """Build a channel message payload carrying ``attachments``."""
        return {
            "id": str(self.next_id()),
            "channel_id": str(self.channel_id),
            "guild_id": str(self.guild_id),
            "author": self._user(author_id or self.owner_id),
            "content": content,
            "timestamp": "2025-01-01T00:00:00+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": attachments,
            "embeds": [],
            "pinned": False,
            "type": 0,
        }

    # --- payloads ------------------------------------------------------------------------------

    def _command_id(self, name: str) -> int:
        for commands in self.commands.values():
            for command in commands:
                if command["name"] == name:
                    return int(command["id"])
        return self.next_id()

    def _user(self, user_id: int, bot: bool = False) -> dict[str, Any]:
        return {
            "id": str(user_id),
            "username": f"user{user_id % 1000}",
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
            "bot": bot,
        }

    def _interaction(
        self,
        kind: int,
        data: dict[str, Any],
        *,
        user_id: int | None = None,
        permissions: int = SEND_MESSAGES_AND_FILES,
        locale: str = "en-US",
        message: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": str(self.next_id()),
            "application_id": str(self.app_id),
            "type": kind,
            "token": "itok-" + secrets.token_urlsafe(24),
            "version": 1,
            "guild_id": str(self.guild_id),
            "channel_id": str(self.channel_id),
            "channel": {"id": str(self.channel_id), "type": 0, "guild_id": str(self.guild_id)},
            "member": {
                "user": self._user(user_id or self.owner_id),
                "roles": [],
                "joined_at": "2025-01-01T00:00:00+00:00",
                "deaf": False,
                "mute": False,
                "flags": 0,
                "permissions": str(permissions),
            },
            "data": data,
            "locale": locale,
            "guild_locale": "en-US",
            "app_permissions": str(SEND_MESSAGES_AND_FILES),
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)},
            "context": 0,
            "attachment_size_limit": self.upload_limit,
        }
        if message is not None:
            payload["message"] = message
        return payload

    def _guild(self) -> dict[str, Any]:
        gid = str(self.guild_id)
        return {
            "id": gid,
            "name": "Test guild",
            "icon": None,
            "owner_id": str(self.owner_id),
            "roles": [
                {
                    "id": gid,
                    "name": "@everyone",
                    "permissions": str(SEND_MESSAGES_AND_FILES),
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                }
            ],
            "emojis": [],
            "stickers": [],
            "features": [],
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "member_count": 2,
            "large": False,
            "unavailable": False,
            "joined_at": "2025-01-01T00:00:00+00:00",
            "channels": [
                {
                    "id": str(self.channel_id),
                    "type": 0,
                    "name": "general",
                    "position": 0,
                    "permission_overwrites": [],
                    "nsfw": False,
                    "parent_id": None,
                }
            ],
            "members": [
                {
                    "user": self._user(self.bot_id, bot=True),
                    "roles": [],
                    "joined_at": "2025-01-01T00:00:00+00:00",
                    "deaf": False,
                    "mute": False,
                    "flags": 0,
                }
            ],
            "threads": [],
            "voice_states": [],
            "presences": [],
        }

    # --- gateway -----------------------------------------------------------------------------

    async def _send(self, message: dict[str, Any]) -> None:
        assert self._ws is not None
        raw = json.dumps(message).encode()
        data = self._compressor.compress(raw) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        await self._ws.send_bytes(data)

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        if request.query.get("compress") != "zlib-stream" or request.query.get("v") != "10":
            raise web.HTTPBadRequest(text="expected v=10 and compress=zlib-stream")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws, self._compressor = ws, zlib.compressobj()
        await self._send({"op": 10, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}})
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                break
            await self._on_op(json.loads(msg.data))
        if self._ws is ws:  # the client left (not replaced by a newer connection)
            self._connected.clear()
        return ws

    async def _on_op(self, message: dict[str, Any]) -> None:
        op, data = message["op"], message.get("d")
        if op == 1:
            self.heartbeats += 1
            await self._send({"op": 11})
        elif op == 2:
            assert data["token"] == TOKEN, "IDENTIFY carried the wrong token"
            self.identifies += 1
            await self._ready()
        elif op == 6:
            await self._resume(data)

    async def _ready(self) -> None:
        self._session = _Session(secrets.token_hex(16))
        self._connected.set()
        await self.dispatch(
            "READY",
            {
                "v": 10,
                "user": self._user(self.bot_id, bot=True),
                "guilds": [{"id": str(self.guild_id), "unavailable": True}],
                "session_id": self._session.id,
                "resume_gateway_url": f"ws://127.0.0.1:{self.port}/resume-gateway",
                "shard": [0, 1],
                "application": {"id": str(self.app_id), "flags": 0},
            },
        )
        await self.dispatch("GUILD_CREATE", self._guild())

    async def _resume(self, data: dict[str, Any]) -> None:
        session = self._session
        if session is None or data["session_id"] != session.id or data["token"] != TOKEN:
            await self._send({"op": 9, "d": False})
            return
        self.resumes += 1
        for message in session.sent:
            if message["s"] > data["seq"]:
                await self._send(message)
        self._connected.set()
        await self.dispatch("RESUMED", {})

    # --- REST ----------------------------------------------------------------------------------

    async def _attachment(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.attachment_fetches.append(name)
        if name not in self.attachments:
            raise web.HTTPNotFound()
        data, content_type = self.attachments[name]
        return web.Response(body=data, content_type=content_type)

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        if path != "/gateway/bot" and request.headers.get("Authorization") not in (
            f"Bot {TOKEN}",
            None,  # webhook and interaction routes carry their token in the path
        ):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        record = Recorded(request.method, path, query=dict(request.query))
        await self._read_body(request, record)
        if any(len(data) > self.upload_limit for data in record.files.values()):
            record.status = 413  # what Discord answers for a file over the upload limit
            await self._record(record)
            return _json({"message": "Request entity too large", "code": 40005}, status=413)
        limited = self._rate_limited(record)
        if limited is not None:
            record.status = 429
            await self._record(record)
            return limited
        await self._record(record)
        return self._answer(record)

    async def _read_body(self, request: web.Request, record: Recorded) -> None:
        if request.content_type == "application/json":
            record.json = await request.json()
        elif request.content_type == "multipart/form-data":
            reader = await request.multipart()
            async for part in reader:
                body = await part.read()  # type: ignore[union-attr]
                if part.name == "payload_json":
                    record.json = json.loads(body)
                elif part.filename:
                    record.files[part.filename] = bytes(body)

    def _rate_limited(self, record: Recorded) -> web.Response | None:
        for (method, prefix), pending in self.rate_limits.items():
            if method == record.method and record.path.startswith(prefix) and pending:
                via = pending.pop()
                headers = {"Retry-After": "1", "X-RateLimit-Scope": "user"}
                if via:
                    headers["Via"] = "1.1 google"
                body = {"message": "You are being rate limited.", "retry_after": 0.2}
                return _json(body | {"global": False}, status=429, headers=headers)
        return None

    async def _record(self, record: Recorded) -> None:
        async with self._changed:
            self.requests.append(record)
            self._changed.notify_all()

    def _answer(self, r: Recorded) -> web.Response:
        parts = r.path.strip("/").split("/")
        if r.path == "/users/@me":
            return _json(self._user(self.bot_id, bot=True))
        if r.path == "/oauth2/applications/@me":
            return _json(self._application())
        if r.path == "/gateway/bot":
            return _json(
                {
                    "url": f"ws://127.0.0.1:{self.port}/gateway",
                    "shards": 1,
                    "session_start_limit": {
                        "total": 1000,
                        "remaining": 999,
                        "reset_after": 0,
                        "max_concurrency": 1,
                    },
                }
            )
        if parts[0] == "applications" and parts[-1] == "commands" and r.method == "PUT":
            return _json(self._register(parts, r.json))
        if parts[0] == "interactions":
            return _json(self._callback(parts[1], r.json))
        if parts[0] == "webhooks" and r.method == "DELETE":
            return web.Response(status=204)
        if parts[0] in ("webhooks", "channels"):
            return _json(self._message_from(r))
        return _json({"message": "404: Not Found", "code": 0}, status=404)

    def _application(self) -> dict[str, Any]:
        return {
            "id": str(self.app_id),
            "name": "alive-test",
            "description": "",
            "icon": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": self._user(self.owner_id),
            "verify_key": "00",
            "flags": 0,
        }

    def _register(self, parts: list[str], body: list[dict[str, Any]]) -> list[dict[str, Any]]:
        scope = "global" if parts[2] == "commands" else f"guild:{parts[3]}"
        registered = [
            {
                **command,
                "id": str(self.next_id()),
                "application_id": str(self.app_id),
                "version": "1",
                "description": command.get("description", ""),
            }
            for command in body
        ]
        self.commands[scope] = registered
        return registered

    def _callback(self, interaction_id: str, body: dict[str, Any]) -> dict[str, Any]:
        data = body.get("data") or {}
        if body["type"] == MODAL:  # a form opens on the user's screen; no message is made
            self.modals.append(data)
            return {"interaction": {"id": interaction_id, "type": 3}, "resource": {"type": MODAL}}
        return {
            "interaction": {
                "id": interaction_id,
                "type": 2,
                "response_message_id": str(self.next_id()),
                "response_message_loading": body["type"] == 5,
                "response_message_ephemeral": bool(data.get("flags", 0) & 64),
            },
            "resource": {"type": body["type"]},
        }

    def _message_from(self, r: Recorded) -> dict[str, Any]:
        body = r.json or {}
        attachments = [
            {
                "id": str(self.next_id()),
                "filename": name,
                "size": len(data),
                "url": f"{self.base}/attachments/{name}",
                "proxy_url": f"{self.base}/attachments/{name}",
            }
            for name, data in r.files.items()
        ]
        message = self.message(attachments, author_id=self.bot_id, content=body.get("content", ""))
        message["author"] = self._user(self.bot_id, bot=True)
        message["components"] = body.get("components", [])
        message["flags"] = body.get("flags", 0)
        return message

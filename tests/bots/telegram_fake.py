"""A fake Telegram Bot API server on 127.0.0.1: real HTTP, the Bot API's JSON shapes and errors.

Tests feed updates (user messages, button presses) into its ``getUpdates`` long poll and read
what the bot sent from ``sent``. Files live in memory and are served on the file download path.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT = {"id": 999, "is_bot": True, "first_name": "Alive", "username": "alive_test_bot",
       "can_join_groups": True, "can_read_all_group_messages": False,
       "supports_inline_queries": False}  # fmt: skip
DOWNLOAD_LIMIT = 20 * 1024 * 1024  # NOTE: the public Bot API's getFile limit


def user(user_id: int, name: str = "Ann", lang: str = "en") -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": name, "language_code": lang}


def group(chat_id: int = -1001, *, forum: bool = False) -> dict[str, Any]:
    chat: dict[str, Any] = {"id": chat_id, "type": "supergroup", "title": "Friends"}
    if forum:
        chat["is_forum"] = True
    return chat


def private(u: dict[str, Any]) -> dict[str, Any]:
    return {"id": u["id"], "type": "private", "first_name": u["first_name"]}


@dataclass
class FakeBotApi:
    """The server's state: updates to hand out, messages, files, and injected faults."""

    token: str
    updates: list[dict[str, Any]] = field(default_factory=list)
    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    messages: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    admins: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    faults: dict[str, list[tuple[int, str, int]]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    base_url: str = ""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    # What tests do

    def add_file(self, data: bytes, name: str = "photo.jpg") -> str:
        file_id = f"file{next(self._ids)}"
        self.files[file_id] = (data, f"documents/{file_id}_{name}")
        return file_id

    def fail(self, method: str, code: int, description: str, retry_after: int = 0) -> None:
        """Make the next call of ``method`` fail with this Bot API error."""
        self.faults.setdefault(method, []).append((code, description, retry_after))

    def message(
        self,
        chat: dict[str, Any],
        sender: dict[str, Any],
        *,
        text: str | None = None,
        caption: str | None = None,
        photo: bytes | None = None,
        document: tuple[bytes, str, str] | None = None,
        reply_to: dict[str, Any] | None = None,
        thread_id: int | None = None,
        photo_size: int | None = None,
    ) -> dict[str, Any]:
        """Post a user's message to the bot (as the next update) and return it."""
        msg: dict[str, Any] = {"message_id": next(self._ids), "date": int(time.time()),
                               "chat": chat, "from": sender}  # fmt: skip
        if text is not None:
            msg["text"] = text
            msg["entities"] = _command_entities(text)
        if caption is not None:
            msg["caption"] = caption
            msg["caption_entities"] = _command_entities(caption)
        if photo is not None:
            size = photo_size if photo_size is not None else len(photo)
            # The server refuses getFile by the file's real size; a test may declare a bigger one.
            file_id = self.add_file(photo, "too_big.jpg" if size > DOWNLOAD_LIMIT else "photo.jpg")
            msg["photo"] = [{"file_id": file_id, "file_unique_id": file_id, "width": 320,
                             "height": 240, "file_size": size}]  # fmt: skip
        if document is not None:
            data, name, mime = document
            file_id = self.add_file(data, name)
            msg["document"] = {"file_id": file_id, "file_unique_id": file_id, "file_name": name,
                               "mime_type": mime, "file_size": len(data)}  # fmt: skip
        if reply_to is not None:
            msg["reply_to_message"] = reply_to
        if thread_id is not None:
            msg["message_thread_id"] = thread_id
            msg["is_topic_message"] = True
        self.messages[(chat["id"], msg["message_id"])] = msg
        self._push({"message": msg})
        return msg

    def redeliver(self, message: dict[str, Any]) -> None:
        """Deliver a message the bot already got once more, as Telegram does after a restart."""
        self._push({"message": message})

    def press(self, message: dict[str, Any], sender: dict[str, Any], data: str) -> None:
        """Press an inline button under a bot message."""
        query = {"id": str(next(self._ids)), "from": sender, "chat_instance": "1",
                 "message": message, "data": data}  # fmt: skip
        self._push({"callback_query": query})

    def calls(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.sent if name == method]

    async def wait_for(
        self, method: str, count: int = 1, within: float = 20.0
    ) -> list[dict[str, Any]]:
        """Wait until the bot called ``method`` ``count`` times; return those calls."""
        deadline = time.monotonic() + within
        while len(self.calls(method)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{method} x{count} never came; sent: {self.summary()}")
            await asyncio.sleep(0.02)
        return self.calls(method)

    def summary(self) -> list[str]:
        return [f"{m}:{p.get('text') or p.get('caption') or ''}"[:90] for m, p in self.sent]

    def _push(self, update: dict[str, Any]) -> None:
        update["update_id"] = next(self._ids)
        self.updates.append(update)
        self._wake.set()

    # The server

    def app(self) -> web.Application:
        app = web.Application(client_max_size=100 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        return app

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params = await _params(request)
        self.requests.append(method)
        if self.faults.get(method):
            code, description, retry_after = self.faults[method].pop(0)
            return _error(code, description, retry_after)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return _error(404, "Not Found: method not found")
        if method != "getUpdates":
            self.sent.append((method, params))
        result = await handler(params)
        if isinstance(result, web.Response):
            return result
        return web.json_response({"ok": True, "result": result})

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        for data, path in self.files.values():
            if path == request.match_info["path"]:
                return web.Response(body=data)
        return web.Response(status=404)

    async def _m_getMe(self, p: dict[str, Any]) -> Any:
        return BOT

    async def _m_getUpdates(self, p: dict[str, Any]) -> Any:
        offset = int(p.get("offset") or 0)
        self.updates = [u for u in self.updates if u["update_id"] >= offset]
        if not self.updates:
            self._wake.clear()
            # Long poll, capped short so the bot's shutdown never waits on it.
            timeout = min(float(p.get("timeout") or 0), 0.5)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
        return self.updates[:100]

    async def _m_setMyCommands(self, p: dict[str, Any]) -> Any:
        return True

    async def _m_deleteWebhook(self, p: dict[str, Any]) -> Any:
        return True

    async def _m_answerCallbackQuery(self, p: dict[str, Any]) -> Any:
        return True

    async def _m_getChatAdministrators(self, p: dict[str, Any]) -> Any:
        return [{"status": "administrator", "user": u, "can_be_edited": False,
                 "is_anonymous": False, "can_manage_chat": True, "can_delete_messages": True,
                 "can_manage_video_chats": True, "can_restrict_members": True,
                 "can_promote_members": False, "can_change_info": True,
                 "can_invite_users": True, "can_post_stories": False, "can_edit_stories": False,
                 "can_delete_stories": False}
                for u in self.admins.get(int(p["chat_id"]), [])]  # fmt: skip

    async def _m_getFile(self, p: dict[str, Any]) -> Any:
        file_id = p["file_id"]
        if file_id not in self.files:
            return _error(400, "Bad Request: invalid file_id")
        data, path = self.files[file_id]
        if len(data) > DOWNLOAD_LIMIT or "too_big" in path:
            return _error(400, "Bad Request: file is too big")
        return {"file_id": file_id, "file_unique_id": file_id, "file_size": len(data),
                "file_path": path}  # fmt: skip

    def _bot_message(self, p: dict[str, Any], **content: Any) -> dict[str, Any]:
        chat_id = int(p["chat_id"])
        chat = next((m["chat"] for (c, _), m in self.messages.items() if c == chat_id),
                    {"id": chat_id, "type": "private", "first_name": "x"})  # fmt: skip
        msg: dict[str, Any] = {"message_id": next(self._ids), "date": int(time.time()),
                               "chat": chat, "from": BOT, **content}  # fmt: skip
        reply = p.get("reply_parameters") or {}
        if reply.get("message_id"):
            target = self.messages.get((chat_id, int(reply["message_id"])))
            if target is None and not reply.get("allow_sending_without_reply"):
                return _error(400, "Bad Request: message to be replied not found")  # type: ignore[return-value]
            if target is not None:
                msg["reply_to_message"] = target
        if p.get("message_thread_id"):
            msg["message_thread_id"] = int(p["message_thread_id"])
            msg["is_topic_message"] = True
        if p.get("reply_markup"):
            msg["reply_markup"] = p["reply_markup"]
        self.messages[(chat_id, msg["message_id"])] = msg
        return msg

    async def _m_sendMessage(self, p: dict[str, Any]) -> Any:
        return self._bot_message(p, text=p["text"])

    async def _m_sendVideo(self, p: dict[str, Any]) -> Any:
        video = p["video"]
        if not isinstance(video, bytes):
            return _error(400, "Bad Request: wrong file identifier/HTTP URL specified")
        file_id = self.add_file(video, "clip.mp4")
        p["video_bytes"] = video
        return self._bot_message(
            p,
            caption=p.get("caption", ""),
            video={"file_id": file_id, "file_unique_id": file_id, "width": int(p["width"]),
                   "height": int(p["height"]), "duration": int(p["duration"]),
                   "file_size": len(video), "mime_type": "video/mp4"},
        )  # fmt: skip

    async def _m_editMessageText(self, p: dict[str, Any]) -> Any:
        msg = self.messages.get((int(p["chat_id"]), int(p["message_id"])))
        if msg is None:
            return _error(400, "Bad Request: message to edit not found")
        if msg.get("text") == p["text"] and not p.get("reply_markup"):
            return _error(400, "Bad Request: message is not modified")
        msg["text"] = p["text"]
        if p.get("reply_markup"):
            msg["reply_markup"] = p["reply_markup"]
        return msg

    async def _m_deleteMessage(self, p: dict[str, Any]) -> Any:
        if self.messages.pop((int(p["chat_id"]), int(p["message_id"])), None) is None:
            return _error(400, "Bad Request: message to delete not found")
        return True


def _command_entities(text: str) -> list[dict[str, Any]]:
    if not text.startswith("/"):
        return []
    return [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]


def _error(code: int, description: str, retry_after: int = 0) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if retry_after:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=code)


async def _params(request: web.Request) -> dict[str, Any]:
    """Read a Bot API call's parameters: JSON, form or multipart (values JSON-encoded)."""
    if request.content_type == "application/json":
        return dict(await request.json())
    params: dict[str, Any] = {}
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        async for part in reader:
            if part.filename is not None:
                params[part.name or ""] = bytes(await part.read())
            else:
                params[part.name or ""] = _value(await part.text())
    else:
        for key, value in (await request.post()).items():
            params[key] = _value(str(value))
    # A file sent as multipart is referenced as "attach://name" in its field.
    for key, value in list(params.items()):
        if isinstance(value, str) and value.startswith("attach://"):
            params[key] = params.pop(value.removeprefix("attach://"), value)
    return params


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text

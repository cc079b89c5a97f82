"""The Telegram adapter end to end: the real PTB Application against the fake Bot API server."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr

from bots.telegram_bot import redact_record, run_telegram, upload_limit_for
from core.community import CommunityStore
from core.service import AliveService, open_service
from core.services import Services, build_services
from core.settings import Settings
from core.testing import FakeAnimator, RejectAll, remux
from core.types import ClipSpec, CredentialState, Frames, Image, Stage, Verdict
from tests.bots.telegram_fake import FakeBotApi, group, user
from tests.conftest import jpeg_bytes, scene

TOKEN = "123456:TEST-token-never-logged"
ANN, BOB, CAROL = user(1, "Ann"), user(2, "Bob"), user(3, "Carol")


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    api = FakeBotApi(TOKEN)
    runner = web.AppRunner(api.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    api.base_url = f"http://127.0.0.1:{port}"
    yield api
    await runner.cleanup()


def bot_settings(settings: Settings, fake: FakeBotApi) -> Settings:
    return settings.model_copy(
        update={
            "telegram_token": SecretStr(TOKEN),
            "telegram_api_url": fake.base_url,
            "moderation": settings.moderation.model_copy(update={"nsfw_enabled": False}),
        }
    )


@pytest.fixture
async def service(
    settings: Settings, dev_keys: Path, fake: FakeBotApi
) -> AsyncIterator[AliveService]:
    async with open_service(bot_settings(settings, fake)) as svc:
        yield svc


@contextlib.asynccontextmanager
async def running(service: AliveService, fake: FakeBotApi) -> AsyncIterator[FakeBotApi]:
    """Run the real adapter (run_telegram) against ``fake`` until the block ends."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_telegram(service, service.settings, stop))
    await fake.wait_for("setMyCommands", 2 * len(("en", "it")))
    try:
        yield fake
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@pytest.fixture(autouse=True)
def _logs(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # PTB 22 warns on RetryAfter.retry_after unless opted in to timedelta (the v23 behaviour).
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    caplog.set_level(logging.DEBUG)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    yield
    assert TOKEN not in caplog.text


@pytest.fixture
async def bot(service: AliveService, fake: FakeBotApi) -> AsyncIterator[FakeBotApi]:
    async with running(service, fake):
        yield fake


class GatedAnimator(FakeAnimator):
    """The fake animator, held at its start until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.gate = threading.Event(), threading.Event()

    def animate(self, image: Image, spec: ClipSpec, on_step: Any = None) -> Frames:
        self.entered.set()
        assert self.gate.wait(20), "the test never opened the gate"
        return super().animate(image, spec, on_step)


@dataclass
class RecordingEncoder:
    """The real encoder, noting the upload limit each job asked for."""

    inner: Any
    limits: list[int] = field(default_factory=list)

    def encode(self, frames: Frames, max_bytes: int) -> bytes:
        self.limits.append(max_bytes)
        return bytes(self.inner.encode(frames, max_bytes))


@dataclass
class Custom:
    """A bot on services with some parts replaced, and those parts."""

    fake: FakeBotApi
    service: AliveService
    services: Services
    encoder: RecordingEncoder

    def quota_used(self, user_id: int, chat_id: int = -1001) -> int:
        store = CommunityStore(self.services.db)
        return store.quota_used("telegram", str(chat_id), str(user_id), self.day())

    def day(self) -> str:
        return time.strftime("%Y-%m-%d", time.gmtime())


@pytest.fixture
def custom(
    settings: Settings, dev_keys: Path, fake: FakeBotApi
) -> Callable[..., contextlib.AbstractAsyncContextManager[Custom]]:
    """Return a factory: ``async with custom(animator=..., ...) as c`` runs a bot on them."""
    tg = bot_settings(settings, fake)

    @contextlib.asynccontextmanager
    async def make(**changes: Any) -> AsyncIterator[Custom]:
        built = dataclasses.replace(build_services(tg), **changes)
        encoder = RecordingEncoder(built.encoder)
        built = dataclasses.replace(built, encoder=encoder)
        async with open_service(tg, built) as service, running(service, fake):
            yield Custom(fake, service, built, encoder)

    return make


PHOTO = jpeg_bytes(scene())


async def clip_of(fake: FakeBotApi, count: int = 1) -> dict[str, Any]:
    calls = await fake.wait_for("sendVideo", count, within=40)
    return calls[count - 1]


def sent_message(
    fake: FakeBotApi, call: dict[str, Any], method: str = "sendVideo"
) -> dict[str, Any]:
    """Find the message the fake made for a send call (same chat, latest with that content)."""
    key = "video" if method == "sendVideo" else "text"
    for (chat_id, _), msg in reversed(list(fake.messages.items())):
        mine = chat_id == int(call["chat_id"]) and key in msg and msg["from"].get("is_bot")
        if mine and (method != "sendVideo" or msg["caption"] == call.get("caption")):
            return msg
    raise AssertionError("no such message")


async def test_photo_with_caption_gets_a_signed_clip_as_a_reply(
    bot: FakeBotApi, service: AliveService
) -> None:
    request = bot.message(group(), ANN, caption="/alive waves motion=3 camera=zoom_in", photo=PHOTO)
    call = await clip_of(bot)
    assert call["reply_parameters"]["message_id"] == request["message_id"]
    assert call["supports_streaming"] is True
    assert call["width"] > 0
    assert call["height"] > 0
    assert call["duration"] >= 1
    assert isinstance(call.get("thumbnail"), bytes)
    assert "AI-generated" in call["caption"]
    buttons = [b["callback_data"].split(":")[0] for b in call["reply_markup"]["inline_keyboard"][0]]
    assert buttons == ["v", "r", "d", "rt"]
    status = bot.calls("sendMessage")[0]
    assert "%" in status["text"] or "line" in status["text"]
    await bot.wait_for("deleteMessage")
    report = await service.verify(call["video_bytes"])
    assert report.credentials.state is CredentialState.TRUSTED
    assert report.ours
    commands = bot.calls("setMyCommands")
    assert {c.get("language_code") for c in commands} >= {None, "it"}


async def test_reply_alive_then_verify_clip_and_stripped_copy(bot: FakeBotApi) -> None:
    photo = bot.message(group(), ANN, photo=PHOTO)
    bot.message(group(), BOB, text="/alive@alive_test_bot", reply_to=photo)
    await asyncio.sleep(0.3)
    # Bob animates Ann's photo: consent first (chat default is "ask").
    ask = await bot.wait_for("sendMessage")
    consent = next(c for c in ask if c.get("reply_markup"))
    allow = consent["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    consent_msg = sent_message(bot, consent, "sendMessage")
    bot.press(consent_msg, ANN, allow)
    call = await clip_of(bot)
    clip = sent_message(bot, call)
    bot.message(group(), BOB, text="/verify", reply_to=clip)
    stripped = remux(call["video_bytes"])
    copy = bot.message(group(), BOB, document=(stripped, "copy.mp4", "video/mp4"))
    bot.message(group(), BOB, text="/verify", reply_to=copy)
    await asyncio.sleep(0.1)
    for _ in range(200):
        texts = [c["text"] for c in bot.calls("sendMessage") if "Content Credentials" in c["text"]]
        if len(texts) >= 2:
            break
        await asyncio.sleep(0.1)
    # The two /verify replies may arrive in either order: tell them apart by what they found.
    (signed,) = [t for t in texts if "valid, from a signer we trust" in t]
    (stripped_reply,) = [t for t in texts if "none found" in t]
    assert "made by this service" in signed
    assert "made by this service" in stripped_reply or "watermark" in stripped_reply


async def test_consent_owner_decides_and_others_cannot(bot: FakeBotApi) -> None:
    photo = bot.message(group(), ANN, photo=PHOTO)
    bot.message(group(), BOB, text="/alive", reply_to=photo)
    consent = None
    for _ in range(100):
        consent = next((c for c in bot.calls("sendMessage") if c.get("reply_markup")), None)
        if consent:
            break
        await asyncio.sleep(0.05)
    assert consent is not None
    assert "Ann" in consent["text"]
    assert "Bob" in consent["text"]
    msg = sent_message(bot, consent, "sendMessage")
    decline = consent["reply_markup"]["inline_keyboard"][0][1]["callback_data"]
    bot.press(msg, BOB, decline)
    answers = await bot.wait_for("answerCallbackQuery")
    assert "Only the person who posted" in answers[0]["text"]
    bot.press(msg, ANN, decline)
    edits = await bot.wait_for("editMessageText")
    assert "declined" in edits[-1]["text"]
    await asyncio.sleep(0.3)
    assert not bot.calls("sendVideo")


async def test_report_then_take_down_then_verify_says_revoked(
    bot: FakeBotApi, service: AliveService
) -> None:
    bot.admins[-1001] = [CAROL]
    bot.message(group(), ANN, caption="/alive", photo=PHOTO)
    call = await clip_of(bot)
    clip = sent_message(bot, call)
    # One update at a time: updates are handled concurrently, so two sent together could be
    # filed in either order, and which one is the duplicate is what this test checks.
    bot.message(group(), BOB, text="/report looks like a real person", reply_to=clip)
    await wait_until(lambda: acks_of(bot, "moderators will"), bot)
    bot.message(group(), BOB, text="/report again", reply_to=clip)
    await wait_until(lambda: acks_of(bot, "already reported"), bot)
    notes = [c for c in bot.calls("sendMessage") if str(c["chat_id"]) == "3"]
    assert len(notes) == 1
    assert "looks like a real person" in notes[0]["text"]
    assert len(acks_of(bot, "moderators will")) == 1
    take_down = notes[0]["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    note_msg = sent_message(bot, notes[0], "sendMessage")
    bot.press(note_msg, BOB, take_down)  # not an admin
    await wait_until(lambda: bot.calls("answerCallbackQuery"), bot)
    bot.press(note_msg, CAROL, take_down)
    await wait_until(
        lambda: any(int(d["message_id"]) == clip["message_id"] for d in bot.calls("deleteMessage")),
        bot,
    )
    answers = [a.get("text", "") for a in bot.calls("answerCallbackQuery")]
    assert "Only the chat's admins" in answers[0]
    report = await service.verify(call["video_bytes"])
    assert report.revoked


def acks_of(fake: FakeBotApi, words: str) -> list[str]:
    """The texts the bot sent that contain ``words``."""
    return [c["text"] for c in fake.calls("sendMessage") if words in c["text"]]


async def test_rate_limit_429_is_waited_out_and_the_clip_sent_once(bot: FakeBotApi) -> None:
    bot.fail("sendVideo", 429, "Too Many Requests: retry after 1", retry_after=1)
    bot.message(group(), ANN, caption="/alive", photo=PHOTO)
    await clip_of(bot)
    await asyncio.sleep(1.5)
    assert bot.requests.count("sendVideo") == 2
    assert len(bot.calls("sendVideo")) == 1


async def test_corrupt_image_document_gets_a_plain_reason(bot: FakeBotApi) -> None:
    bot.message(
        group(), ANN, caption="/alive", document=(b"\x89PNG\r\n\x1a\nbroken", "x.png", "image/png")
    )
    for _ in range(200):
        texts = [c["text"] for c in bot.calls("editMessageText")]
        if texts:
            break
        await asyncio.sleep(0.05)
    assert any("damaged" in t or "can read" in t for t in texts), texts
    assert not bot.calls("sendVideo")


async def test_file_too_big_gets_a_clear_reply(bot: FakeBotApi) -> None:
    bot.message(group(), ANN, caption="/alive", photo=PHOTO, photo_size=25 * 1024 * 1024)
    bot.message(group(), ANN, caption="/alive", document=(PHOTO, "too_big.heic", "image/heic"))
    replies = await bot.wait_for("sendMessage", 2)
    assert sum("the most I can download" in r["text"] for r in replies) == 2
    assert not bot.calls("sendVideo")


async def test_admin_sets_quota_and_the_next_clip_is_refused(bot: FakeBotApi) -> None:
    bot.admins[-1001] = [ANN]
    bot.message(group(), BOB, text="/settings quota 1")
    bot.message(group(), ANN, text="/settings quota 1")
    replies = await bot.wait_for("sendMessage", 2)
    assert any("Only the chat's admins" in r["text"] for r in replies)
    assert any("quota: 1 clips" in r["text"] for r in replies)
    bot.message(group(), ANN, caption="/alive", photo=PHOTO)
    await clip_of(bot)
    bot.message(group(), ANN, caption="/alive", photo=PHOTO)
    for _ in range(100):
        if any("daily limit" in c["text"] for c in bot.calls("sendMessage")):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(bot.summary())


async def test_replies_in_the_users_language_and_ignores_unknown_commands(bot: FakeBotApi) -> None:
    bot.message(group(), user(5, "Gio", "it"), text="/alive")
    bot.message(group(), ANN, text="/frobnicate")
    replies = await bot.wait_for("sendMessage")
    await asyncio.sleep(0.3)
    assert len(bot.calls("sendMessage")) == 1
    assert "didascalia" in replies[0]["text"]


def test_token_is_redacted_from_records_and_tracebacks() -> None:
    try:
        raise RuntimeError(f"POST https://api.telegram.org/bot{TOKEN}/getMe failed")
    except RuntimeError as exc:
        record = logging.LogRecord(
            "httpx",
            logging.ERROR,
            __file__,
            1,
            "url %s",
            (f"/bot{TOKEN}/x",),
            (type(exc), exc, exc.__traceback__),
        )
    redact_record(record, TOKEN)
    text = logging.Formatter().format(record)
    assert TOKEN not in text
    assert "<token>" in text


async def wait_until(predicate: Callable[[], Any], fake: FakeBotApi, within: float = 20) -> Any:
    deadline = time.monotonic() + within
    while not (found := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(fake.summary())
        await asyncio.sleep(0.02)
    return found


def texts(fake: FakeBotApi, method: str = "sendMessage") -> list[str]:
    return [c["text"] for c in fake.calls(method)]


async def test_cancel_stops_a_running_job_and_gives_the_quota_back(custom: Any) -> None:
    animator = GatedAnimator()
    async with custom(animator=animator) as c:
        c.fake.message(group(), ANN, caption="/alive", photo=PHOTO)
        await asyncio.to_thread(animator.entered.wait, 20)  # the job is running, held
        assert c.quota_used(ANN["id"]) == 1
        c.fake.message(group(), ANN, text="/cancel")
        await wait_until(lambda: any("Cancelled" in x for x in texts(c.fake)), c.fake)
        animator.gate.set()
        await wait_until(lambda: any("Cancelled" in x for x in texts(c.fake, "editMessageText")),
                         c.fake)  # fmt: skip
        c.fake.message(group(), ANN, text="/cancel")
        await wait_until(lambda: any("no clip waiting" in x for x in texts(c.fake)), c.fake)
        assert c.quota_used(ANN["id"]) == 0
        assert not c.fake.calls("sendVideo")


async def test_a_repeated_update_counts_once_and_gets_one_clip(custom: Any) -> None:
    async with custom() as c:
        request = c.fake.message(group(), ANN, caption="/alive", photo=PHOTO)
        c.fake.redeliver(request)
        await clip_of(c.fake)
        await asyncio.sleep(0.5)
        c.fake.redeliver(request)  # after the clip went out, too
        await asyncio.sleep(0.5)
        assert len(c.fake.calls("sendVideo")) == 1
        assert c.quota_used(ANN["id"]) == 1
        # The fake is a self-hosted Bot API server (not api.telegram.org): 2000 MB uploads.
        assert c.encoder.limits == [2000 * 1024 * 1024]


def test_upload_limit_follows_the_bot_api_server() -> None:
    assert upload_limit_for("https://api.telegram.org") == 50 * 1024 * 1024
    assert upload_limit_for("http://localhost:8081") == 2000 * 1024 * 1024


async def test_retry_pressed_twice_sends_one_new_clip(bot: FakeBotApi) -> None:
    bot.message(group(), ANN, caption="/alive", photo=PHOTO)
    clip = sent_message(bot, await clip_of(bot))
    retry = clip["reply_markup"]["inline_keyboard"][0][3]["callback_data"]
    bot.press(clip, ANN, retry)
    bot.press(clip, ANN, retry)
    await clip_of(bot, 2)
    await asyncio.sleep(0.5)
    assert len(bot.calls("sendVideo")) == 2
    answers = [a.get("text") or "" for a in await bot.wait_for("answerCallbackQuery", 2)]
    assert any("already on its way" in a for a in answers)


async def test_appeal_by_command_reaches_the_moderators_once(custom: Any) -> None:
    async with custom(photo_checks=[RejectAll()]) as c:
        c.fake.admins[-1001] = [CAROL]
        c.fake.message(group(), ANN, caption="/alive", photo=PHOTO)
        await wait_until(lambda: c.fake.calls("editMessageText"), c.fake)
        edit = c.fake.calls("editMessageText")[-1]
        refusal = c.fake.messages[(-1001, int(edit["message_id"]))]
        assert refusal["reply_markup"]["inline_keyboard"][0][0]["callback_data"].startswith("a:")
        c.fake.message(group(), ANN, text="/appeal it is a landscape", reply_to=refusal)
        c.fake.message(group(), ANN, text="/appeal")  # not a reply: explain
        await wait_until(lambda: len(texts(c.fake)) >= 4, c.fake)
        notes = [n for n in c.fake.calls("sendMessage") if str(n["chat_id"]) == "3"]
        assert len(notes) == 1
        assert "it is a landscape" in notes[0]["text"]
        assert any("your appeal is with the moderators" in x for x in texts(c.fake))
        assert any("Reply /appeal" in x for x in texts(c.fake))
        appeal = refusal["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        c.fake.press(refusal, ANN, appeal)
        answers = await c.fake.wait_for("answerCallbackQuery")
        assert "already appealed" in answers[0]["text"]


@dataclasses.dataclass
class ScoredPromptRejection:
    """A prompt check that rejects with a score, as a classifier would."""

    name: str = "prompt-scored"

    def check(self, subject: object) -> Verdict:
        return Verdict.reject("unsafe_prompt", Stage.PROMPT, self.name, {"unsafe": 0.93})


async def test_appeal_of_a_rejected_prompt_shows_the_contested_decision(custom: Any) -> None:
    async with custom(prompt_checks=[ScoredPromptRejection()]) as c:
        c.fake.admins[-1001] = [CAROL]
        c.fake.message(group(), ANN, caption="/alive a storm", photo=PHOTO)
        await wait_until(lambda: c.fake.calls("editMessageText"), c.fake)
        edit = c.fake.calls("editMessageText")[-1]
        refusal = c.fake.messages[(-1001, int(edit["message_id"]))]
        appeal = refusal["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        c.fake.press(refusal, ANN, appeal)
        await wait_until(
            lambda: [n for n in c.fake.calls("sendMessage") if str(n["chat_id"]) == "3"], c.fake
        )
        note = next(n for n in c.fake.calls("sendMessage") if str(n["chat_id"]) == "3")["text"]
        assert "Contested decision: unsafe_prompt at prompt (prompt-scored)" in note
        assert "unsafe=0.93" in note
        assert "a storm" not in note  # the prompt itself never reaches the queue

"""The Discord adapter end to end: real discord.py against the fake Discord on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

with warnings.catch_warnings():
    # discord.py imports the stdlib audioop (deprecated since 3.11) for voice, which we never use;
    # pytest runs with warnings as errors, so the import is let through here, once.
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord  # noqa: F401

from bots.chat import ChatLogic, decision_text
from bots.discord_bot import attachment_hosts, run_discord
from core.community import CommunityStore
from core.service import AliveService, open_service
from core.services import Services
from core.settings import Settings
from core.testing import RejectAll
from core.types import CredentialState
from tests.bots.discord_fake import MANAGE_GUILD, TOKEN, FakeDiscord, Recorded
from tests.conftest import jpeg_bytes

pytestmark = pytest.mark.timeout(60)


@dataclass
class Env:
    """A running bot, its fake Discord and the service behind it."""

    fake: FakeDiscord
    service: AliveService
    photo: bytes


@contextlib.asynccontextmanager
async def running_bot(
    fake: FakeDiscord, services: Services, settings: Settings
) -> AsyncIterator[AliveService]:
    """Run the real adapter (run_discord) against ``fake`` until the block ends."""
    changed = settings.model_copy(
        update={"discord_token": SecretStr(TOKEN), "discord_api_url": fake.api_url}
    )
    async with open_service(changed, dataclasses.replace(services, settings=changed)) as service:
        stop = asyncio.Event()
        task = asyncio.create_task(run_discord(service, changed, stop))
        try:
            await fake.wait_connected()
            await fake.wait_for(lambda r: r.method == "PUT" and r.path.endswith("/commands"))
            yield service
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)


@pytest.fixture
async def env(
    services: Services, settings: Settings, photo_jpeg: bytes, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Env]:
    """A bot connected to a fresh fake Discord, with fast progress pacing."""
    monkeypatch.setenv("ALIVE_DISCORD_PROGRESS_INTERVAL_S", "0.05")
    async with FakeDiscord() as fake, running_bot(fake, services, settings) as service:
        yield Env(fake, service, photo_jpeg)


def is_followup(fake: FakeDiscord, token: str) -> Any:
    """Match a successful follow-up POST on the interaction's webhook."""
    path = f"/webhooks/{fake.app_id}/{token}"
    return lambda r: r.method == "POST" and r.path == path and r.status < 300


def callback_of(fake: FakeDiscord, payload: dict[str, Any]) -> Any:
    """Match the interaction's callback (its initial response)."""
    path = f"/interactions/{payload['id']}/{payload['token']}/callback"
    return lambda r: r.method == "POST" and r.path == path


async def alive(env: Env, **options: Any) -> dict[str, Any]:
    """Send `/alive` with the test photo and return the interaction payload."""
    attachment = env.fake.add_attachment("photo.jpg", env.photo, "image/jpeg")
    opts = [{"name": "photo", "type": 11, "value": attachment["id"]}]
    opts += [{"name": k, "type": 3, "value": v} for k, v in options.items()]
    return await env.fake.interact(env.fake.slash("alive", opts, attachments=[attachment]))


async def assert_signed_clip(env: Env, followup: Recorded) -> str:
    """Check the posted clip verifies as ours with valid credentials; return its ledger id."""
    assert followup.files, "the follow-up carried no file"
    (name, data), *_ = followup.files.items()
    assert name.startswith("alive-")
    assert name.endswith(".mp4")
    report = await env.service.verify(data)
    assert report.credentials.state in (CredentialState.TRUSTED, CredentialState.VALID)
    assert report.credentials.ai_generated
    assert report.ours
    assert report.ledger is not None
    return report.ledger.id


async def test_commands_registered_globally(env: Env) -> None:
    names = {c["name"]: c["type"] for c in env.fake.commands["global"]}
    assert names == {
        "alive": 1,
        "verify": 1,
        "report": 1,
        "alive-settings": 1,
        "Animate photo": 3,
        "Verify credentials": 3,
        "Report clip": 3,
    }
    options = {o["name"] for c in env.fake.commands["global"] if c["name"] == "alive"
               for o in c["options"]}  # fmt: skip
    assert options == {"photo", "prompt", "motion", "camera", "seconds"}


async def test_alive_defers_then_posts_a_signed_clip(env: Env) -> None:
    payload = await alive(env, prompt="gentle breeze")
    followup = await env.fake.wait_for(is_followup(env.fake, payload["token"]))
    callback = await env.fake.wait_for(callback_of(env.fake, payload))
    assert callback.json["type"] == 5  # deferred, before any work
    assert env.fake.requests.index(callback) < env.fake.requests.index(followup)
    ledger_id = await assert_signed_clip(env, followup)
    assert "AI" in followup.json["content"]
    custom_ids = [c["custom_id"] for row in followup.json["components"] for c in row["components"]]
    assert custom_ids[0] == f"alive:verify:{ledger_id}"
    assert [c.split(":")[1] for c in custom_ids] == ["verify", "report", "delete", "retry"]
    assert len(env.fake.attachment_fetches) == 1  # downloaded once, from the loopback fake


async def test_progress_edits_the_original_response(env: Env) -> None:
    payload = await alive(env)
    await env.fake.wait_for(is_followup(env.fake, payload["token"]))
    original = f"/webhooks/{env.fake.app_id}/{payload['token']}/messages/@original"
    edits = env.fake.find("PATCH", original)
    assert edits, "no progress edit"
    assert all("%" in e.json["content"] or "line" in e.json["content"] for e in edits)


async def test_context_menu_animates_the_message_photo(env: Env) -> None:
    attachment = env.fake.add_attachment("cat.jpg", env.photo, "image/jpeg")
    message = env.fake.message([attachment])
    payload = await env.fake.interact(env.fake.message_command("Animate photo", message))
    followup = await env.fake.wait_for(is_followup(env.fake, payload["token"]))
    await assert_signed_clip(env, followup)


async def test_verify_reports_on_a_posted_clip(env: Env) -> None:
    first = await alive(env)
    followup = await env.fake.wait_for(is_followup(env.fake, first["token"]))
    (name, clip), *_ = followup.files.items()
    attachment = env.fake.add_attachment(name, clip, "video/mp4")
    opts = [{"name": "file", "type": 11, "value": attachment["id"]}]
    payload = await env.fake.interact(env.fake.slash("verify", opts, attachments=[attachment]))
    answer = await env.fake.wait_for(is_followup(env.fake, payload["token"]))
    assert "AI-generated: made by this service" in answer.json["content"]


@pytest.mark.parametrize("via", [True, False], ids=["retried-by-discord.py", "retried-by-us"])
async def test_rate_limited_followup_is_retried_once(
    services: Services,
    settings: Settings,
    photo_jpeg: bytes,
    monkeypatch: pytest.MonkeyPatch,
    via: bool,
) -> None:
    monkeypatch.setenv("ALIVE_DISCORD_PROGRESS_INTERVAL_S", "60")
    async with FakeDiscord() as fake, running_bot(fake, services, settings) as service:
        env = Env(fake, service, photo_jpeg)
        fake.rate_limit_once("POST", f"/webhooks/{fake.app_id}/", via=via)
        payload = await alive(env)
        await fake.wait_for(is_followup(fake, payload["token"]))
        await asyncio.sleep(0.3)
        posts = [r for r in fake.requests if r.method == "POST" and r.files]
        assert [r.status for r in posts] == [429, 200]


async def test_non_image_attachment_gets_a_plain_private_error(env: Env) -> None:
    attachment = env.fake.add_attachment("notes.txt", b"hello", "text/plain")
    opts = [{"name": "photo", "type": 11, "value": attachment["id"]}]
    payload = await env.fake.interact(env.fake.slash("alive", opts, attachments=[attachment]))
    callback = await env.fake.wait_for(callback_of(env.fake, payload))
    assert callback.json["type"] == 4
    assert callback.json["data"]["flags"] & 64  # ephemeral
    assert "not a photo" in callback.json["data"]["content"]
    assert "Traceback" not in callback.json["data"]["content"]
    assert env.fake.attachment_fetches == []  # nothing downloaded


async def test_gateway_reconnect_resumes_and_keeps_working(env: Env) -> None:
    await env.fake.reconnect()
    await env.fake.wait_connected()
    assert (env.fake.identifies, env.fake.resumes) == (1, 1)
    payload = await alive(env)
    followup = await env.fake.wait_for(is_followup(env.fake, payload["token"]))
    await assert_signed_clip(env, followup)


def test_attachments_only_from_discord_or_the_loopback_test_server() -> None:
    assert attachment_hosts("http://127.0.0.1:5000/api/v10") == {"127.0.0.1"}
    assert "cdn.discordapp.com" in attachment_hosts("https://discord.com/api/v10")
    assert "127.0.0.1" not in attachment_hosts("https://discord.com/api/v10")


async def test_settings_need_manage_server_and_disabling_stops_alive(env: Env) -> None:
    opts = [{"name": "name", "type": 3, "value": "enabled"}, {"name": "value", "type": 3,
            "value": "off"}]  # fmt: skip
    denied = await env.fake.interact(env.fake.slash("alive-settings", opts))
    answer = await env.fake.wait_for(callback_of(env.fake, denied))
    assert "admins" in answer.json["data"]["content"]
    allowed = await env.fake.interact(
        env.fake.slash("alive-settings", opts, permissions=MANAGE_GUILD)
    )
    answer = await env.fake.wait_for(callback_of(env.fake, allowed))
    assert "enabled: off" in answer.json["data"]["content"]
    payload = await alive(env)
    refused = await env.fake.wait_for(callback_of(env.fake, payload))
    assert refused.json["data"]["flags"] & 64
    assert "turned off" in refused.json["data"]["content"]
    assert "/alive-settings name:enabled value:on" in refused.json["data"]["content"]
    assert "/settings" not in refused.json["data"]["content"]  # Telegram's command


async def test_clip_after_token_expiry_goes_to_the_channel(
    services: Services,
    settings: Settings,
    photo_jpeg: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALIVE_DISCORD_TOKEN_TTL_S", "0")
    async with FakeDiscord() as fake, running_bot(fake, services, settings) as service:
        env = Env(fake, service, photo_jpeg)
        payload = await alive(env)
        channel = f"/channels/{fake.channel_id}/messages"
        posted = await fake.wait_for(lambda r: r.method == "POST" and r.path == channel)
        assert posted.json["content"].startswith(f"<@{payload['member']['user']['id']}>")
        await assert_signed_clip(env, posted)
        assert fake.find("POST", f"/webhooks/{fake.app_id}/{payload['token']}") == []


async def test_report_button_files_one_report(env: Env) -> None:
    first = await alive(env)
    followup = await env.fake.wait_for(is_followup(env.fake, first["token"]))
    ledger_id = await assert_signed_clip(env, followup)
    message = env.fake.message([], author_id=env.fake.bot_id)
    message["components"] = followup.json["components"]
    replies = []
    for _ in range(2):
        press = await env.fake.interact(env.fake.button(f"alive:report:{ledger_id}", message))
        replies.append(await env.fake.wait_for(callback_of(env.fake, press)))
    assert "moderators will look" in replies[0].json["data"]["content"]
    assert "already reported" in replies[1].json["data"]["content"]
    reports = CommunityStore(env.service.services.db).open_reports("discord")
    assert [r.subject for r in reports] == [ledger_id]


def content_of(recorded: Recorded) -> str:
    """The text of a callback (its data) or of a follow-up."""
    body = recorded.json or {}
    return str((body.get("data") or body).get("content", ""))


def clip_message(env: Env, followup: Recorded) -> dict[str, Any]:
    """The channel message a posted clip became, as a button press carries it."""
    message = env.fake.message([], author_id=env.fake.bot_id)
    message["components"] = followup.json["components"]
    return message


async def test_animating_someone_elses_photo_waits_for_the_owners_answer(env: Env) -> None:
    fake, other, stranger = env.fake, env.fake.next_id(), env.fake.next_id()
    photo = fake.message([fake.add_attachment("cat.jpg", env.photo, "image/jpeg")])  # owner's
    payload = await fake.interact(fake.message_command("Animate photo", photo, user_id=other))
    ask = await fake.wait_for(callback_of(fake, payload))
    assert ask.json["type"] == 4
    assert f"<@{fake.owner_id}>" in content_of(ask)
    buttons = [c["custom_id"] for row in ask.json["data"]["components"] for c in row["components"]]
    assert [b.rsplit(":", 1)[1] for b in buttons] == ["1", "0"]
    await asyncio.sleep(0.3)
    assert fake.attachment_fetches == []  # nothing fetched, nothing animated before the answer
    asked = fake.message([], author_id=fake.bot_id)
    asked["components"] = ask.json["data"]["components"]
    press = await fake.interact(fake.button(buttons[0], asked, user_id=stranger))
    refused = await fake.wait_for(callback_of(fake, press))
    assert "Only the person who posted" in content_of(refused)
    allow = await fake.interact(fake.button(buttons[0], asked))  # the owner
    answer = await fake.wait_for(callback_of(fake, allow))
    assert answer.json["type"] == 7  # the question is replaced by the answer
    assert "Allowed" in content_of(answer)
    followup = await fake.wait_for(is_followup(fake, allow["token"]))
    await assert_signed_clip(env, followup)
    ids = [c["custom_id"] for row in followup.json["components"] for c in row["components"]]
    delete_id = next(i for i in ids if i.startswith("alive:delete"))
    assert delete_id.endswith(f":{other}")  # the requester's clip, not the owner's


async def test_clip_is_encoded_to_fit_a_small_upload_limit_and_still_verifies(
    services: Services, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Noise compresses badly: at 4 s this clip is far over 150 kB unless encoding lowers it.
    noise = np.random.default_rng(7).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    limit = 150 * 1024
    async with FakeDiscord(upload_limit=limit) as fake, running_bot(fake, services, settings) as s:
        env = Env(fake, s, jpeg_bytes(noise, quality=95))
        attachment = fake.add_attachment("noise.jpg", env.photo, "image/jpeg")
        opts = [{"name": "photo", "type": 11, "value": attachment["id"]},
                {"name": "seconds", "type": 10, "value": 4.0}]  # fmt: skip
        payload = await fake.interact(fake.slash("alive", opts, attachments=[attachment]))
        followup = await fake.wait_for(is_followup(fake, payload["token"]), 60)
        await assert_signed_clip(env, followup)
        (data,) = followup.files.values()
        assert len(data) <= limit
        assert [r.status for r in fake.requests if r.files] == [200]  # nothing was refused


async def test_channels_setting_limits_where_photos_are_animated(env: Env) -> None:
    elsewhere = env.fake.next_id()
    opts = [{"name": "name", "type": 3, "value": "channels"},
            {"name": "value", "type": 3, "value": f"<#{elsewhere}>"}]  # fmt: skip
    change = await env.fake.interact(
        env.fake.slash("alive-settings", opts, permissions=MANAGE_GUILD)
    )
    shown = await env.fake.wait_for(callback_of(env.fake, change))
    assert f"channels: <#{elsewhere}>" in content_of(shown)
    payload = await alive(env)
    refused = await env.fake.wait_for(callback_of(env.fake, payload))
    assert refused.json["data"]["flags"] & 64
    assert f"only in <#{elsewhere}>" in content_of(refused)
    assert env.fake.attachment_fetches == []


async def test_clip_buttons_and_report_menu(env: Env) -> None:
    fake = env.fake
    first = await alive(env)
    followup = await fake.wait_for(is_followup(fake, first["token"]))
    ledger_id = await assert_signed_clip(env, followup)
    clip = clip_message(env, followup)
    ids = {c["custom_id"].split(":")[1]: c["custom_id"]
           for row in followup.json["components"] for c in row["components"]}  # fmt: skip

    verify = await fake.interact(fake.button(ids["verify"], clip, user_id=fake.next_id()))
    checked = await fake.wait_for(is_followup(fake, verify["token"]))
    assert "made by this service" in content_of(checked)
    assert checked.json["flags"] & 64  # privately, to whoever asked

    report = await fake.interact(fake.message_command("Report clip", clip))
    filed = await fake.wait_for(callback_of(fake, report))
    assert "moderators will look" in content_of(filed)
    not_ours = fake.message([], author_id=fake.next_id())
    not_ours["components"] = clip["components"]  # a copy of our buttons on someone's message
    copied = await fake.interact(fake.message_command("Report clip", not_ours))
    assert "isn't a clip I made" in content_of(await fake.wait_for(callback_of(fake, copied)))

    retry = await fake.interact(fake.button(ids["retry"], clip))
    again = await fake.wait_for(is_followup(fake, retry["token"]))
    assert await assert_signed_clip(env, again) != ledger_id

    stranger = await fake.interact(fake.button(ids["delete"], clip, user_id=fake.next_id()))
    assert "Only the person" in content_of(await fake.wait_for(callback_of(fake, stranger)))
    delete = await fake.interact(fake.button(ids["delete"], clip))
    done = await fake.wait_for(callback_of(fake, delete))
    assert "Deleted" in content_of(done)
    assert fake.find("DELETE", f"/channels/{fake.channel_id}/messages/{clip['id']}")


def by_name(commands: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The synced command called ``name``."""
    return next(c for c in commands if c["name"] == name)


async def test_synced_commands_carry_italian_names_and_descriptions(env: Env) -> None:
    put = await env.fake.wait_for(lambda r: r.method == "PUT" and r.path.endswith("/commands"))
    commands = put.json
    settings = by_name(commands, "alive-settings")
    assert settings["name_localizations"]["it"] == "alive-impostazioni"
    assert "impostazioni" in settings["description_localizations"]["it"]
    options = {o["name"]: o for o in settings["options"]}
    assert options["name"]["name_localizations"]["it"] == "nome"
    assert options["value"]["description_localizations"]["it"] == "Il nuovo valore"
    alive = by_name(commands, "alive")
    assert alive["name_localizations"] == {}  # "alive" is the same word everywhere
    assert alive["description_localizations"]["it"].startswith("Dai vita")
    camera = next(o for o in alive["options"] if o["name"] == "camera")
    zoom = next(c for c in camera["choices"] if c["value"] == "zoom_in")
    assert (zoom["name"], zoom["name_localizations"]["it"]) == ("zoom in", "zoom avanti")
    assert by_name(commands, "Animate photo")["name_localizations"]["it"] == "Anima foto"
    assert by_name(commands, "verify")["name_localizations"]["it"] == "verifica"
    for command in commands:  # only languages with a catalogue are sent
        assert set(command.get("name_localizations", {})) <= {"it"}


async def test_retry_pressed_twice_makes_one_clip_and_counts_once(env: Env) -> None:
    fake = env.fake
    first = await alive(env)
    followup = await fake.wait_for(is_followup(fake, first["token"]))
    ledger_id = await assert_signed_clip(env, followup)
    clip = clip_message(env, followup)
    ids = [c["custom_id"] for row in followup.json["components"] for c in row["components"]]
    retry_id = next(i for i in ids if i.startswith("alive:retry:"))
    presses = [await fake.interact(fake.button(retry_id, clip)) for _ in range(2)]
    answers = [await fake.wait_for(callback_of(fake, press)) for press in presses]
    deferred = [p for p, a in zip(presses, answers, strict=True) if a.json["type"] == 5]
    pending = [a for a in answers if a.json["type"] == 4]
    assert len(deferred) == len(pending) == 1
    assert pending[0].json["data"]["flags"] & 64  # privately, to the presser
    assert "already on its way" in content_of(pending[0])
    again = await fake.wait_for(is_followup(fake, deferred[0]["token"]))
    assert await assert_signed_clip(env, again) != ledger_id
    await asyncio.sleep(0.3)
    assert len([r for r in fake.requests if r.files]) == 2  # the first clip and one retry
    stranger = await fake.interact(fake.button(retry_id, clip, user_id=fake.next_id()))
    assert "Only the person" in content_of(await fake.wait_for(callback_of(fake, stranger)))
    store = CommunityStore(env.service.services.db)
    today = ChatLogic(env.service, store).today()
    used = store.quota_used("discord", str(fake.guild_id), str(fake.owner_id), today)
    assert used == 2


@pytest.fixture
async def refusing(services: Services, settings: Settings, photo_jpeg: bytes) -> AsyncIterator[Env]:
    """A bot whose moderation refuses every photo."""
    rejecting = dataclasses.replace(services, photo_checks=[RejectAll()])
    async with FakeDiscord() as fake, running_bot(fake, rejecting, settings) as service:
        yield Env(fake, service, photo_jpeg)


async def refusal(env: Env) -> tuple[str, dict[str, Any]]:
    """Send `/alive`, have it refused; return the Appeal button's custom id and its message."""
    fake = env.fake
    payload = await alive(env)
    refused = await fake.wait_for(is_followup(fake, payload["token"]))
    assert refused.json["flags"] & 64  # private
    (appeal,) = [c["custom_id"] for row in refused.json["components"]
                 for c in row["components"]]  # fmt: skip
    assert appeal.startswith("alive:appeal:")
    message = fake.message([], author_id=fake.bot_id)
    message["components"] = refused.json["components"]
    return appeal, message


async def open_form(
    env: Env, appeal: str, message: dict[str, Any], **extra: Any
) -> tuple[Recorded, dict[str, Any]]:
    """Press Appeal; return the press's callback and the form it opened."""
    press = await env.fake.interact(env.fake.button(appeal, message, **extra))
    shown = await env.fake.wait_for(callback_of(env.fake, press))
    assert shown.json["type"] == 9  # MODAL
    return shown, shown.json["data"]


async def appeal_notice(fake: FakeDiscord) -> Recorded:
    """The moderators' notice of an appeal (no moderators' channel: in the same channel)."""
    path = f"/channels/{fake.channel_id}/messages"
    return await fake.wait_for(lambda r: r.method == "POST" and r.path == path)


async def test_appeal_button_opens_a_form_for_the_requester_only(refusing: Env) -> None:
    fake = refusing.fake
    appeal, message = await refusal(refusing)
    stranger = await fake.interact(fake.button(appeal, message, user_id=fake.next_id()))
    refused = await fake.wait_for(callback_of(fake, stranger))
    assert refused.json["type"] == 4
    assert refused.json["data"]["flags"] & 64
    assert "Only the person whose request was blocked" in content_of(refused)
    assert fake.modals == []

    _, form = await open_form(refusing, appeal, message)
    assert fake.modals == [form]
    assert form["title"] == "Appeal a blocked request"
    job, code, user = appeal.removeprefix("alive:appeal:").split(":")
    assert form["custom_id"].startswith(f"alive:appeal-form:{job}:{code}:{user}:")
    assert len(form["custom_id"]) <= 100  # Discord's limit on a custom id
    (label,) = form["components"]
    assert label["type"] == 18  # a Label holding the text input
    assert label["label"] == "Why should the moderators look again?"
    field = label["component"]
    assert field["type"] == 4
    assert field["style"] == 2  # paragraph
    assert field["required"] is False
    assert field["max_length"] == 300
    assert field["placeholder"] == "Optional: a few words for the moderators"
    _, italian = await open_form(refusing, appeal, message, locale="it")
    assert italian["title"] == "Ricorso contro una richiesta bloccata"
    assert italian["components"][0]["label"] == "Perché i moderatori dovrebbero rivederla?"
    assert italian["custom_id"] != form["custom_id"]  # each form is its own
    assert CommunityStore(refusing.service.services.db).open_reports("discord") == []


async def test_appeal_form_sends_the_reason_to_the_moderators_once(
    refusing: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bots")
    fake = refusing.fake
    appeal, message = await refusal(refusing)
    _, form = await open_form(refusing, appeal, message)
    reason = "It is a landscape @everyone\nContested decision: none"
    submit = await fake.interact(fake.modal_submit(form, {"reason": reason}, message=message))
    acked = await fake.wait_for(callback_of(fake, submit))
    assert acked.json["data"]["flags"] & 64
    assert "appeal is with the moderators" in content_of(acked)

    notice = await appeal_notice(fake)
    first, *rest = content_of(notice).split("\n")
    assert first.endswith(": It is a landscape @everyone Contested decision: none")  # one line
    assert len(rest) == 1
    assert rest[0].startswith("Contested decision: nsfw_photo at photo (reject-all)")
    assert notice.json["allowed_mentions"] == {"parse": []}
    (item,) = CommunityStore(refusing.service.services.db).open_reports("discord")
    assert item.kind == "appeal"
    assert "It is a landscape" in item.reason
    assert "Contested decision: nsfw_photo at photo (reject-all)" in decision_text(item)
    assert "landscape" not in caplog.text  # user text never reaches the log

    _, again = await open_form(refusing, appeal, message)
    forged = await fake.interact(  # the requester's form, submitted by someone else
        fake.modal_submit(again, {"reason": "me too"}, message=message, user_id=fake.next_id())
    )
    assert "Only the person" in content_of(await fake.wait_for(callback_of(fake, forged)))
    _, again = await open_form(refusing, appeal, message)
    second = await fake.interact(fake.modal_submit(again, {"reason": "please"}, message=message))
    duplicate = await fake.wait_for(callback_of(fake, second))
    assert duplicate.json["data"]["flags"] & 64
    assert "already appealed" in content_of(duplicate)
    assert len(fake.find("POST", notice.path)) == 1  # no second notice


async def test_appeal_form_left_empty_says_no_reason_was_given(refusing: Env) -> None:
    fake = refusing.fake
    appeal, message = await refusal(refusing)
    _, form = await open_form(refusing, appeal, message)
    submit = await fake.interact(fake.modal_submit(form, {}, message=message))
    assert "appeal is with the moderators" in content_of(
        await fake.wait_for(callback_of(fake, submit))
    )
    assert content_of(await appeal_notice(fake)).split("\n")[0].endswith(": (no reason given)")


MANAGE_MESSAGES = 1 << 13  # NOTE: Discord's MANAGE_MESSAGES permission bit (permissions docs).


async def test_report_notifies_the_moderators_who_take_the_clip_down(env: Env) -> None:
    fake = env.fake
    channel = f"/channels/{fake.channel_id}/messages"
    opts = [{"name": "name", "type": 3, "value": "moderators"},
            {"name": "value", "type": 3, "value": f"<#{fake.channel_id}>"}]  # fmt: skip
    saved = await fake.interact(fake.slash("alive-settings", opts, permissions=MANAGE_GUILD))
    shown = await fake.wait_for(callback_of(fake, saved))
    assert f"moderators: <#{fake.channel_id}>" in content_of(shown)
    community = CommunityStore(env.service.services.db)
    assert community.chat_settings("discord", str(fake.guild_id)).moderators_chat == str(
        fake.channel_id
    )
    first = await alive(env)
    followup = await fake.wait_for(is_followup(fake, first["token"]))
    ledger_id = await assert_signed_clip(env, followup)
    (sent,) = community.clip_messages(ledger_id)
    clip = clip_message(env, followup)
    report = await fake.interact(fake.button(f"alive:report:{ledger_id}", clip))
    await fake.wait_for(callback_of(fake, report))

    posted = await fake.wait_for(lambda r: r.method == "POST" and r.path == channel)
    assert f"on clip {ledger_id}" in content_of(posted)
    take_down, dismiss = [c["custom_id"] for row in posted.json["components"]
                          for c in row["components"]]  # fmt: skip
    assert take_down.startswith("alive:moderate:")
    assert take_down.endswith(":t")
    assert dismiss == take_down[:-1] + "d"
    notice = fake.message([], author_id=fake.bot_id, content=content_of(posted))
    notice["components"] = posted.json["components"]

    stranger = await fake.interact(fake.button(take_down, notice, user_id=fake.next_id()))
    refused = await fake.wait_for(callback_of(fake, stranger))
    assert refused.json["data"]["flags"] & 64
    assert "manage messages" in content_of(refused)
    moderator = fake.next_id()
    press = await fake.interact(
        fake.button(take_down, notice, user_id=moderator, permissions=MANAGE_MESSAGES)
    )
    edited = await fake.wait_for(callback_of(fake, press))
    assert edited.json["type"] == 7  # the notice itself is edited
    assert f"taken down by <@{moderator}>" in content_of(edited)
    assert fake.find("DELETE", f"/channels/{sent.chat_id}/messages/{sent.message_id}")
    assert community.clip_messages(ledger_id) == []

    (name, data), *_ = followup.files.items()
    attachment = fake.add_attachment(name, data, "video/mp4")
    opts = [{"name": "file", "type": 11, "value": attachment["id"]}]
    verify = await fake.interact(fake.slash("verify", opts, attachments=[attachment]))
    checked = await fake.wait_for(is_followup(fake, verify["token"]))
    assert "Taken down" in content_of(checked)

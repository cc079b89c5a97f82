"""Shared chat logic: /alive parsing, settings, and the quota, consent and report rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bots.chat import ChatError, ChatLogic, apply_setting, parse_alive
from bots.i18n import pick_language, t
from core.community import ChatSettings, CommunityStore
from core.service import open_service
from core.settings import ClipDefaults, Settings
from core.types import Camera, ChatRef, Photo

CLIP = ClipDefaults()


def test_parse_prompt_and_options() -> None:
    spec = parse_alive("/alive@bot waves in the wind motion=3 camera=zoom-in seconds=4", CLIP)
    assert spec.prompt == "waves in the wind"
    assert (spec.motion, spec.camera, spec.seconds) == (3, Camera.ZOOM_IN, 4.0)
    assert (spec.fps, spec.size) == (CLIP.fps, CLIP.size)
    assert parse_alive("/alive", CLIP, seconds=2.0).seconds == 2.0


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("/alive colour=red", "alive.unknown_option"),
        ("/alive motion=9", "alive.bad_motion"),
        ("/alive seconds=60", "alive.bad_seconds"),
        ("/alive camera=sideways", "alive.bad_camera"),
        ("/alive loop=perhaps", "alive.bad_loop"),
        ("/alive motion=1 motion=2", "alive.duplicate_option"),
    ],
)
def test_parse_refuses_bad_options_in_plain_words(text: str, key: str) -> None:
    with pytest.raises(ChatError) as info:
        parse_alive(text, CLIP)
    assert info.value.key == key
    assert info.value.text("en") != info.value.text("it")


def test_settings_change_and_refuse_with_a_hint() -> None:
    changed = apply_setting(ChatSettings(), "consent", "never", CLIP)
    assert changed.consent == "never"
    assert apply_setting(changed, "language", "it", CLIP).language == "it"
    with pytest.raises(ChatError) as info:
        apply_setting(ChatSettings(), "seconds", "99", CLIP)
    assert "or default" in info.value.text()
    with pytest.raises(ChatError, match=r"settings\.unknown"):
        apply_setting(ChatSettings(), "colour", "red", CLIP)


def test_language_choice_and_fallback() -> None:
    assert pick_language("", "it-IT") == "it"
    assert pick_language("en", "it") == "en"
    assert pick_language("", "xx") == "en"
    assert t("alive.need_photo", "xx") == t("alive.need_photo")


@pytest.fixture
async def chat(settings: Settings, dev_keys: Path) -> AsyncIterator[ChatLogic]:
    async with open_service(settings, with_runner=False) as service:
        yield ChatLogic(service, CommunityStore(service.services.db), clock=lambda: 1e9)


async def test_quota_and_disabled_chat(chat: ChatLogic) -> None:
    ann = ChatRef("telegram", "-1", "ann", "5")
    await chat.change_setting(ann, "quota", "1")
    await chat.submit(ann, Photo(b"x"), parse_alive("", CLIP), "k1")
    with pytest.raises(ChatError, match="quota_user"):
        await chat.submit(ann, Photo(b"x"), parse_alive("", CLIP), "k2")
    assert await chat.queue_position(ann) == ("queued", 1)
    assert await chat.cancel(ann) == "cancelled"
    await chat.submit(ann, Photo(b"x"), parse_alive("", CLIP), "k3")  # the quota came back
    await chat.change_setting(ann, "enabled", "off")
    with pytest.raises(ChatError, match="disabled"):
        await chat.prepare(ann, "/alive")


async def test_consent_rules(chat: ChatLogic) -> None:
    bob = ChatRef("telegram", "-1", "bob", "7")
    assert await chat.consent_rule(bob, "bob") == "go"
    assert await chat.consent_rule(bob, "ann") == "ask"
    await chat.change_setting(bob, "consent", "never")
    assert await chat.consent_rule(bob, "ann") == "never"
    request = await chat.ask_consent(bob, "ann", "ref", "/alive")
    with pytest.raises(ChatError, match="not_yours"):
        await chat.answer_consent(request.id, "bob", True)
    assert (await chat.answer_consent(request.id, "ann", True)).state == "allowed"
    with pytest.raises(ChatError, match="gone"):
        await chat.answer_consent(request.id, "ann", False)


async def test_reports_are_rate_limited_and_dismissed_once(chat: ChatLogic) -> None:
    eve = ChatRef("telegram", "-1", "eve")
    items = [await chat.report(eve, f"clip{i}", "spam") for i in range(5)]
    with pytest.raises(ChatError, match="rate_limited"):
        await chat.report(eve, "clip9", "spam")
    mod = ChatRef("telegram", "-1", "mod")
    resolved, messages = await chat.resolve(items[0].id, mod, take_down=False)
    assert (resolved.state, messages) == ("dismissed", [])
    with pytest.raises(ChatError, match="already"):
        await chat.resolve(items[0].id, mod, take_down=True)


async def test_a_request_key_is_counted_once(chat: ChatLogic) -> None:
    ann = ChatRef("telegram", "-1", "ann", "5")
    first = await chat.submit(ann, Photo(b"x"), parse_alive("", CLIP), "same")
    again = await chat.submit(ann, Photo(b"x"), parse_alive("", CLIP), "same")
    assert again.id == first.id
    assert chat.store.quota_used("telegram", "-1", "ann", chat.today()) == 1
    assert await chat.claim_delivery(ann, first.id)
    assert not await chat.claim_delivery(ann, first.id)


async def test_appeals_are_capped_per_day(chat: ChatLogic) -> None:
    eve = ChatRef("telegram", "-1", "eve")
    for i in range(3):
        await chat.appeal(eve, f"job{i}", "nsfw_photo", "")
    with pytest.raises(ChatError, match="appeal_limit"):
        await chat.appeal(eve, "job9", "nsfw_photo", "")


async def test_channels_setting(chat: ChatLogic) -> None:
    mod = ChatRef("discord", "g1", "mod")
    changed = await chat.change_setting(mod, "channels", "<#12>, 34")
    assert changed.channels == ("12", "34")
    assert (await chat.chat_settings(mod)).channels == ("12", "34")
    await chat.check_allowed(mod, "12")
    await chat.check_allowed(mod, None)  # where channels do not apply (Telegram)
    with pytest.raises(ChatError, match="wrong_channel"):
        await chat.check_allowed(mod, "99")
    with pytest.raises(ChatError, match="bad_value"):
        await chat.change_setting(mod, "channels", "general")
    assert (await chat.change_setting(mod, "channels", "all")).channels == ()


@pytest.mark.parametrize(
    ("value", "stored"), [("-1001", "-1001"), ("<#42>", "42"), ("#42", "42"), ("none", "")]
)
def test_moderators_setting_takes_a_chat_id_or_a_channel_mention(value: str, stored: str) -> None:
    assert apply_setting(ChatSettings(), "moderators", value, CLIP).moderators_chat == stored

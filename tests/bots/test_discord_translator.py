"""The Discord command translator: catalogue keys, Discord's naming rules, and which languages."""

from __future__ import annotations

import warnings

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # discord.py imports audioop
    import discord
    from discord import Locale, app_commands
    from discord.app_commands import TranslationContext, locale_str
    from discord.app_commands import TranslationContextLocation as Where

from bots.discord_translator import SECTION, CatalogueTranslator, fits
from bots.i18n import catalogue, languages


async def _menu(interaction: discord.Interaction, message: discord.Message) -> None:
    """A context menu body for the tests' menu."""


async def _verify(interaction: discord.Interaction) -> None:
    """A command body for the tests' command."""


MENU = app_commands.ContextMenu(name="Animate photo", callback=_menu)


def discord_keys(lang: str) -> dict[str, str]:
    """The ``[discord]`` entries of one catalogue, without the section."""
    prefix = f"{SECTION}."
    return {k[len(prefix) :]: v for k, v in catalogue(lang).items() if k.startswith(prefix)}


@pytest.mark.parametrize("lang", languages())
def test_every_catalogue_name_obeys_discords_rules(lang: str) -> None:
    names: dict[str, set[str]] = {}
    for key, text in discord_keys(lang).items():
        if key.endswith("_about") or key.startswith("choice_"):
            assert 0 < len(text) <= 100, key
        elif key.startswith("menu_"):
            assert 0 < len(text) <= 32, key
        else:  # slash command and option names: lower case, no spaces, at most 32 characters
            assert text == text.lower(), key
            assert " " not in text, key
            assert 0 < len(text) <= 32, key
        if key.startswith("opt_") and not key.endswith("_about"):
            command = next(c for c in discord_keys("en") if key.startswith(f"opt_{c[4:]}_"))
            assert text not in names.setdefault(command, set()), f"{key} repeats an option name"
            names[command].add(text)


async def test_translator_answers_italian_and_leaves_english_and_unknown_alone() -> None:
    translator = CatalogueTranslator()
    menu = locale_str("Animate photo", key="menu_animate_photo")
    context = TranslationContext(Where.command_name, MENU)
    assert await translator.translate(menu, Locale.italian, context) == "Anima foto"
    assert await translator.translate(menu, Locale.american_english, context) is None
    assert await translator.translate(menu, Locale.japanese, context) is None  # no catalogue


def test_names_that_discord_would_refuse_are_dropped() -> None:
    command = app_commands.Command(name="verify", description="x", callback=_verify)
    name = TranslationContext(Where.command_name, command)
    assert fits(name, "verifica")
    assert not fits(name, "Verifica")  # capitals
    assert not fits(name, "verifica credenziali")  # a space
    assert not fits(name, "v" * 33)
    assert fits(TranslationContext(Where.command_name, MENU), "Verifica credenziali")

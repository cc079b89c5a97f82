"""Localised Discord application commands: names and descriptions from the message catalogue.

discord.py asks a ``Translator`` for every command, option, choice and context-menu string when
the tree is synced, and sends the answers as ``name_localizations`` and
``description_localizations``. :class:`CatalogueTranslator` answers from ``bots/locales`` under
the ``[discord]`` section, by keys derived from where the string sits:

- slash command ``alive-settings``: ``cmd_alive_settings`` (name), ``cmd_alive_settings_about``;
- its option ``name``: ``opt_alive_settings_name``, ``opt_alive_settings_name_about``;
- a choice whose value is ``zoom_in``: ``choice_zoom_in``;
- a string built with ``locale_str(text, key="menu_animate_photo")`` (context menus): that key.

English is the default Discord shows, so only other languages are answered; a missing key or a
translation that breaks Discord's naming rules yields None (Discord then shows the default),
since one bad name would make Discord refuse the whole sync.
"""

from __future__ import annotations

import logging
import re

from discord import Locale, app_commands
from discord.app_commands import TranslationContextLocation as Where
from discord.app_commands import TranslationContextTypes, locale_str
from discord.app_commands.commands import validate_name

from bots.i18n import DEFAULT_LANGUAGE, catalogue, languages

log = logging.getLogger(__name__)

SECTION = "discord"
# NOTE: Discord's limits (developer docs, "Application Commands": naming and option fields):
# names 1-32 characters, descriptions and choice names 1-100.
NAME_MAX = 32
TEXT_MAX = 100
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def slug(text: str) -> str:
    """Return ``text`` as a catalogue key part: lower case, runs of other characters as ``_``."""
    return _NOT_WORD.sub("_", text.lower()).strip("_")


def catalogue_key(string: locale_str, context: TranslationContextTypes) -> str | None:
    """Return the ``[discord]`` key (without the section) for a string, or None if it has none."""
    explicit = string.extras.get("key")
    if explicit:
        return str(explicit)
    where, data = context.location, context.data
    if isinstance(data, app_commands.Command):
        if where is Where.command_name:
            return f"cmd_{slug(data.qualified_name)}"
        if where is Where.command_description:
            return f"cmd_{slug(data.qualified_name)}_about"
    if isinstance(data, app_commands.Parameter):
        about = "_about" if where is Where.parameter_description else ""
        return f"opt_{slug(data.command.qualified_name)}_{slug(data.name)}{about}"
    if isinstance(data, app_commands.Choice):
        return f"choice_{slug(str(data.value))}"
    return None


def fits(context: TranslationContextTypes, text: str) -> bool:
    """Return whether ``text`` obeys Discord's rules for the place it goes."""
    where = context.location
    if where is Where.command_name and isinstance(context.data, app_commands.ContextMenu):
        return 0 < len(text) <= NAME_MAX  # context menus may have spaces and capitals
    if where in (Where.command_name, Where.parameter_name, Where.group_name):
        try:
            validate_name(text)  # lower case, no spaces, 1-32 characters
        except ValueError:
            return False
        return True
    return 0 < len(text) <= TEXT_MAX


def language_of(locale: Locale) -> str:
    """Return our catalogue language for a Discord locale (``pt-BR`` -> ``pt``)."""
    return locale.value.split("-")[0].lower()


def english(key: str) -> str:
    """Return the English text of a ``[discord]`` key: the default the commands are built with."""
    return catalogue(DEFAULT_LANGUAGE)[f"{SECTION}.{key}"]


class CatalogueTranslator(app_commands.Translator):
    """Answers discord.py's translation requests from the message catalogue."""

    async def translate(
        self, string: locale_str, locale: Locale, context: TranslationContextTypes
    ) -> str | None:
        """Return the catalogue's text for ``string`` in ``locale``, or None to keep the default."""
        lang = language_of(locale)
        if lang == DEFAULT_LANGUAGE or lang not in languages():
            return None
        key = catalogue_key(string, context)
        text = catalogue(lang).get(f"{SECTION}.{key}") if key else None
        if text is None:
            return None
        if not fits(context, text):
            log.warning("dropping the %s translation of %s: Discord would refuse it", lang, key)
            return None
        return text

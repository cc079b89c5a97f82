"""The message catalogue every adapter replies from: one TOML file per language, English fallback.

Catalogues live in ``bots/locales/<lang>.toml`` as ``[section]`` tables of ``key = "text"``;
a key is addressed as ``"section.key"``. A key missing in a language falls back to English.
"""

from __future__ import annotations

import functools
import logging
import tomllib
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
DEFAULT_LANGUAGE = "en"


@functools.cache
def languages() -> tuple[str, ...]:
    """Return the languages that have a catalogue, English first."""
    found = sorted(p.stem for p in LOCALES_DIR.glob("*.toml"))
    return (DEFAULT_LANGUAGE, *(lang for lang in found if lang != DEFAULT_LANGUAGE))


@functools.cache
def catalogue(lang: str) -> Mapping[str, str]:
    """Return one language's messages as a flat ``{"section.key": text}`` mapping."""
    path = LOCALES_DIR / f"{lang}.toml"
    if lang not in languages():
        return {}
    with path.open("rb") as f:
        tables = tomllib.load(f)
    return {
        f"{section}.{key}": text
        for section, entries in tables.items()
        for key, text in entries.items()
    }


def t(key: str, lang: str = DEFAULT_LANGUAGE, /, **params: object) -> str:
    """Return the message ``key`` in ``lang`` (falling back to English), formatted with params.

    Raises:
        KeyError: if not even the English catalogue has the key (a programming error).
    """
    text = catalogue(lang).get(key)
    if text is None:
        text = catalogue(DEFAULT_LANGUAGE)[key]
    return text.format(**params) if params else text


def has(key: str) -> bool:
    """Return whether the English catalogue has ``key``."""
    return key in catalogue(DEFAULT_LANGUAGE)


def pick_language(chat_language: str = "", user_code: str | None = None) -> str:
    """Choose the reply language: the chat's setting, else the user's, else English.

    Args:
        chat_language: the chat setting (``""`` = each user's own).
        user_code: the platform's IETF language tag of the user (``"it"``, ``"pt-BR"``).
    """
    for candidate in (chat_language, (user_code or "").split("-")[0].lower()):
        if candidate in languages():
            return candidate
    return DEFAULT_LANGUAGE

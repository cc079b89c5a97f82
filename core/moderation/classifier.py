"""Step 2 of the pipeline, prompt side, after the lexicon: a classifier trained on the policy.

The lexicon knows the words someone wrote down and the semantic check knows English meanings;
neither recognises the next user's slang, inflection or misspelling in Italian or German. This
check is a linear model (logistic loss, trained by ``scikit-learn``'s SGD) over character
n-grams (2 to 5, within words) and word unigrams and bigrams of the prompt as the lexicon reads
it (emoji read as words, spelling tricks undone). Character n-grams are shared between
inflections and misspellings ("spogliala", "spogliarla", "spoglia"), which is why it
generalises where a word list cannot.

It is trained once per process (about 6 s on two cores, deterministically; serving processes
do it at start, see ``Services.warm_up``) on the policy's labelled prompts (``[classifier]
training`` in ``config/policy.toml``) and the semantic check's exemplars: no model file is
shipped or trusted, and the data is the policy. A prompt is refused when the probability that
it is not benign reaches the policy's threshold, or when the probability of the sexual
categories together (sexual content, minors, undressing) reaches the policy's lower ``sexual``
level, because their goals ask for more recall than the others'. The most probable category
decides (the most probable sexual one, when only the sexual level was reached), and a sexual
or undressing one on a prompt naming a child becomes ``prompt_sexual_minors``, as in the
other checks. Whether a prompt names a child is the lexicon's minor terms or, because no word
list knows every word for a child in six languages, this model's probability of
``prompt_sexual_minors`` reaching the policy's ``minor`` level; the other checks ask it too
(``likely_minor``), so a sexual match on "la chamaquita" is the minors code whichever check
makes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from core.moderation.policy import BENIGN, MINORS
from core.moderation.prompt import SEXUAL, deobfuscate, emoji_reader, minor_matcher
from core.types import Stage, Verdict

if TYPE_CHECKING:
    from core.moderation.policy import Policy

log = logging.getLogger(__name__)

_lock = threading.Lock()
_models: dict[str, Any] = {}  # sha256 of the training rows -> fitted pipeline, per process
SEED = 0


def _features() -> Any:
    """Character n-grams within words plus word unigrams and bigrams, each TF-IDF weighted."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_union

    return make_union(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True),
    )


def train(rows: Sequence[tuple[str, str]]) -> Any:
    """Fit the classifier on ``(prompt, group)`` rows; the same rows give the same model.

    Fitted models are kept per process by the rows' digest, so every check built from one
    policy shares one model.
    """
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import make_pipeline

    key = hashlib.sha256(json.dumps(list(rows), ensure_ascii=False).encode()).hexdigest()
    with _lock:
        model = _models.get(key)
        if model is None:
            start = time.perf_counter()
            model = make_pipeline(
                _features(),
                SGDClassifier(
                    loss="log_loss",
                    alpha=1e-6,
                    max_iter=50,
                    tol=1e-4,
                    class_weight="balanced",
                    random_state=SEED,
                ),
            )
            model.fit([reads(text) for text, _ in rows], [group for _, group in rows])
            # Prediction multiplies the prompt's sparse row by coef_.T; stored column-major,
            # that transpose is contiguous and scipy stops copying the whole matrix per prompt.
            model[-1].coef_ = np.asfortranarray(model[-1].coef_)
            _models[key] = model
            log.info(
                "prompt classifier trained on %d prompts in %.1f s",
                len(rows),
                time.perf_counter() - start,
            )
    return model


def reads(prompt: str) -> str:
    """The prompt as the classifier reads it: plain lowercase words (see ``deobfuscate``)."""
    return f" {deobfuscate(prompt)} "


class PromptClassifierCheck:
    """Refuses a prompt that the trained classifier finds likely enough not to be benign.

    Args:
        rows: labelled prompts, ``(text, group)``; groups are category codes or ``"benign"``.
        codes: the policy's category codes (the classifier decides among those it saw).
        threshold: the probability of "not benign" at or above which a prompt is refused.
        sexual: the probability of the sexual categories together (``SEXUAL`` and
            ``prompt_sexual_minors``) at or above which a prompt is refused.
        minor: the probability of ``prompt_sexual_minors`` at or above which a prompt counts
            as naming a child.
        names_minor: whether a prompt names a child (the lexicon's minor terms).
        read_emoji: replaces emoji sequences by the words they stand for (the lexicon's).
    """

    name = "prompt-classifier"

    def __init__(
        self,
        rows: Sequence[tuple[str, str]],
        codes: Sequence[str],
        threshold: float,
        minor: float = 1.0,
        names_minor: Callable[[str], bool] | None = None,
        read_emoji: Callable[[str], str] | None = None,
        sexual: float = 1.0,
    ) -> None:
        groups = {group for _, group in rows}
        if BENIGN not in groups or not groups & set(codes):
            raise ValueError("the classifier needs benign prompts and prompts of a category")
        self._rows = tuple(rows)
        self._codes = tuple(codes)
        self._threshold = threshold
        self._sexual = sexual
        self._minor = minor
        self._names_minor = names_minor
        self._read_emoji = read_emoji
        self._model: Any = None

    @classmethod
    def from_policy(cls, policy: Policy) -> PromptClassifierCheck:
        """Build the check from a loaded policy: its training files and its exemplars."""
        rows = [row for file in policy.training_rows for row in file]
        rows += [(text, group) for group, texts in policy.exemplar_texts.items() for text in texts]
        minor, read = minor_matcher(policy.lexicon), emoji_reader(policy.lexicon.emoji)
        limits = policy.classifier
        return cls(rows, policy.codes, limits.threshold, limits.minor, minor, read, limits.sexual)

    def warm_up(self) -> None:
        """Train now rather than on the first prompt."""
        self._fitted()

    def _fitted(self) -> Any:
        if self._model is None:  # two threads may both ask; train() fits once
            self._model = train(self._rows)
        return self._model

    def probabilities(self, prompt: str) -> Mapping[str, float]:
        """Return each group's probability for the prompt (they sum to 1)."""
        from sklearn import config_context

        model = self._fitted()
        text = self._read_emoji(prompt) if self._read_emoji else prompt
        # One short string, built here: the input checks cost more than the model.
        with config_context(assume_finite=True, skip_parameter_validation=True):
            row = model.predict_proba([reads(text)])[0]
        return dict(zip(model.classes_, (float(p) for p in row), strict=True))

    def likely_minor(self, prompt: str) -> bool:
        """Whether the model finds the prompt likely enough to involve a child."""
        return bool(prompt.strip()) and self.probabilities(prompt).get(MINORS, 0.0) >= self._minor

    def check(self, prompt: str) -> Verdict:
        """Return a rejection with the category's and the benign probability, or allow."""
        if not prompt.strip():
            return Verdict.ok(Stage.PROMPT, self.name)
        probability = self.probabilities(prompt)
        benign = probability.get(BENIGN, 0.0)
        seen = [code for code in self._codes if code in probability]
        top = max(seen, key=probability.__getitem__)
        scores = {top: round(probability[top], 4), BENIGN: round(benign, 4)}
        sexual = [code for code in seen if code in SEXUAL or code == MINORS]
        if 1.0 - benign < self._threshold:
            if not sexual or sum(probability[c] for c in sexual) < self._sexual:
                return Verdict.ok(Stage.PROMPT, self.name, scores)
            top = max(sexual, key=probability.__getitem__)
        code = top
        if code in SEXUAL and (
            probability.get(MINORS, 0.0) >= self._minor
            or (self._names_minor is not None and self._names_minor(prompt))
        ):
            code = MINORS
        scores = {code: round(probability[top], 4), BENIGN: round(benign, 4)}
        return Verdict.reject(code, Stage.PROMPT, self.name, scores)

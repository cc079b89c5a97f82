"""The evaluation set and a fast subset of bench/moderation.py through the production checks.

The whole set is the benchmark (``bench/moderation.py``); here every fourth prompt of the splits
tuned on runs through the real chain as a regression guard on the goals, and the set itself is
checked for coverage. The held-out and blind splits are measured by the bench only.
"""

from __future__ import annotations

from collections import Counter

import pytest

from bench.moderation import BENIGN, TUNED_ON, evaluate, load_cases
from core.settings import CONFIG_DIR

CASES = load_cases()
LANGUAGES = {"en", "it", "es", "fr", "de", "pt"}


def test_the_set_covers_every_category_language_and_kind():
    from core.moderation.policy import load_policy

    codes = load_policy(CONFIG_DIR / "policy.toml").codes
    assert len(CASES) >= 400
    assert {c.category for c in CASES} == {*codes, BENIGN}
    for code in codes:
        assert {c.language for c in CASES if c.category == code} == LANGUAGES, code
        assert any(c.kind == "obfuscated" for c in CASES if c.category == code), code
    assert {c.language for c in CASES if c.kind == "lookalike"} == LANGUAGES
    splits = Counter(c.split for c in CASES)
    assert splits["heldout"] >= 100
    assert splits["blind2"] >= 300
    assert splits["blind3"] >= 300
    assert splits["blind4"] >= 300
    assert splits["blind5"] >= 300
    assert len({c.text for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def checks():
    from core.services import moderation_checks
    from core.settings import load_settings

    prompt, _, _ = moderation_checks(load_settings())
    return prompt


def test_a_fast_subset_of_the_splits_tuned_on_meets_the_goals(checks):
    subset = [c for c in CASES if c.split in TUNED_ON][::4]
    report = evaluate(checks, subset)
    assert report.rows["prompt_sexual_minors"][1] >= 0.98
    assert report.rows["prompt_sexual"][1] >= 0.98
    assert report.recall_all >= 0.95
    assert report.fp_rate <= 0.02
    assert all(precision >= 0.9 for precision, *_ in report.rows.values())


def test_the_lexicon_alone_catches_every_plain_non_english_prompt(checks):
    lexicon = [c for c in checks if c.name in ("prompt-length", "prompt-lexicon")]
    cases = [c for c in CASES if c.kind == "plain" and c.language != "en" and c.split in TUNED_ON]
    report = evaluate(lexicon, cases)
    assert report.recall_all >= 0.95

"""The policy file: every section loads, and mistakes fail at start naming the file and key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.moderation.policy import load_policy
from core.settings import CONFIG_DIR

CATEGORIES = (
    "prompt_sexual_minors",
    "prompt_sexual",
    "prompt_undress",
    "prompt_violence",
    "prompt_self_harm",
    "prompt_hate",
    "prompt_impersonation",
    "prompt_illegal",
)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    shutil.copytree(CONFIG_DIR / "lexicon", tmp_path / "lexicon")
    shutil.copytree(CONFIG_DIR / "training", tmp_path / "training")
    shutil.copy(CONFIG_DIR / "exemplars.toml", tmp_path)
    shutil.copy(CONFIG_DIR / "policy.toml", tmp_path)
    return tmp_path / "policy.toml"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_default_policy_loads_every_category_and_language():
    policy = load_policy(CONFIG_DIR / "policy.toml")
    assert policy.codes == CATEGORIES
    assert set(policy.lexicon.languages) == {"en", "it", "es", "fr", "de", "pt"}
    assert all(policy.lexicon.categories[c] for c in CATEGORIES)
    assert set(policy.exemplar_texts) == {*CATEGORIES, "benign"}
    assert policy.hashlist.file is None
    assert policy.photo.nudenet["FEMALE_GENITALIA_EXPOSED"] == 0.5


def test_settings_point_to_the_default_policy(settings):
    assert settings.moderation.policy_path == CONFIG_DIR / "policy.toml"


def test_minors_must_be_checked_first(copy):
    _edit(copy, 'code = "prompt_sexual_minors"', 'code = "prompt_minors_later"')
    with pytest.raises(ConfigError, match="prompt_sexual_minors"):
        load_policy(copy)


def test_a_misspelt_key_fails(copy):
    _edit(copy, "max_chars = 300", "max_char = 300")
    with pytest.raises(ConfigError, match=r"policy.toml: max_char"):
        load_policy(copy)


def test_a_bad_expression_names_the_file_and_key_not_the_term(copy):
    _edit(copy.parent / "lexicon" / "de.toml", "  'ficken',", "  'fick(en',")
    with pytest.raises(ConfigError) as caught:
        load_policy(copy)
    assert "de.toml: categories.prompt_sexual[" in str(caught.value)
    assert "fick" not in str(caught.value)


def _extra_lexicon(copy: Path, body: str) -> None:
    (copy.parent / "lexicon" / "xx.toml").write_text(body)
    _edit(copy, '"lexicon/emoji.toml",', '"lexicon/emoji.toml", "lexicon/xx.toml",')


def test_fragments_are_named_once_and_used_by_terms(copy):
    _extra_lexicon(
        copy,
        "[fragments]\n"
        "KID = '(?:kidd?o|{SMALL} one)'\n"
        "SMALL = '(?:little|wee)'\n"
        "[categories]\n"
        "prompt_violence = ['bonk the {KID}{2}x']\n",
    )
    terms = load_policy(copy).lexicon.categories["prompt_violence"]
    assert "bonk the (?:kidd?o|(?:little|wee) one){2}x" in terms


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("[categories]\nprompt_hate = ['{NOPE} x']\n", r"prompt_hate\[0\] names unknown fragment"),
        ("[fragments]\nA = '{B}'\nB = '{A}'\n", "refers to itself"),
        ("[fragments]\nA = '{C}'\n", "unknown fragment C"),
        ("[fragments]\nlower = 'x'\n", "fragments must be a table"),
    ],
)
def test_a_bad_fragment_fails_naming_the_file(copy, body, problem):
    _extra_lexicon(copy, body)
    with pytest.raises(ConfigError, match=rf"xx.toml: .*{problem}"):
        load_policy(copy)


def test_an_unknown_category_in_a_lexicon_fails(copy):
    _edit(copy.parent / "lexicon" / "it.toml", "prompt_illegal = [", "prompt_ilegal = [")
    with pytest.raises(ConfigError, match=r"categories\.prompt_ilegal"):
        load_policy(copy)


def test_an_unknown_exemplar_group_fails(copy):
    _edit(copy.parent / "exemplars.toml", "benign = [", "harmless = [")
    with pytest.raises(ConfigError, match="harmless"):
        load_policy(copy)


def test_the_training_files_load_file_by_file_with_their_labels():
    policy = load_policy(CONFIG_DIR / "policy.toml")
    assert len(policy.training_rows) == len(policy.classifier.training) >= 4
    groups = {group for file in policy.training_rows for _, group in file}
    assert groups == {*CATEGORIES, "benign"}


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("make her dance\tbenign\ten\tplain", "expected 5 tab-separated fields"),
        ("\tbenign\ten\tplain\ttrain", "expected 5 tab-separated fields"),
        ("make her dance\tharmless\ten\tplain\ttrain", "unknown category 'harmless'"),
    ],
)
def test_a_bad_training_row_fails_naming_the_file_and_line(copy, row, problem):
    path = copy.parent / "training" / "dev.tsv"
    lines = path.read_text(encoding="utf-8").splitlines()
    number = len(lines) + 1
    path.write_text("\n".join([*lines, row]) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"dev.tsv:{number}: {problem}"):
        load_policy(copy)


def test_a_missing_training_file_fails_naming_it(copy):
    (copy.parent / "training" / "dev.tsv").unlink()
    with pytest.raises(ConfigError, match=r"dev\.tsv: cannot read"):
        load_policy(copy)


def test_the_hash_list_path_is_relative_to_the_policy(copy):
    _edit(copy, 'file = ""', 'file = "lists/bad.txt"')
    assert load_policy(copy).hashlist.file == copy.parent / "lists" / "bad.txt"


def test_an_unknown_nudenet_class_fails_when_the_checks_are_built(copy, settings):
    from core.services import moderation_checks

    _edit(copy, "BUTTOCKS_EXPOSED = 0.5", "BUTTOCK_EXPOSED = 0.5")
    moderation = settings.moderation.model_copy(update={"policy_file": copy})
    with pytest.raises(ValueError, match="BUTTOCK_EXPOSED"):
        moderation_checks(settings.model_copy(update={"moderation": moderation}))


def test_the_checks_run_in_the_documented_order(settings):
    from core.services import moderation_checks

    prompt, photo, output = moderation_checks(settings)
    names = ["prompt-length", "prompt-lexicon", "prompt-classifier", "prompt-semantic"]
    assert [c.name for c in prompt] == names
    assert [c.name for c in photo] == ["nudenet", "faces"]
    assert [c.name for c in output] == ["nudenet"]

"""The alive command as an operator meets it: exit codes, JSON shapes, plain errors."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from bots.cli import main
from core.settings import Settings
from tests.conftest import jpeg_bytes, scene


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("ALIVE_DATA_DIR", str(settings.data_dir))
    return settings


def test_keys_init_then_show(env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "init"]) == 0
    out = capsys.readouterr().out
    assert "created" in out
    assert "development" in out.lower()
    key = env.data_dir / "keys" / "key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert main(["keys", "init"]) == 0
    assert "already present" in capsys.readouterr().out
    assert main(["keys", "show"]) == 0
    shown = capsys.readouterr().out
    assert "subject" in shown
    assert "BEGIN" not in shown  # never the key or the certificate itself


def test_missing_identity_is_a_plain_usage_error(
    env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "show"]) == 2
    assert "alive keys init" in capsys.readouterr().err


def test_moderate_prompts_file_prints_one_json_line_each(
    env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Moderation alone needs no signing identity and leaves nothing in the data dir."""
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("clouds drifting\nmake her naked\n\ngentle smile\n", encoding="utf-8")
    assert main(["moderate", "--prompts-file", str(prompts), "--json"]) == 3
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["input"]["prompt"] for line in lines] == [
        "clouds drifting",
        "make her naked",
        "gentle smile",
    ]
    assert [line["allowed"] for line in lines] == [True, False, True]
    assert lines[1]["reason"].startswith("prompt_")
    assert not (env.data_dir / "keys").exists()


def test_moderate_photo_and_prompt(
    env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = tmp_path / "p.jpg"
    photo.write_bytes(jpeg_bytes(scene()))
    assert main(["moderate", "--photo", str(photo), "--prompt", "waves", "--json"]) == 0
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert line["allowed"] is True
    assert "nudenet" in line["scores"]


def test_verify_of_a_text_file_says_what_it_could_not_check(
    env: Settings, dev_keys: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert main(["verify", str(text)]) == 0
    out = capsys.readouterr().out
    assert "none found" in out
    assert "Could not check" in out


def test_bad_arguments_are_plain_errors(
    env: Settings, dev_keys: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["animate", str(tmp_path / "missing.jpg")]) == 2
    assert "cannot read" in capsys.readouterr().err
    photo = tmp_path / "p.jpg"
    photo.write_bytes(jpeg_bytes(scene()))
    assert main(["animate", str(photo), "--seconds", "600"]) == 2
    assert "--seconds" in capsys.readouterr().err

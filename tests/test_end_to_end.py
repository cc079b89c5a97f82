"""Animate a photo with the CLI, then verify the clip as a recipient would meet it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bots.cli import main
from core.settings import Settings
from core.testing import remux


def flip_mdat_byte(data: bytes) -> bytes:
    """Flip one byte in the middle of the first top-level mdat box."""
    offset = 0
    while offset < len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        kind = data[offset + 4 : offset + 8]
        if kind == b"mdat":
            middle = offset + size // 2
            return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
        offset += size
    raise AssertionError("no mdat box")


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    code = main(list(argv))
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def cli_env(settings: Settings, dev_keys: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The CLI reads its settings from the environment: point it at the test data dir."""
    monkeypatch.setenv("ALIVE_DATA_DIR", str(settings.data_dir))
    return settings


@pytest.fixture
def clip(
    cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[Path, dict[str, object]]:
    from bench.photos import landscape

    photo = tmp_path / "photo.jpg"
    photo.write_bytes(landscape(512, 384))
    code, result = run_json(
        capsys, "animate", str(photo), "-o", str(tmp_path / "c.mp4"), "--size", "512", "--json"
    )
    assert code == 0, result
    return tmp_path / "c.mp4", result


def test_animate_json_reports_each_step(clip: tuple[Path, dict[str, object]]) -> None:
    path, result = clip
    assert result["status"] == "ok"
    assert result["reason"] is None
    assert result["output"] == str(path)
    assert set(result["timings"]) >= {"validate", "animate", "encode", "sign"}  # type: ignore[arg-type]
    assert path.read_bytes()[4:8] == b"ftyp"


def test_fresh_clip_verifies_trusted_and_ours(
    clip: tuple[Path, dict[str, object]], capsys: pytest.CaptureFixture[str]
) -> None:
    path, result = clip
    code, report = run_json(capsys, "verify", str(path), "--json")
    assert code == 0
    assert report["credentials"]["state"] == "trusted"  # type: ignore[index]
    assert report["credentials"]["ai_generated"] is True  # type: ignore[index]
    assert report["ours"] is True
    assert report["ledger"]["id"] == result["ledger_id"]  # type: ignore[index]


def test_one_flipped_mdat_byte_is_invalid(
    clip: tuple[Path, dict[str, object]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = clip
    tampered = tmp_path / "tampered.mp4"
    tampered.write_bytes(flip_mdat_byte(path.read_bytes()))
    _, report = run_json(capsys, "verify", str(tampered), "--json")
    assert report["credentials"]["state"] == "invalid"  # type: ignore[index]
    assert report["credentials"]["reasons"]  # type: ignore[index]


def test_remuxed_clip_has_no_credentials_but_is_still_found(
    clip: tuple[Path, dict[str, object]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, result = clip
    stripped = tmp_path / "stripped.mp4"
    stripped.write_bytes(remux(path.read_bytes()))
    _, report = run_json(capsys, "verify", str(stripped), "--json")
    assert report["credentials"]["state"] == "none"  # type: ignore[index]
    assert report["ours"] is True
    assert report["ledger"]["id"] == result["ledger_id"]  # type: ignore[index]
    assert report["watermark_id"] == result["ledger_id"]


def test_rejected_photo_exits_3_with_reason(
    cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    code, result = run_json(capsys, "animate", str(bad), "--json")
    assert code == 3
    assert result["status"] == "rejected"
    assert result["reason"] in {"corrupt", "not_an_image"}
    assert result["message"]

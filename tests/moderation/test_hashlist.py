"""HashListCheck: the file format, matches after re-encoding and resizing, and what is audited."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from core.errors import ConfigError
from core.moderation.hashlist import HashListCheck, parse_hash_list, pdq_bytes
from core.moderation.limits import decode_photo
from core.settings import Limits
from core.types import Image, Photo, Stage
from tests.conftest import jpeg_bytes, scene


def _image(pixels: np.ndarray) -> Image:
    return decode_photo(Photo(jpeg_bytes(pixels, quality=95)), Limits())


def _hex(pixels: np.ndarray) -> str:
    digest, quality = pdq_bytes(pixels)
    assert quality >= 50
    return digest.tobytes().hex()


def _list_file(tmp_path: Path, *hashes: str) -> Path:
    lines = ["# known-bad images, supplied by the operator", ""]
    lines += [f"{h}  # case {i}" for i, h in enumerate(hashes)]
    path = tmp_path / "hashes.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_format_skips_comments_and_blank_lines_and_counts_lines():
    text = "# header\n\n" + "AB" * 32 + "\n   \n" + "0f" * 32 + "   # trailing note\n"
    matrix, lines = parse_hash_list(text)
    assert matrix.shape == (2, 32)
    assert lines == [3, 5]
    assert matrix[0].tobytes() == bytes.fromhex("ab" * 32)


@pytest.mark.parametrize("bad", ["ab" * 31, "zz" * 32, "ab" * 33, "ab" * 32 + " extra"])
def test_a_malformed_line_fails_naming_its_number_not_its_content(bad):
    with pytest.raises(ConfigError) as caught:
        parse_hash_list("# ok\n" + bad + "\n", "list.txt")
    assert "line 2" in str(caught.value)
    assert bad not in str(caught.value)


def test_the_listed_photo_is_blocked_after_reencoding_and_resizing(tmp_path):
    bad = scene(640, 480, seed=3)
    check = HashListCheck.from_file(_list_file(tmp_path, "00" * 32, _hex(bad)), 31, 50)
    assert len(check) == 2
    smaller = np.asarray(PILImage.fromarray(bad).resize((400, 300), PILImage.LANCZOS))
    for pixels in (bad, smaller):
        verdict = check.check(_image(pixels))
        assert (verdict.allowed, verdict.code, verdict.stage) == (False, "hash_match", Stage.PHOTO)
        assert verdict.scores["line"] == 4.0  # the entry's line in the file
        assert 0 <= verdict.scores["distance"] <= 31


def test_the_verdict_never_carries_a_hash(tmp_path):
    bad = scene(640, 480, seed=3)
    entry = _hex(bad)
    verdict = HashListCheck.from_file(_list_file(tmp_path, entry), 31, 50).check(_image(bad))
    assert not verdict.allowed
    assert set(verdict.scores) == {"line", "distance"}
    assert entry not in repr(verdict)


def test_other_photos_pass(tmp_path):
    check = HashListCheck.from_file(_list_file(tmp_path, _hex(scene(640, 480, seed=3))), 31, 50)
    for seed in (4, 5):
        other = np.ascontiguousarray(np.rot90(scene(640, 480, seed=seed)))
        assert check.check(_image(other)).allowed


def test_a_flat_photo_is_too_unreliable_to_match(tmp_path):
    flat = np.full((200, 200, 3), 128, np.uint8)
    digest, _ = pdq_bytes(flat)
    check = HashListCheck.from_file(_list_file(tmp_path, digest.tobytes().hex()), 31, 50)
    verdict = check.check(_image(flat))
    assert verdict.allowed
    assert verdict.scores["quality"] < 50


def test_an_empty_list_allows_everything(tmp_path):
    check = HashListCheck.from_file(_list_file(tmp_path), 31, 50)
    assert len(check) == 0
    assert check.check(_image(scene())).allowed


def test_a_missing_file_fails_at_start(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the hash list"):
        HashListCheck.from_file(tmp_path / "absent.txt", 31, 50)


def test_entries_printed_for_operators_match_the_photo(tmp_path, capsys):
    from core.moderation.hashlist import main

    photo = tmp_path / "bad.jpg"
    photo.write_bytes(jpeg_bytes(scene(1600, 1200, seed=9), quality=95))
    assert main([str(photo)]) == 0
    line = capsys.readouterr().out
    assert line.endswith("# bad.jpg\n")
    listed = tmp_path / "list.txt"
    listed.write_text(line)
    check = HashListCheck.from_file(listed, 31, 50)
    smaller = decode_photo(Photo(jpeg_bytes(scene(800, 600, seed=9), quality=80)), Limits())
    assert check.check(smaller).code == "hash_match"


def test_pipeline_blocks_and_audits_a_listed_photo(settings, dev_keys, tmp_path):
    from core import pipeline
    from core.services import build_services
    from core.types import ClipSpec, JobRequest

    pixels = scene(640, 480, seed=3)
    listed = _list_file(tmp_path, _hex(pixels))
    policy = tmp_path / "policy.toml"
    source = (Path(__file__).resolve().parents[2] / "config" / "policy.toml").read_text()
    config = Path(__file__).resolve().parents[2] / "config"
    source = source.replace('file = ""', f'file = "{listed}"')
    source = source.replace('"lexicon/', f'"{config}/lexicon/')
    source = source.replace('"training/', f'"{config}/training/')
    source = source.replace(
        'exemplars = "exemplars.toml"', f'exemplars = "{config}/exemplars.toml"'
    )
    policy.write_text(source)
    patched = settings.model_copy(
        update={"moderation": settings.moderation.model_copy(update={"policy_file": policy})}
    )
    services = build_services(patched)
    try:
        assert services.photo_checks[0].name == "hash-list"
        data = jpeg_bytes(pixels, quality=95)
        outcome = pipeline.run(JobRequest(Photo(data), ClipSpec(seconds=1, fps=4)), services)
        assert (outcome.ok, outcome.verdict.code) == (False, "hash_match")
        record = services.audit.records("moderation")[-1]
        assert record["code"] == "hash_match"
        assert record["scores"]["line"] == 3.0
        assert _hex(pixels) not in str(record)
    finally:
        services.close()

"""FaceCountCheck: MediaPipe's bundled detector counts faces and sizes them; it never rejects."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image as PILImage

from core.moderation.faces import FaceCountCheck
from core.moderation.limits import decode_photo
from core.settings import Limits
from core.types import Image, Photo, Stage
from tests.conftest import jpeg_bytes, scene

# A real portrait that ships inside matplotlib (a dependency of MediaPipe): Grace Hopper.
HOPPER = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


@pytest.fixture(scope="module")
def check() -> FaceCountCheck:
    return FaceCountCheck("full", 0.5)


def _image(pixels: np.ndarray) -> Image:
    return decode_photo(Photo(jpeg_bytes(pixels)), Limits())


def _hopper() -> np.ndarray:
    return np.asarray(PILImage.open(HOPPER).convert("RGB"))


def test_a_portrait_has_one_large_face(check):
    verdict = check.check(_image(_hopper()))
    assert (verdict.allowed, verdict.stage, verdict.check) == (True, Stage.PHOTO, "faces")
    assert verdict.scores["faces"] == 1.0
    assert 0.05 < verdict.scores["largest_face"] < 0.6


def test_two_portraits_side_by_side_are_two_faces(check):
    pair = np.concatenate([_hopper(), _hopper()], axis=1)
    shares = check.faces(pair)
    assert len(shares) == 2
    assert shares[0] >= shares[1]


def test_a_landscape_has_no_face_and_is_allowed(check):
    verdict = check.check(_image(scene(320, 240)))
    assert verdict.allowed
    assert dict(verdict.scores) == {"faces": 0.0, "largest_face": 0.0}


def test_a_small_face_in_a_large_photo_is_small(check):
    canvas = np.full((2000, 2000, 3), 200, np.uint8)
    face = _hopper()
    canvas[: face.shape[0], : face.shape[1]] = face
    shares = check.faces(canvas)
    assert len(shares) == 1
    assert shares[0] < 0.05


def test_the_pipeline_verdict_reports_faces(services):
    from core import pipeline
    from core.types import ClipSpec, JobRequest

    request = JobRequest(Photo(jpeg_bytes(_hopper())), ClipSpec(seconds=1, fps=4, size=256))
    outcome = pipeline.run(request, services)
    assert outcome.ok
    assert outcome.verdict.scores["faces"] == 1.0
    assert outcome.verdict.scores["largest_face"] > 0.05

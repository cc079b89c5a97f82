"""NudeNet checks: the packaged detector loads, our plumbing matches nudenet's, thresholds decide.

We cannot ship explicit images, so no test here shows that real nudity is caught. What they
show: a benign picture passes at the default settings; our pre-processing and per-class
scores equal what ``nudenet.NudeDetector`` computes on the same pixels; and the verdict
follows the threshold and the class list, using a drawn cartoon face that this detector
happens to score at about 0.4 as ``BUTTOCKS_EXPOSED`` (under the default 0.5).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.moderation.nsfw import LABELS, NudityCheck, NudityFramesCheck, preprocess
from core.settings import Moderation
from core.types import Frames, Image, Stage

DEFAULTS = Moderation()


def _image(pixels: np.ndarray) -> Image:
    return Image(pixels, "PNG", "image/png", "0" * 64)


def _gradient(size: int = 256) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size]
    return np.stack([x, y, (x + y) // 2], axis=2).astype(np.uint8)


def _cartoon_face(size: int = 512) -> np.ndarray:
    """An RGB drawing: a flesh-coloured ellipse with two eyes and a mouth on grey."""
    s = size / 512
    img = np.full((size, size, 3), 200, np.uint8)
    centre = (int(256 * s), int(256 * s))
    cv2.ellipse(img, centre, (int(120 * s), int(160 * s)), 0, 0, 360, (220, 160, 120), -1)
    for eye_x in (210, 300):
        cv2.circle(img, (int(eye_x * s), int(220 * s)), int(15 * s), (40, 40, 40), -1)
    mouth = (int(256 * s), int(330 * s))
    cv2.ellipse(img, mouth, (int(50 * s), int(20 * s)), 0, 0, 180, (160, 60, 60), -1)
    return img


@pytest.fixture(scope="module")
def all_classes() -> NudityCheck:
    return NudityCheck(list(LABELS), threshold=0.0)


def test_labels_are_nudenets_own_class_order():
    import nudenet.nudenet

    assert tuple(getattr(nudenet.nudenet, "__labels")) == LABELS


def test_packaged_detector_loads_and_a_benign_gradient_is_allowed_at_default_settings():
    check = NudityCheck(DEFAULTS.nsfw_classes, DEFAULTS.nsfw_threshold)
    verdict = check.check(_image(_gradient()))
    assert (verdict.allowed, verdict.code, verdict.stage, verdict.check) == (
        True,
        "ok",
        Stage.PHOTO,
        "nudenet",
    )


def test_preprocessing_equals_nudenets_on_the_same_picture():
    from nudenet.nudenet import _read_image

    rgb = np.random.default_rng(1).integers(0, 255, (300, 500, 3), dtype=np.uint8)
    reference = _read_image(np.ascontiguousarray(rgb[..., ::-1]), 320)[0]
    np.testing.assert_allclose(preprocess(rgb), reference, atol=1e-6)


def test_scores_equal_nudedetector_detections_on_a_drawn_face(all_classes):
    from nudenet import NudeDetector

    rgb = _cartoon_face()
    detections = NudeDetector().detect(np.ascontiguousarray(rgb[..., ::-1]))
    assert detections, "the drawing no longer gives the detector anything over its 0.2 floor"
    scores = all_classes.scores(rgb)
    for detection in detections:
        assert scores[detection["class"]] == pytest.approx(detection["score"], abs=1e-4)


def test_threshold_zero_flags_every_listed_class_the_raw_output_names(all_classes):
    verdict = all_classes.check(_image(_gradient()))
    assert (verdict.allowed, verdict.code) == (False, "nsfw_photo")
    assert set(verdict.scores) == set(all_classes.scores(_gradient()))
    assert all(isinstance(k, str) and isinstance(v, float) for k, v in verdict.scores.items())


def test_threshold_just_under_or_over_the_top_score_decides(all_classes):
    rgb = _cartoon_face(256)
    label, score = max(all_classes.scores(rgb).items(), key=lambda kv: kv[1])
    rejected = NudityCheck([label], threshold=score - 0.01).check(_image(rgb))
    assert (rejected.allowed, rejected.code) == (False, "nsfw_photo")
    assert dict(rejected.scores) == {label: pytest.approx(score)}
    assert NudityCheck([label], threshold=score + 0.01).check(_image(rgb)).allowed


def test_classes_not_listed_do_not_count(all_classes):
    rgb = _cartoon_face(256)
    scores = all_classes.scores(rgb)
    top = max(scores, key=scores.__getitem__)
    others = [label for label in LABELS if label != top]
    runner_up = max(v for k, v in scores.items() if k != top)
    threshold = (scores[top] + runner_up) / 2
    assert NudityCheck(others, threshold).check(_image(rgb)).allowed
    assert not NudityCheck([top], threshold).check(_image(rgb)).allowed


def test_unknown_class_name_is_refused_at_construction():
    with pytest.raises(ValueError, match="BREASTS"):
        NudityCheck(["BREASTS"], 0.5)


def test_thread_count_does_not_change_scores(all_classes):
    rgb = _cartoon_face(256)
    two = NudityCheck(list(LABELS), 0.0, threads=2).scores(rgb)
    one = all_classes.scores(rgb)
    assert two.keys() == one.keys()
    for label, score in one.items():
        assert two[label] == pytest.approx(score, abs=1e-5)


def test_frames_are_sampled_from_the_middle_of_equal_stretches(all_classes):
    assert NudityFramesCheck(all_classes, 4).indices(72) == [9, 27, 45, 63]
    assert NudityFramesCheck(all_classes, 4).indices(2) == [0, 1]
    assert NudityFramesCheck(all_classes, 1).indices(12) == [6]
    with pytest.raises(ValueError, match="samples"):
        NudityFramesCheck(all_classes, 0)


def test_frames_check_rejects_only_when_a_sampled_frame_is_flagged(all_classes):
    face = _cartoon_face(256)
    label, score = max(all_classes.scores(face).items(), key=lambda kv: kv[1])
    detector = NudityCheck([label], threshold=score - 0.01)
    clip = np.repeat(_gradient()[None], 12, axis=0)
    clip[10] = face
    frames = Frames(clip, fps=12)
    # 4 samples of 12 frames: 1, 4, 7, 10 -> the face is seen.
    verdict = NudityFramesCheck(detector, 4).check(frames)
    assert (verdict.allowed, verdict.code, verdict.stage) == (False, "nsfw_output", Stage.OUTPUT)
    assert dict(verdict.scores) == {label: pytest.approx(score, abs=1e-4)}
    # 2 samples: 3 and 9 -> the face is not sampled.
    allowed = NudityFramesCheck(detector, 2).check(frames)
    assert (allowed.allowed, allowed.stage) == (True, Stage.OUTPUT)

from __future__ import annotations

import numpy as np
import pytest

from core.provenance.label import LabelStep, render_badge
from core.types import Frames


def clip(height: int, width: int, count: int = 3) -> np.ndarray:
    rng = np.random.default_rng(height * width)
    return rng.integers(0, 256, (count, height, width, 3), dtype=np.uint8)


def changed_box(before: np.ndarray, after: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(np.any(before != after, axis=(0, 3)))
    return int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())


@pytest.mark.parametrize(("height", "width"), [(256, 256), (256, 384), (512, 384), (1024, 1024)])
def test_badge_sits_bottom_left_and_nothing_else_changes(height, width):
    frames = clip(height, width)
    out = LabelStep().apply(Frames(frames, fps=24), "3fa92c0b17de")
    assert out.array.shape == frames.shape
    assert out.array.dtype == np.uint8
    assert out.fps == 24
    top, bottom, left, right = changed_box(frames, out.array)
    badge = render_badge("AI-generated", height, width)
    # Everything outside the badge rectangle in the bottom-left corner is untouched.
    assert bottom - top + 1 <= badge.shape[0]
    assert right - left + 1 <= badge.shape[1]
    assert bottom >= height * 0.9
    assert left <= width * 0.1
    assert right < width / 2
    mask = np.zeros((height, width), bool)
    mask[top : bottom + 1, left : right + 1] = True
    assert np.array_equal(out.array[:, ~mask], frames[:, ~mask])


@pytest.mark.parametrize("short", [256, 1024])
def test_badge_scales_with_the_frame_and_stays_readable(short):
    badge = render_badge("AI-generated", short, short)
    height, width = badge.shape[:2]
    assert 0.05 * short <= height <= 0.12 * short
    assert width > 3 * height
    alpha = badge[..., 3]
    # A dark translucent pill with opaque white text in it.
    text = badge[..., :3].min(axis=-1) > 200
    assert text[alpha > 200].any()
    assert 0.05 < text.mean() < 0.5
    assert 100 <= np.median(alpha) <= 200


def test_label_is_same_on_every_frame_and_darkens_white():
    white = np.full((4, 256, 256, 3), 255, np.uint8)
    out = LabelStep().apply(Frames(white, fps=24), "3fa92c0b17de").array
    assert all(np.array_equal(out[0], f) for f in out[1:])
    assert out.min() < 140  # the pill shows on white
    assert (out == 255).all(axis=-1).mean() > 0.9


def test_text_is_configurable_and_tiny_frames_still_get_a_badge():
    frames = clip(48, 64, count=2)
    out = LabelStep(text="KI-generiert").apply(Frames(frames, fps=8), "3fa92c0b17de")
    assert out.array.shape == frames.shape
    assert not np.array_equal(out.array, frames)

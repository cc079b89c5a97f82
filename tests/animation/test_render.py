"""The procedural renderer's pieces: exact compositing, the camera map and the subject windows."""

from __future__ import annotations

import cv2
import numpy as np

from core.animation.procedural import ProceduralAnimator
from core.animation.render import FrameRenderer, _around, _composite, _solid
from core.types import Camera
from tests.animation.scenes import astronaut, photo, spec


def test_composite_rounds_once_like_a_float_blend() -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (31, 47, 3), dtype=np.uint8)
    fg = rng.integers(0, 256, (31, 47, 4), dtype=np.uint8)
    fg[:5, :, 3], fg[5:10, :, 3] = 0, 255
    alpha = fg[..., 3:].astype(np.float64) / 255.0
    expected = np.round(fg[..., :3] * alpha + frame * (1.0 - alpha)).astype(np.uint8)
    scratch = tuple(np.empty_like(frame) for _ in range(4))

    _composite(frame, fg, scratch)

    assert np.array_equal(frame, expected)


def test_map_at_rest_is_the_identity_and_follows_the_zoom() -> None:
    rig = ProceduralAnimator().prepare(photo(astronaut()), spec(camera=Camera.ZOOM_IN))
    renderer = FrameRenderer(rig)
    h, w = rig.photo.shape[:2]
    zero = np.zeros((rig.grid.height, rig.grid.width, 2), np.float32)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)

    rest = renderer.sample_map(zero, (1.0, 0.0, 0.0), (0, h))
    zoomed = renderer.sample_map(zero, (1.25, 0.0, 0.0), (7, 40))

    assert np.array_equal(rest, np.stack([xs, ys], axis=-1))
    centre = (np.array([w, h], np.float32) - 1) / 2
    expected = (np.stack([xs, ys], axis=-1)[7:40] - centre) / 1.25 + centre
    assert np.abs(zoomed - expected).max() < 1e-3


def test_around_covers_the_box_but_the_hole_once() -> None:
    box, hole = (0, 20, 0, 30), (5, 12, 8, 40)
    cover = np.zeros((20, 30), np.int64)

    for r0, r1, c0, c1 in _around(box, hole):
        cover[r0:r1, c0:c1] += 1

    assert cover[5:12, 8:].sum() == 0
    cover[5:12, 8:] = 1
    assert (cover == 1).all()
    assert _around(box, None) == [box]
    assert _around(box, (25, 30, 0, 5)) == [box]


def test_solid_rectangle_is_opaque() -> None:
    alpha = np.zeros((120, 160), np.uint8)
    cv2.circle(alpha, (80, 60), 45, 255, -1)
    alpha[0, :3] = 255  # a speck too small to matter

    x0, y0, x1, y1 = _solid(alpha)

    assert (alpha[y0 : y1 + 1, x0 : x1 + 1] == 255).all()
    assert (x1 - x0 + 1) * (y1 - y0 + 1) >= 0.5 * np.pi * 45**2 * 0.6
    assert _solid(np.zeros((30, 30), np.uint8)) == (0, 0, -1, -1)

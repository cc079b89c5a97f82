from __future__ import annotations

import numpy as np

from core.animation.scene import analyse_scene
from tests.animation.scenes import astronaut, outdoor


def test_portrait_has_a_subject_and_a_face_with_landmarks_on_it() -> None:
    pixels = astronaut()
    scene = analyse_scene(pixels)

    assert scene.has_subject
    assert len(scene.faces) == 1
    face = scene.faces[0]
    assert face.shape == (468, 2)
    x, y = np.round(face[1]).astype(int)  # the nose tip lies on the subject
    assert scene.subject[y, x] > 0.5
    assert scene.subject.shape == pixels.shape[:2]


def test_landscape_sky_water_and_depth() -> None:
    pixels = outdoor(water=True)
    scene = analyse_scene(pixels)
    h = pixels.shape[0]

    assert not scene.has_subject
    assert scene.faces == ()
    assert scene.sky[: int(0.3 * h)].mean() > 0.6
    assert scene.sky[int(0.5 * h) :].mean() < 0.05
    assert scene.water[int(0.8 * h) :].mean() > 0.5
    assert scene.water[: int(0.6 * h)].mean() < 0.05
    assert scene.depth[: int(0.2 * h)].mean() > scene.depth[int(0.9 * h) :].mean() + 0.3


def test_green_ground_is_vegetation() -> None:
    green = analyse_scene(outdoor(ground="green"))
    earth = analyse_scene(outdoor(ground="earth"))
    h = green.vegetation.shape[0]

    assert green.vegetation[int(0.55 * h) :].mean() > 0.3
    assert earth.vegetation.mean() < 0.05


def test_masks_have_the_photo_size_for_odd_and_tiny_photos() -> None:
    for shape in [(37, 51, 3), (301, 517, 3)]:
        scene = analyse_scene(np.full(shape, 128, np.uint8))
        for mask in (scene.subject, scene.sky, scene.water, scene.vegetation, scene.depth):
            assert mask.shape == shape[:2]
            assert mask.dtype == np.float32

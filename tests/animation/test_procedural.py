from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.animation.procedural import ProceduralAnimator, output_size
from core.errors import BackendError
from core.types import Camera
from tests.animation.scenes import (
    SIZE,
    astronaut,
    outdoor,
    photo,
    psnr,
    seam_ratio,
    spec,
    step_diffs,
)

FRAMES = 24  # 1 s at 24 fps


@pytest.fixture(scope="module")
def animator() -> ProceduralAnimator:
    return ProceduralAnimator()


@pytest.mark.parametrize(
    ("height", "width", "size"),
    [(130, 200, SIZE), (130, 200, 1024), (2000, 3000, SIZE), (400, 300, SIZE), (301, 517, SIZE)],
)
def test_long_edge_and_even_sizes(
    animator: ProceduralAnimator, height: int, width: int, size: int
) -> None:
    pixels = cv2.resize(outdoor(130, 200), (width, height), interpolation=cv2.INTER_LINEAR)
    frames = animator.animate(photo(pixels), spec(size=size, seconds=0.25))

    expected = min(size, 2 * max(height, width))
    assert expected - 2 <= max(frames.height, frames.width) <= expected


def test_output_size_never_upscales_beyond_twice() -> None:
    assert output_size(130, 200, 1024) == (260, 400)
    assert output_size(2000, 3000, 512) == (340, 512)
    assert output_size(1, 1, 512) == (2, 2)


def test_other_seed_differs(animator: ProceduralAnimator) -> None:
    scene = photo(outdoor())
    assert not np.array_equal(
        animator.animate(scene, spec(seed=7)).array, animator.animate(scene, spec(seed=8)).array
    )


@pytest.mark.parametrize("camera", [Camera.AUTO, Camera.ORBIT])
def test_motion_zero_gives_identical_frames(animator: ProceduralAnimator, camera: Camera) -> None:
    frames = animator.animate(photo(outdoor()), spec(motion=0, camera=camera)).array

    assert frames.shape[0] == FRAMES
    assert all(np.array_equal(frame, frames[0]) for frame in frames)


@pytest.mark.parametrize("camera", list(Camera))
@pytest.mark.parametrize("scene", ["outdoor", "astronaut"])
def test_loop_seam_and_first_frame(
    animator: ProceduralAnimator, camera: Camera, scene: str
) -> None:
    pixels = outdoor() if scene == "outdoor" else astronaut()
    frames = animator.animate(photo(pixels), spec(camera=camera, loop=True)).array
    resized = cv2.resize(pixels, (frames.shape[2], frames.shape[1]), interpolation=cv2.INTER_AREA)

    assert seam_ratio(frames) <= 1.2
    assert psnr(frames[0], resized) >= 30.0


@pytest.mark.parametrize("camera", [c for c in Camera if c not in (Camera.NONE, Camera.AUTO)])
def test_each_camera_moves_more_than_region_motion_alone(
    animator: ProceduralAnimator, camera: Camera
) -> None:
    scene = photo(outdoor())
    still_camera = step_diffs(animator.animate(scene, spec(camera=Camera.NONE)).array)
    moving = step_diffs(animator.animate(scene, spec(camera=camera)).array)

    assert still_camera.mean() > 0.02  # the sky still drifts
    assert moving.mean() > 2 * still_camera.mean()


def test_cameras_move_in_different_directions(animator: ProceduralAnimator) -> None:
    scene = photo(outdoor())
    peaks = {
        camera: animator.animate(scene, spec(camera=camera)).array[FRAMES // 2]
        for camera in (Camera.PAN_LEFT, Camera.PAN_RIGHT, Camera.ZOOM_IN, Camera.ORBIT)
    }
    for a in peaks:
        for b in peaks:
            if a is not b:
                assert psnr(peaks[a], peaks[b]) < 35.0, (a, b)


def test_open_clip_zooms_one_way(animator: ProceduralAnimator) -> None:
    frames = animator.animate(photo(outdoor()), spec(camera=Camera.ZOOM_IN, loop=False)).array

    assert psnr(frames[0], frames[-1]) < 30.0
    assert seam_ratio(frames) > 3.0


def test_thread_settings_untouched(animator: ProceduralAnimator) -> None:
    before = cv2.getNumThreads()
    animator.animate(photo(outdoor()), spec())
    assert cv2.getNumThreads() == before


@pytest.mark.parametrize(
    "pixels",
    [
        np.zeros((64, 64), np.uint8),
        np.zeros((64, 64, 4), np.uint8),
        np.zeros((64, 64, 3), np.float32),
    ],
)
def test_bad_pixels_rejected(animator: ProceduralAnimator, pixels: np.ndarray) -> None:
    with pytest.raises(BackendError, match="uint8"):
        animator.animate(photo(pixels), spec())


def test_port_names() -> None:
    assert ProceduralAnimator.name == "procedural"
    assert ProceduralAnimator.model == "procedural-2"

from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.animation.procedural import ProceduralAnimator, output_size, plan_motion
from core.errors import BackendError
from core.types import Camera, ClipSpec, Image

SIZE = 256
FRAMES = 24  # 1 s at 24 fps


def landscape(height: int = 192, width: int = 256, seed: int = 0) -> np.ndarray:
    """Sky gradient on top, textured ground below, a dark red blob subject in the middle."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.empty((height, width, 3), np.float32)
    t = y / height
    img[...] = np.stack([90 + 120 * t, 150 + 80 * t, 240 + 10 * t], -1)
    ground = y >= height * 0.45
    texture = 25 * np.sin(x / 5.0) * np.cos(y / 7.0)
    img[ground] = np.stack([70 + texture, 120 + texture, 50 + 0 * x], -1)[ground]
    blob = ((y - 0.6 * height) / (0.22 * height)) ** 2 + ((x - 0.5 * width) / (0.14 * width)) ** 2
    img[blob < 1] = [170, 50, 40]
    img += rng.normal(0, 4, (height, width, 1)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def photo(pixels: np.ndarray) -> Image:
    return Image(pixels, "PNG", "image/png", "0" * 64)


def spec(**kwargs: object) -> ClipSpec:
    base: dict[str, object] = {"seconds": 1.0, "fps": 24, "size": SIZE}
    base.update(kwargs)
    return ClipSpec(**base)  # type: ignore[arg-type]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def step_diffs(frames: np.ndarray) -> np.ndarray:
    as_int = frames.astype(np.int16)
    return np.abs(np.diff(as_int, axis=0)).mean(axis=(1, 2, 3))


def seam_ratio(frames: np.ndarray) -> float:
    as_int = frames.astype(np.int16)
    return float(np.abs(as_int[-1] - as_int[0]).mean() / step_diffs(frames).mean())


@pytest.fixture(scope="module")
def scene() -> Image:
    return photo(landscape())


@pytest.mark.parametrize(
    ("height", "width", "size"),
    [
        (130, 200, SIZE),  # tiny: upscaled 1.28x
        (130, 200, 1024),  # tiny: capped at 2x
        (2000, 3000, SIZE),  # big landscape
        (400, 300, SIZE),  # portrait
        (301, 517, SIZE),  # odd sides
        (256, 256, SIZE),  # square
    ],
)
def test_shape_dtype_and_even_sizes(height: int, width: int, size: int) -> None:
    pixels = cv2.resize(landscape(130, 200), (width, height), interpolation=cv2.INTER_LINEAR)
    frames = ProceduralAnimator().animate(photo(pixels), spec(size=size, seconds=0.5))

    assert frames.array.shape == (12, frames.height, frames.width, 3)
    assert frames.array.dtype == np.uint8
    assert frames.fps == 24
    assert frames.height % 2 == 0
    assert frames.width % 2 == 0
    long_edge = max(frames.height, frames.width)
    expected = min(size, 2 * max(height, width))
    assert expected - 2 <= long_edge <= expected
    assert (frames.width >= frames.height) == (width >= height)


def test_output_size_never_upscales_beyond_twice() -> None:
    assert output_size(130, 200, 1024) == (260, 400)
    assert output_size(2000, 3000, 512) == (340, 512)
    assert output_size(1, 1, 512) == (2, 2)


def test_same_seed_same_frames_other_seed_differs(scene: Image) -> None:
    animator = ProceduralAnimator()
    first = animator.animate(scene, spec(seed=7)).array
    again = animator.animate(scene, spec(seed=7)).array
    other = animator.animate(scene, spec(seed=8)).array

    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("camera", list(Camera))
def test_motion_zero_gives_identical_frames(scene: Image, camera: Camera) -> None:
    frames = ProceduralAnimator().animate(scene, spec(motion=0, camera=camera)).array

    assert frames.shape[0] == FRAMES
    assert all(np.array_equal(frame, frames[0]) for frame in frames)


@pytest.mark.parametrize("camera", list(Camera))
def test_loop_seam_and_first_frame(scene: Image, camera: Camera) -> None:
    frames = ProceduralAnimator().animate(scene, spec(camera=camera, loop=True)).array
    resized = cv2.resize(
        scene.pixels, (frames.shape[2], frames.shape[1]), interpolation=cv2.INTER_AREA
    )

    assert seam_ratio(frames) <= 1.5
    assert psnr(frames[0], resized) >= 30.0


@pytest.mark.parametrize("camera", [c for c in Camera if c is not Camera.NONE])
def test_each_camera_moves_more_than_region_motion_alone(scene: Image, camera: Camera) -> None:
    animator = ProceduralAnimator()
    still_camera = step_diffs(animator.animate(scene, spec(camera=Camera.NONE)).array)
    moving = step_diffs(animator.animate(scene, spec(camera=camera)).array)

    assert still_camera.mean() > 0.05  # region motion alone still moves
    assert moving.mean() > 2 * still_camera.mean()


def test_cameras_move_in_different_directions(scene: Image) -> None:
    animator = ProceduralAnimator()
    peaks = {
        camera: animator.animate(scene, spec(camera=camera)).array[FRAMES // 2]
        for camera in (Camera.PAN_LEFT, Camera.PAN_RIGHT, Camera.ZOOM_IN, Camera.ORBIT)
    }

    for a in peaks:
        for b in peaks:
            if a is not b:
                assert psnr(peaks[a], peaks[b]) < 35.0, (a, b)


def test_sky_flows_while_subject_barely_moves(scene: Image) -> None:
    frames = ProceduralAnimator().animate(scene, spec(camera=Camera.NONE, prompt="clouds"))
    change = np.abs(frames.array.astype(np.int16) - frames.array[0]).max(axis=0).mean(axis=2)
    h, w = change.shape
    sky = change[int(0.1 * h) : int(0.35 * h), int(0.15 * w) : int(0.85 * w)].mean()
    subject = change[int(0.5 * h) : int(0.7 * h), int(0.42 * w) : int(0.58 * w)].mean()

    assert sky > 0.5
    assert subject < 0.3 * sky


def test_open_clip_zooms_one_way(scene: Image) -> None:
    frames = ProceduralAnimator().animate(scene, spec(camera=Camera.ZOOM_IN, loop=False)).array

    assert psnr(frames[0], frames[-1]) < 30.0
    assert seam_ratio(frames) > 3.0


@pytest.mark.parametrize(
    ("prompt", "camera", "expected"),
    [
        ("slow zoom please", Camera.AUTO, Camera.ZOOM_IN),
        ("Zoom out!", Camera.AUTO, Camera.ZOOM_OUT),
        ("pan left across the hills", Camera.AUTO, Camera.PAN_LEFT),
        ("pan", Camera.AUTO, Camera.PAN_RIGHT),
        ("keep it still", Camera.AUTO, Camera.NONE),
        ("zoom in", Camera.ORBIT, Camera.ORBIT),
        ("", Camera.AUTO, Camera.AUTO),
    ],
)
def test_prompt_keywords_pick_camera(prompt: str, camera: Camera, expected: Camera) -> None:
    assert plan_motion(ClipSpec(prompt=prompt, camera=camera)).camera is expected


def test_prompt_keywords_pick_regions() -> None:
    plain = plan_motion(ClipSpec())
    sky = plan_motion(ClipSpec(prompt="drifting clouds"))
    water = plan_motion(ClipSpec(prompt="waves on the lake"))
    still = plan_motion(ClipSpec(prompt="still"))

    assert plain.water == 0.0
    assert sky.sky > plain.sky
    assert sky.sky_prior
    assert water.water > 0.0
    assert still.strength < plain.strength


def test_water_prompt_moves_the_lower_part(scene: Image) -> None:
    animator = ProceduralAnimator()
    plain = animator.animate(scene, spec(camera=Camera.NONE)).array
    water = animator.animate(scene, spec(camera=Camera.NONE, prompt="water")).array
    h = plain.shape[1]

    lower = slice(int(0.8 * h), int(0.9 * h))
    assert step_diffs(water[:, lower]).mean() > 1.5 * step_diffs(plain[:, lower]).mean()


def test_thread_settings_untouched(scene: Image) -> None:
    before = cv2.getNumThreads()
    ProceduralAnimator().animate(scene, spec())
    assert cv2.getNumThreads() == before


@pytest.mark.parametrize(
    "pixels",
    [
        np.zeros((64, 64), np.uint8),
        np.zeros((64, 64, 4), np.uint8),
        np.zeros((64, 64, 3), np.float32),
    ],
)
def test_bad_pixels_rejected(pixels: np.ndarray) -> None:
    with pytest.raises(BackendError, match="uint8"):
        ProceduralAnimator().animate(photo(pixels), spec())


def test_port_names() -> None:
    assert ProceduralAnimator.name == "procedural"
    assert ProceduralAnimator.model == "procedural-1"

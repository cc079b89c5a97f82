"""The contract every Animator must pass: frame count, size, dtype, determinism, loop seam.

To add a backend, append a ``pytest.param(factory, id=...)`` to ``ANIMATORS``; the factory takes
no arguments and returns a ready animator (a tiny random-weight pipeline for diffusers backends).
Mark slow or GPU-only entries with ``marks=`` as usual.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from core.animation.procedural import ProceduralAnimator
from core.ports import Animator
from core.testing import FakeAnimator
from core.types import Camera, Frames
from tests.animation.scenes import outdoor, photo, spec

ANIMATORS = [
    pytest.param(ProceduralAnimator, id="procedural"),
    pytest.param(FakeAnimator, id="fake"),
]

Factory = Callable[[], Animator]


@pytest.fixture(params=ANIMATORS)
def animator(request: pytest.FixtureRequest) -> Animator:
    factory: Factory = request.param
    return factory()


def run(animator: Animator, **kwargs: object) -> Frames:
    pixels = kwargs.pop("pixels", outdoor())
    return animator.animate(photo(pixels), spec(seconds=0.5, fps=12, **kwargs))  # type: ignore[arg-type]


def test_names_are_set(animator: Animator) -> None:
    assert animator.name
    assert animator.model


@pytest.mark.parametrize(("seconds", "fps"), [(0.5, 12), (1.0, 8)])
def test_frame_count_fps_and_dtype(animator: Animator, seconds: float, fps: int) -> None:
    frames = animator.animate(photo(outdoor()), spec(seconds=seconds, fps=fps))

    assert frames.count == round(seconds * fps)
    assert frames.fps == fps
    assert frames.array.dtype == np.uint8
    assert frames.array.ndim == 4
    assert frames.array.shape[3] == 3


@pytest.mark.parametrize(("height", "width"), [(150, 100), (100, 150), (97, 131)])
def test_size_is_even_and_keeps_orientation(animator: Animator, height: int, width: int) -> None:
    pixels = outdoor(height, width)
    frames = run(animator, pixels=pixels, size=128)

    assert frames.height % 2 == 0
    assert frames.width % 2 == 0
    assert max(frames.height, frames.width) <= 128
    assert (frames.width >= frames.height) == (width >= height)


def test_same_seed_same_frames(animator: Animator) -> None:
    first = run(animator, seed=3).array
    again = run(animator, seed=3).array

    assert np.array_equal(first, again)


def test_frames_move(animator: Animator) -> None:
    frames = run(animator).array

    assert not all(np.array_equal(frame, frames[0]) for frame in frames[1:])


@pytest.mark.parametrize("camera", [Camera.AUTO, Camera.ZOOM_IN, Camera.PAN_LEFT])
def test_loop_seam(animator: Animator, camera: Camera) -> None:
    clip = spec(seconds=1.0, fps=24, camera=camera, loop=True)
    frames = animator.animate(photo(outdoor()), clip).array.astype(np.int16)
    seam = np.abs(frames[-1] - frames[0]).mean()
    largest_step = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3)).max()

    # The jump from the last frame back to the first is no bigger than the clip's own steps
    # (test_procedural holds the procedural backend to the stricter mean-step ratio).
    assert seam <= 1.5 * largest_step

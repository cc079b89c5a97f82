"""Each motion moves the region it is meant to, on scenes where that region is known."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.animation import motions
from core.animation.procedural import ProceduralAnimator
from core.types import Camera
from tests.animation.scenes import astronaut, change, outdoor, photo, spec, step_diffs


@pytest.fixture(scope="module")
def animator() -> ProceduralAnimator:
    return ProceduralAnimator()


def still(animator: ProceduralAnimator, pixels: np.ndarray, **kwargs: object) -> np.ndarray:
    return animator.animate(photo(pixels), spec(camera=Camera.NONE, **kwargs)).array


def test_every_phase_coefficient_is_zero_at_the_start_and_periodic() -> None:
    for key in [("cos", 1), ("sin", 2), ("cos", 3), ("blink", 0)]:
        assert motions.coefficient(key, 0.0) == pytest.approx(0.0, abs=1e-9)
        assert motions.coefficient(key, 1.0) == pytest.approx(0.0, abs=1e-9)
    assert motions.coefficient(("blink", 0), 0.6, (0.6, 0.05)) == pytest.approx(1.0)


def test_sky_drifts_while_ground_stays(animator: ProceduralAnimator) -> None:
    moved = change(still(animator, outdoor(), prompt="drifting clouds"))
    h, w = moved.shape

    sky = moved[int(0.05 * h) : int(0.3 * h), int(0.2 * w) : int(0.8 * w)].mean()
    ground = moved[int(0.55 * h) : int(0.85 * h), int(0.2 * w) : int(0.8 * w)].mean()
    assert sky > 0.4
    assert ground < 0.2 * sky


def test_water_ripples_below_the_horizon(animator: ProceduralAnimator) -> None:
    pixels = outdoor(water=True)
    dry = still(animator, outdoor())
    wet = still(animator, pixels, prompt="waves on the lake")
    h = wet.shape[1]

    lake = slice(int(0.75 * h), int(0.85 * h))
    land = slice(int(0.45 * h), int(0.6 * h))
    assert step_diffs(wet[:, lake]).mean() > 3 * step_diffs(dry[:, lake]).mean()
    assert step_diffs(wet[:, lake]).mean() > 3 * step_diffs(wet[:, land]).mean()


def test_vegetation_sways_and_bare_ground_does_not(animator: ProceduralAnimator) -> None:
    green = change(still(animator, outdoor(ground="green"), prompt="wind in the trees"))
    brown = change(still(animator, outdoor(ground="earth"), prompt="wind in the trees"))
    h, w = green.shape

    band = (slice(int(0.5 * h), int(0.8 * h)), slice(int(0.2 * w), int(0.8 * w)))
    assert green[band].mean() > 3 * brown[band].mean()


def test_face_blinks_and_smiles_while_the_background_stays(animator: ProceduralAnimator) -> None:
    pixels = astronaut()
    rig = animator.prepare(photo(pixels), spec(prompt="she smiles and blinks"))
    assert len(rig.scene.faces) == 1
    face = rig.scene.faces[0]
    moved = change(still(animator, pixels, prompt="she smiles and blinks"))

    def at(index: int) -> float:
        x, y = np.round(face[index]).astype(int)
        return float(moved[y - 2 : y + 3, x - 2 : x + 3].mean())

    upper_lid, mouth_corner = at(159), at(61)
    corner = float(moved[:20, -20:].mean())
    assert upper_lid > 5.0
    assert mouth_corner > 1.0
    assert corner < 0.5


def test_breathing_lifts_the_chest_only(animator: ProceduralAnimator) -> None:
    pixels = astronaut()
    frames = still(animator, pixels, prompt="the person breathes calmly", seconds=2.0)
    moved = change(frames)
    h, w = moved.shape

    chest = moved[int(0.65 * h) : int(0.8 * h), int(0.3 * w) : int(0.5 * w)].mean()
    flag = moved[int(0.5 * h) : int(0.8 * h), : int(0.05 * w)].mean()
    assert chest > 3 * flag


def test_orbit_moves_the_subject_against_the_background(animator: ProceduralAnimator) -> None:
    pixels = astronaut()
    clip = spec(camera=Camera.ORBIT, prompt="orbit around her")
    rig = animator.prepare(photo(pixels), clip)
    frames = animator.animate(photo(pixels), clip).array
    assert rig.layer is not None
    assert rig.plate is not None

    first, peak = (f.astype(np.float32).mean(axis=2) for f in (frames[0], frames[len(frames) // 4]))
    subject = rig.scene.subject > 0.5
    background = rig.scene.subject < 0.05
    window = np.outer(np.hanning(first.shape[0]), np.hanning(first.shape[1])).astype(np.float32)
    shifts = []
    for region in (subject, background):
        a = np.where(region, first, first[region].mean()) * window
        b = np.where(region, peak, peak[region].mean()) * window
        (dx, dy), _ = cv2.phaseCorrelate(a, b)
        shifts.append(np.hypot(dx, dy))
    # The near layer travels further than the far one.
    assert shifts[0] > shifts[1] + 0.5


def test_light_glows_in_bright_parts_only(animator: ProceduralAnimator) -> None:
    pixels = outdoor()
    pixels[20:40, 20:40] = 250  # a lamp
    pixels[140:160, 100:140] = (40, 30, 20)  # a dark patch
    lit = still(animator, pixels, prompt="candle light flickering")
    plain = still(animator, pixels)
    rig = animator.prepare(photo(pixels), spec(prompt="candle light flickering"))
    assert rig.glow is not None

    lamp = (slice(15, 45), slice(15, 45))
    assert change(lit)[lamp].mean() > change(plain)[lamp].mean() + 2.0
    assert change(lit)[145:155, 110:130].mean() < 1.0

"""The procedural animator's rig: layers and motion fields built from the scene, once per clip.

``analyse_scene`` finds the subject, faces, sky, water and depth; the plan's gains scale one
displacement field per motion from ``core.animation.motions``, summed per phase key on a coarse
grid. With a subject, a background plate with the subject inpainted lets the camera move
subject and background as two layers.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from core.animation import motions
from core.animation.motions import F32, Grid, Key
from core.animation.plan import MotionPlan
from core.animation.scene import Scene, analyse_scene
from core.types import Camera, ClipSpec

logger = logging.getLogger(__name__)

U8 = NDArray[np.uint8]

# NOTE: motion fields are smooth; a grid of about 320 cells on the long side costs a sixteenth
# of the full-size arithmetic at 720p. The step is a whole number of pixels so the renderer can
# upsample its maps with cv2.resize, which reproduces the camera's affine map exactly.
_GRID_EDGE = 320
# NOTE: a field whose largest offset is under a thousandth of a pixel moves nothing (its mask is
# empty: no sky, water or foliage); skipping it saves a pass per frame.
_NO_MOTION = 1e-3
# NOTE: amplitudes at strength 1 (motion 2), as fractions of the short side: the sky drifts 4%
# over a loop, vegetation sways 0.5%, water ripples 0.4%.
_SKY_DRIFT, _SWAY, _WATER = 0.04, 0.005, 0.004
# NOTE: face motions in face sizes: a 3% smile, a full blink, a 2.5% breath.
_SMILE, _BLINK, _BREATH = 0.03, 1.0, 0.025
# NOTE: region motion fades out over this fraction of the short side at each border, wider
# than 3x the largest displacement, so no sample leaves the photo.
_TAPER = 0.12
# NOTE: one breath about every 3.5 s (17 a minute, a calm adult's rate).
_BREATH_SECONDS = 3.5


@dataclass(slots=True)
class Rig:
    """Everything precomputed once per clip: layers, fields and the motion plan.

    Attributes:
        photo: the resized photo (the foreground layer).
        plate: the background layer (the photo with the subject inpainted), or None.
        layer: the foreground when layered: RGB plus coverage (0..255), else None.
        glow: highlights that brighten and flicker when the plan asks for light, else None.
        grid: the coarse grid of the fields.
        fields: displacement fields by phase key.
        drift: the sky's displacement over one loop, and the rows it touches, or None.
        region: 0..1 where the plan animates something (for benchmarks and tests).
        plan: the motion plan.
        scene: the analysed scene.
    """

    photo: U8
    plate: U8 | None
    layer: U8 | None
    glow: U8 | None
    grid: Grid
    fields: dict[Key, F32]
    drift: tuple[F32, int, int] | None
    region: F32
    plan: MotionPlan
    scene: Scene


def _to_grid(mask: F32, grid: Grid) -> F32:
    """Resample a full-size mask onto the grid."""
    small = cv2.resize(mask, (grid.width, grid.height), interpolation=cv2.INTER_AREA)
    return np.asarray(small, np.float32)


def _taper(grid: Grid, side: float) -> F32:
    """Return a window that is 1 inside and falls smoothly to 0 at every border."""
    xs, ys = grid.axes()
    w, h = (grid.width - 1) * grid.step, (grid.height - 1) * grid.step
    width = max(2.0, _TAPER * side)
    tx = np.clip(np.minimum(xs, w - xs) / width, 0.0, 1.0)
    ty = np.clip(np.minimum(ys, h - ys) / width, 0.0, 1.0)
    return np.asarray(ty * ty * (3 - 2 * ty) * tx * tx * (3 - 2 * tx), np.float32)


def _layers(photo: U8, scene: Scene) -> tuple[U8, U8]:
    """Return the inpainted background plate and the RGBA foreground layer.

    The alpha is 1 on the dilated subject and feathers outward; the plate equals the photo
    wherever the alpha is below 1, so compositing at rest gives back the photo exactly.
    """
    h, w = photo.shape[:2]
    radius = max(2, round(0.012 * min(h, w)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    core = cv2.dilate((scene.subject > 0.5).astype(np.uint8), kernel)
    alpha = np.maximum(cv2.GaussianBlur(core.astype(np.float32), (0, 0), radius), core)
    scale = min(1.0, 192 / max(h, w))
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    small = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
    hole = cv2.resize(core, size, interpolation=cv2.INTER_NEAREST)
    hole = cv2.dilate(hole, np.ones((3, 3), np.uint8))
    filled = cv2.inpaint(small, hole, 5, cv2.INPAINT_TELEA)
    filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
    plate = np.where(core[..., None] > 0, filled, photo).astype(np.uint8)
    coverage = np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return plate, np.dstack([photo, coverage])


def _face_fields(
    rig_fields: dict[Key, F32], grid: Grid, scene: Scene, plan: MotionPlan, n: int
) -> F32:
    """Add smile, blink, breathing and hair sway per face; return the subject's motion mask."""
    subject = _to_grid(scene.subject, grid)
    moved = np.zeros_like(subject)
    s = plan.strength
    for face in scene.faces:
        _add(rig_fields, ("cos", 1), motions.smile(grid, face, _SMILE * plan.face * s))
        _add(rig_fields, ("blink", 0), motions.blink(grid, face, _BLINK * min(1.0, plan.face)))
        _add(
            rig_fields, ("cos", n), motions.breathe(grid, subject, face, _BREATH * plan.breath * s)
        )
        hair = motions.hair(grid, subject, face)
        width = float(np.linalg.norm(face[454] - face[234]))
        cos_f, sin_f = motions.waves(
            grid, hair, 0.03 * width * plan.sway * s, (2.0, 3.0), (1, 0.2), 0.0
        )
        _add(rig_fields, ("cos", 1), cos_f)
        _add(rig_fields, ("sin", 1), sin_f)
        moved = np.maximum(
            moved, subject * motions.gaussian(grid, tuple(face.mean(0)), (3 * width, 4 * width))
        )
    return moved


def _add(fields: dict[Key, F32], key: Key, field: F32) -> None:
    """Accumulate a field under its phase key."""
    if key in fields:
        fields[key] += field
    else:
        fields[key] = field


def build_rig(photo: U8, plan: MotionPlan, spec: ClipSpec) -> Rig:
    """Analyse the photo and precompute layers and motion fields for ``plan``."""
    h, w = photo.shape[:2]
    scene = analyse_scene(photo)
    step = float(max(1, round(max(h, w) / _GRID_EDGE)))
    grid = Grid(math.ceil((h - 1) / step) + 1, math.ceil((w - 1) / step) + 1, step)
    rng = np.random.default_rng(spec.seed)
    shifts = rng.uniform(0.0, 2.0 * np.pi, size=4)
    side, s = float(min(h, w)), plan.strength
    taper = _taper(grid, side)
    sky, water, plants = (
        _to_grid(m, grid) * taper for m in (scene.sky, scene.water, scene.vegetation)
    )
    fields: dict[Key, F32] = {}
    cos_f, sin_f = motions.waves(
        grid, plants, _SWAY * side * s * plan.sway, (0.7, 0.9), (1, 0.3), shifts[0]
    )
    _add(fields, ("cos", 1), cos_f)
    _add(fields, ("sin", 1), sin_f)
    for k, (period, amp) in {2: (0.08, 1.0), 3: (0.05, 0.5)}.items():
        wave = motions.waves(
            grid, water, _WATER * side * s * plan.water * amp, (3.0, period), (0.3, 1.0), shifts[k]
        )
        _add(fields, ("cos", k), wave[0])
        _add(fields, ("sin", k), wave[1])
    breaths = max(1, round(spec.seconds / _BREATH_SECONDS))
    moved = (
        _face_fields(fields, grid, scene, plan, breaths) if plan.face or plan.breath else 0.0 * sky
    )
    drift = None
    if sky.max(initial=0.0) > 0.05 and plan.sky > 0:
        direction = float(rng.choice([-1.0, 1.0]))
        field = motions.sky_drift(sky, _SKY_DRIFT * side * s * plan.sky, direction)
        rows = np.nonzero(sky.max(axis=1) > 0.01)[0]
        drift = (field, int(rows[0] * step), min(h, math.ceil((rows[-1] + 1) * step) + 1))
    fields = {key: f for key, f in fields.items() if float(np.abs(f).max()) > _NO_MOTION}
    layered = scene.has_subject and plan.parallax > 0 and plan.camera is not Camera.NONE
    plate, layer = _layers(photo, scene) if layered else (None, None)
    region = np.maximum.reduce([sky, water, plants, moved])
    region = cv2.resize(region, (w, h), interpolation=cv2.INTER_LINEAR)
    glow = _glow(photo) if plan.light > 0 else None
    return Rig(
        photo, plate, layer, glow, grid, fields, drift, np.asarray(region, np.float32), plan, scene
    )


def _glow(photo: U8) -> U8:
    """Return the blurred highlights of the photo: what brightens when lights glow."""
    grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    # NOTE: grey level 200 and up reads as a light source or a specular highlight.
    mask = np.clip((grey.astype(np.float32) - 200.0) / 55.0, 0.0, 1.0)
    light = photo.astype(np.float32) * mask[..., None]
    sigma = 0.02 * max(photo.shape[:2])
    return np.asarray(np.clip(cv2.GaussianBlur(light, (0, 0), sigma), 0, 255), np.uint8)

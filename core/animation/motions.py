"""Motion fields for the procedural animator: each motion is a displacement field times a phase.

A field is an ``(h, w, 2)`` float32 array of sampling offsets in output pixels, computed on a
coarse grid (``Grid``) because every motion here is smooth. A clip frame at loop phase
``u = t / T`` samples the photo at ``x + sum_k coef_k(u) * field_k(x)``. Every coefficient is
zero at ``u = 0`` (the first frame is the photo) and periodic in ``u`` (the loop closes), except
the sky drift, which the renderer cross-fades (Holynski et al. 2021, symmetric looping).
Positive offsets sample further right/down, so content moves left/up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from core.types import Camera

F32 = NDArray[np.float32]

# Keys of coefficient functions: ("cos", k) -> cos(2 pi k u) - 1, ("sin", k) -> sin(2 pi k u),
# ("blink", 0) -> a short pulse, ("drift", 0) -> u (cross-faded by the renderer).
Key = tuple[str, int]

# NOTE: peak camera zoom above 1 at strength 1 (motion 2), per move; 1.08 for a pan gives an
# 18 px pan at 512 px, visible but gentle; >= 1.04 leaves room for the orbit's offsets.
ZOOM_PEAK = {
    Camera.NONE: 0.0,
    Camera.ZOOM_IN: 0.07,
    Camera.ZOOM_OUT: 0.07,
    Camera.PAN_LEFT: 0.08,
    Camera.PAN_RIGHT: 0.08,
    Camera.PAN_UP: 0.08,
    Camera.PAN_DOWN: 0.08,
    Camera.ORBIT: 0.06,
}
_PAN = {
    Camera.PAN_LEFT: (-1.0, 0.0),
    Camera.PAN_RIGHT: (1.0, 0.0),
    Camera.PAN_UP: (0.0, -1.0),
    Camera.PAN_DOWN: (0.0, 1.0),
}
# NOTE: a zoom-in pushes in slowly and returns quickly, a zoom-out the reverse.
_PEAK_AT = {Camera.ZOOM_IN: 0.65, Camera.ZOOM_OUT: 0.35}


@dataclass(frozen=True, slots=True)
class Grid:
    """The coarse grid fields live on: ``(height, width)`` cells, ``step`` output pixels each."""

    height: int
    width: int
    step: float

    def axes(self) -> tuple[F32, F32]:
        """Return output-pixel coordinates of the cell centres: ``xs[None, :]``, ``ys[:, None]``."""
        xs = np.arange(self.width, dtype=np.float32)[None, :] * self.step
        ys = np.arange(self.height, dtype=np.float32)[:, None] * self.step
        return xs, ys


def coefficient(key: Key, u: float, blink: tuple[float, float] = (0.6, 0.05)) -> float:
    """Return the phase coefficient ``key`` at loop phase ``u`` (0 at ``u = 0``)."""
    kind, k = key
    if kind == "cos":
        return math.cos(2.0 * math.pi * k * u) - 1.0
    if kind == "sin":
        return math.sin(2.0 * math.pi * k * u)
    if kind == "blink":
        centre, half = blink
        d = abs(u - centre)
        return 0.0 if d >= half else (1.0 + math.cos(math.pi * d / half)) / 2.0
    return u


def gaussian(grid: Grid, centre: tuple[float, float], sigma: tuple[float, float]) -> F32:
    """Separable Gaussian bump on the grid; centre and sigmas in output pixels."""
    xs, ys = grid.axes()
    gx = np.exp(-0.5 * ((xs - centre[0]) / max(sigma[0], 1e-3)) ** 2)
    gy = np.exp(-0.5 * ((ys - centre[1]) / max(sigma[1], 1e-3)) ** 2)
    return np.asarray(gy * gx, np.float32)


def vector_field(mask: F32, dx: float | F32, dy: float | F32) -> F32:
    """Stack ``mask * (dx, dy)`` into an ``(h, w, 2)`` field."""
    return np.stack([mask * dx, mask * dy], axis=-1).astype(np.float32)


def waves(
    grid: Grid,
    mask: F32,
    amp: float,
    periods: tuple[float, float],
    direction: tuple[float, float],
    shift: float,
) -> tuple[F32, F32]:
    """A travelling wave ``amp*mask*u*(sin(theta + phi) - sin(theta))`` as its cos/sin fields.

    ``theta`` advances one turn every ``periods`` (fractions of the width and height), ``u`` is
    the unit ``direction``. Returns ``(cos_field, sin_field)`` for keys ``("cos", k)`` and
    ``("sin", k)``, since ``sin(theta + phi) - sin(theta)`` equals
    ``sin(theta) (cos(phi) - 1) + cos(theta) sin(phi)``.
    """
    xs, ys = grid.axes()
    theta = 2.0 * np.pi * (xs / (periods[0] * grid.width * grid.step))
    theta = theta + 2.0 * np.pi * (ys / (periods[1] * grid.height * grid.step)) + shift
    norm = math.hypot(*direction)
    ux, uy = direction[0] / norm, direction[1] / norm
    s, c = amp * mask * np.sin(theta), amp * mask * np.cos(theta)
    return vector_field(s, ux, uy), vector_field(c, ux, uy)


def sky_drift(mask: F32, distance: float, direction: float) -> F32:
    """The sky's displacement over one whole loop: ``distance`` pixels sideways, a little down."""
    return vector_field(mask, direction * distance, 0.08 * distance)


def smile(grid: Grid, face: F32, amount: float) -> F32:
    """Mouth corners lift and widen; ``amount`` in face widths at the peak (key ``("cos", 1)``)."""
    width = float(np.linalg.norm(face[454] - face[234]))
    mouth = float(np.linalg.norm(face[291] - face[61]))
    middle = float(face[61][0] + face[291][0]) / 2.0
    field = np.zeros((grid.height, grid.width, 2), np.float32)
    # NOTE: face-mesh landmarks 61 and 291 are the mouth corners.
    for corner in (face[61], face[291]):
        outward = 1.0 if corner[0] > middle else -1.0
        bump = gaussian(grid, (float(corner[0]), float(corner[1])), (0.3 * mouth, 0.22 * mouth))
        # Content moves up and out: at the peak the cos-1 coefficient is -2, so a field of
        # (+out/2, -up/2) samples inwards and below.
        field += vector_field(bump, 0.25 * outward * amount * width, -0.5 * amount * width)
    return field


def blink(grid: Grid, face: F32, amount: float) -> F32:
    """Upper lids slide down over the eyes (key ``("blink", 0)``); ``amount`` 1 closes them."""
    field = np.zeros((grid.height, grid.width, 2), np.float32)
    # NOTE: face-mesh landmarks: upper lid, lower lid, outer and inner corners of each eye.
    for upper, lower, outer, inner in ((159, 145, 33, 133), (386, 374, 263, 362)):
        height = max(1.0, float(np.linalg.norm(face[upper] - face[lower])))
        width = float(np.linalg.norm(face[outer] - face[inner]))
        centre = (face[upper] + face[lower]) / 2.0
        # NOTE: sigma_y = 1.2 eye heights keeps the warp monotonic (0.8 * 0.6 / 1.2 < 1).
        bump = gaussian(grid, (centre[0], centre[1]), (0.6 * width, 1.2 * height))
        field += vector_field(bump, 0.0, -0.8 * min(amount, 1.0) * height)
    return field


def breathe(grid: Grid, subject: F32, face: F32, amount: float) -> F32:
    """Head and shoulders rise a little, the body stretching to a still bottom edge.

    ``amount`` is the rise at the chin in face heights; key ``("cos", n)`` for ``n`` breaths.
    Only the subject within a few face widths of this face moves, so each person in a group
    breathes on their own.
    """
    chin, top = float(face[152][1]), float(face[10][1])
    rise = amount * (chin - top)
    xs, ys = grid.axes()
    bottom = grid.height * grid.step
    ramp = np.clip((bottom - ys) / max(1.0, bottom - chin), 0.0, 1.0)
    width = float(np.linalg.norm(face[454] - face[234]))
    near = np.exp(-0.5 * ((xs - float(face[1][0])) / (1.5 * width)) ** 2)
    # cos-1 is -2 at the peak: content moves up by ``rise`` when it samples ``rise`` below.
    return vector_field((subject * ramp * near).astype(np.float32), 0.0, -0.5 * rise)


def hair(grid: Grid, subject: F32, face: F32) -> F32:
    """Mask of hair: the subject above and beside the face, outside the face oval."""
    centre = face.mean(axis=0)
    size = float(np.linalg.norm(face[152] - face[10]))
    oval = gaussian(grid, (centre[0], centre[1]), (0.35 * size, 0.45 * size))
    around = gaussian(grid, (centre[0], centre[1] - 0.2 * size), (1.0 * size, 0.8 * size))
    return np.asarray(subject * around * np.clip(1.0 - 1.6 * oval, 0.0, 1.0), np.float32)


def _ease(u: float, peak_at: float) -> float:
    """Smooth periodic bump over one loop: 0 at ``u = 0`` and ``u = 1``, 1 at ``u = peak_at``."""
    if u <= peak_at:
        return (1.0 - math.cos(math.pi * u / peak_at)) / 2.0
    return (1.0 + math.cos(math.pi * (u - peak_at) / (1.0 - peak_at))) / 2.0


def camera_pose(
    camera: Camera, strength: float, u: float, loop: bool
) -> tuple[float, float, float]:
    """Return ``(zoom, dx, dy)`` at phase ``u``; offsets are fractions of the zoom's margin.

    Loops return to the photo at ``u = 1``; open clips (``u`` from 0 to 1) move one way, and a
    zoom-out starts zoomed in and ends on the photo.
    """
    if loop:
        e = _ease(u, _PEAK_AT.get(camera, 0.5))
    else:
        e = (1.0 - math.cos(math.pi * u)) / 2.0
        e = 1.0 - e if camera is Camera.ZOOM_OUT else e
    zoom = 1.0 + ZOOM_PEAK.get(camera, 0.0) * strength * e
    if camera in _PAN:
        # NOTE: 0.95 of the margin keeps a sliver of slack for bilinear sampling.
        return zoom, 0.95 * _PAN[camera][0], 0.95 * _PAN[camera][1]
    if camera is Camera.ORBIT:
        # A cardioid: the offset grows with the zoom, so it never outruns the margin.
        phi = 2.0 * math.pi * u
        return zoom, 0.9 * math.sin(phi), 0.35 * (1.0 - math.cos(phi))
    return zoom, 0.0, 0.0

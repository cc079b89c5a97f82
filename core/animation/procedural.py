"""Step 3 of the pipeline on any CPU: a camera move plus region motion turn a photo into a clip.

Every frame is one ``cv2.remap`` of the resized photo. The sampling grid of frame ``t`` is

    camera(x, t) + sum_k a_k(t) * S_k(x) + b_k(t) * C_k(x)

where the camera is a zoom about the centre plus an offset, and ``S_k``/``C_k`` are displacement
fields precomputed once from the photo (sky flow, a low-frequency sway elsewhere, optional water
ripple), masked so the central subject barely moves and tapered to zero at the borders. Every
term is zero at ``t = 0``, so the first frame is the resized photo itself, and every term is a
periodic function of the phase ``2*pi*t/T`` for loops, so frame ``T`` would equal frame ``0``.
The zoom that hides the borders grows with the camera offset instead of being constant, so no
border shows and the first frame is untouched. Open clips (``loop=False``) move one way; a
zoom-out then starts zoomed in and ends on the photo.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

from core.errors import BackendError
from core.ports import StepCallback
from core.types import Camera, ClipSpec, Frames, Image

logger = logging.getLogger(__name__)

F32 = NDArray[np.float32]

# NOTE: a photo is never enlarged more than 2x: beyond that a remap only magnifies blur.
_MAX_UPSCALE = 2.0
# NOTE: masks are computed on a thumbnail this long; they are blurred heavily anyway.
_MASK_EDGE = 160
# NOTE: peak camera zoom above 1 at motion 2, per camera move; >= 1.04 leaves room for the
# offsets below, and 1.08 for a pan gives an 18 px pan at 512 px, visible but gentle.
_ZOOM_PEAK = {
    Camera.AUTO: 0.05,
    Camera.NONE: 0.0,
    Camera.ZOOM_IN: 0.07,
    Camera.ZOOM_OUT: 0.07,
    Camera.PAN_LEFT: 0.08,
    Camera.PAN_RIGHT: 0.08,
    Camera.PAN_UP: 0.08,
    Camera.PAN_DOWN: 0.08,
    Camera.ORBIT: 0.06,
}
# Unit offset directions (x, y) of the pans; a negative x looks further left.
_PAN = {
    Camera.PAN_LEFT: (-1.0, 0.0),
    Camera.PAN_RIGHT: (1.0, 0.0),
    Camera.PAN_UP: (0.0, -1.0),
    Camera.PAN_DOWN: (0.0, 1.0),
}
# NOTE: the fraction of a loop spent moving in the named direction: a zoom-in pushes in slowly
# and returns quickly, a zoom-out the reverse, so the two loops read differently.
_PEAK_AT = {Camera.ZOOM_IN: 0.65, Camera.ZOOM_OUT: 0.35}
# NOTE: displacement amplitudes as fractions of the short side at motion 2 (5 px of sky flow,
# 2 px of sway at 512 px); each wave term moves at most twice its amplitude.
_SKY_AMP = 0.010
_SWAY_AMP = 0.0035
_WATER_AMP = 0.004
# NOTE: region motion fades to zero over this fraction of the short side at each border, wide
# enough (>= 3x the largest displacement) that no sample leaves the photo.
_TAPER = 0.12

_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True, slots=True)
class MotionPlan:
    """What moves in a clip, chosen from the spec and keyword hints in its prompt.

    Attributes:
        camera: the camera move; ``AUTO`` means a gentle zoom-in with a slight seeded drift.
        strength: amplitude scale, ``motion / 2`` (0 = still frames).
        sky: gain of the sky flow.
        sway: gain of the sway outside the sky.
        water: gain of the ripple in the lower part (0 = none).
        sky_prior: whether to treat the upper part as sky even where colour says otherwise.
    """

    camera: Camera
    strength: float
    sky: float = 1.0
    sway: float = 1.0
    water: float = 0.0
    sky_prior: bool = False


@dataclass(slots=True)
class _Wave:
    """Fields of time frequency ``k``: ``a_k = cos(k*phi) - 1``, ``b_k = sin(k*phi)``."""

    k: int
    sx: F32
    sy: F32
    cx: F32
    cy: F32


@dataclass(slots=True)
class _Grid:
    """Everything precomputed once per clip."""

    height: int
    width: int
    waves: list[_Wave] = field(default_factory=list)


def plan_motion(spec: ClipSpec) -> MotionPlan:
    """Pick camera move and region gains from the spec and simple prompt keywords.

    Args:
        spec: the clip spec; an explicit ``spec.camera`` wins over prompt words.

    Returns:
        The plan; its ``strength`` is 0 when ``spec.motion`` is 0.
    """
    words = set(_WORD.findall(spec.prompt.lower()))
    strength = max(0.0, min(4.0, float(spec.motion))) / 2.0
    camera, sky, sway, water, prior = spec.camera, 1.0, 1.0, 0.0, False
    if "still" in words:
        camera = Camera.NONE if camera is Camera.AUTO else camera
        strength *= 0.5
    if camera is Camera.AUTO and "zoom" in words:
        camera = Camera.ZOOM_OUT if "out" in words else Camera.ZOOM_IN
    if camera is Camera.AUTO and "pan" in words:
        camera = next((c for c in _PAN if c.value.removeprefix("pan_") in words), Camera.PAN_RIGHT)
    if words & {"cloud", "clouds", "sky"}:
        sky, prior = 1.5, True
    if words & {"water", "waves", "wave", "sea", "ocean", "lake", "river"}:
        water, sway = 1.0, 0.7
    return MotionPlan(camera, strength, sky, sway, water, prior)


def output_size(height: int, width: int, size: int) -> tuple[int, int]:
    """Return the even ``(height, width)`` with long edge about ``size``, at most 2x the photo."""
    scale = min(size / max(height, width), _MAX_UPSCALE)
    out_h = max(2, int(height * scale) // 2 * 2)
    out_w = max(2, int(width * scale) // 2 * 2)
    return out_h, out_w


def resize_photo(pixels: NDArray[np.uint8], size: int) -> NDArray[np.uint8]:
    """Resize a photo to the clip size (area filter down, bilinear up)."""
    out_h, out_w = output_size(pixels.shape[0], pixels.shape[1], size)
    shrinking = out_w < pixels.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized = cv2.resize(pixels, (out_w, out_h), interpolation=interpolation)
    return np.ascontiguousarray(resized, dtype=np.uint8)


def _smoothstep(x: F32) -> F32:
    """Cubic ease from 0 at ``x <= 0`` to 1 at ``x >= 1``."""
    x = np.clip(x, 0.0, 1.0)
    return (x * x * (3.0 - 2.0 * x)).astype(np.float32)


def _region_masks(photo: NDArray[np.uint8], plan: MotionPlan) -> tuple[F32, F32, F32]:
    """Return ``(sky, keep, lower)`` masks in 0..1 on a thumbnail of the photo.

    ``sky`` marks blue or bright, low-texture pixels in the upper part; ``keep`` is low on the
    central subject; ``lower`` is the bottom part where water would be.
    """
    h, w = photo.shape[:2]
    scale = min(1.0, _MASK_EDGE / max(h, w))
    thumb_size = (max(8, round(w * scale)), max(8, round(h * scale)))
    small = cv2.resize(photo, thumb_size, interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    # NOTE: OpenCV hue is 0..180; 90..135 spans cyan to blue skies; bright and unsaturated
    # covers overcast sky and white clouds.
    colour = ((hue >= 90) & (hue <= 135) & (sat > 40) & (val > 90)) | ((val > 190) & (sat < 50))
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    texture = cv2.GaussianBlur(np.abs(cv2.Laplacian(grey, cv2.CV_32F)), (0, 0), 2.0)
    # NOTE: a mean |Laplacian| of 12 grey levels is foliage or buildings, not sky.
    smooth = np.clip(1.0 - texture / 12.0, 0.0, 1.0)
    rows = np.linspace(0.0, 1.0, sh, dtype=np.float32)[:, None]
    upper = np.clip((0.65 - rows) / 0.25, 0.0, 1.0)
    sky = colour.astype(np.float32) * smooth * upper
    if plan.sky_prior:
        sky = np.maximum(sky, 0.6 * upper * np.ones((1, sw), np.float32))
    sky = cv2.GaussianBlur(sky, (0, 0), 0.03 * max(sh, sw))
    cols = np.linspace(0.0, 1.0, sw, dtype=np.float32)[None, :]
    # NOTE: the subject is assumed near the centre, slightly low (rule-of-thirds portraits).
    subject = np.exp(-(((cols - 0.5) / 0.22) ** 2) - ((rows - 0.55) / 0.28) ** 2)
    keep = (1.0 - 0.9 * subject).astype(np.float32)
    lower = np.clip((rows - 0.55) / 0.15, 0.0, 1.0) * np.ones((1, sw), np.float32)
    return _upsize(sky, h, w), _upsize(keep, h, w), _upsize(lower, h, w)


def _upsize(mask: NDArray[np.floating], h: int, w: int) -> F32:
    """Resize a thumbnail mask to the clip size."""
    resized = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return np.asarray(resized, dtype=np.float32)


def _border_taper(h: int, w: int) -> F32:
    """Return a window that is 1 inside and falls to 0 at every border."""
    width = max(2.0, _TAPER * min(h, w))
    ys = np.minimum(np.arange(h), h - 1 - np.arange(h)).astype(np.float32) / width
    xs = np.minimum(np.arange(w), w - 1 - np.arange(w)).astype(np.float32) / width
    return np.outer(_smoothstep(ys), _smoothstep(xs)).astype(np.float32)


def _wave_fields(
    mask: F32,
    amp: float,
    periods: tuple[float, float],
    direction: tuple[float, float],
    shift: float,
) -> tuple[F32, F32, F32, F32]:
    """Fields of ``amp*mask*u*(sin(theta+phi) - sin(theta))`` split into sin and cos parts.

    ``theta`` advances one turn every ``periods`` (fractions of width, height); ``u`` is the
    unit ``direction``. Returns ``(sx, sy, cx, cy)``.
    """
    h, w = mask.shape
    xs = np.arange(w, dtype=np.float32)[None, :] / (periods[0] * w)
    ys = np.arange(h, dtype=np.float32)[:, None] / (periods[1] * h)
    theta = 2.0 * np.pi * (xs + ys) + shift
    norm = math.hypot(*direction)
    ux, uy = direction[0] / norm, direction[1] / norm
    s, c = (amp * mask * np.sin(theta)), (amp * mask * np.cos(theta))
    return (
        (ux * s).astype(np.float32),
        (uy * s).astype(np.float32),
        (ux * c).astype(np.float32),
        (uy * c).astype(np.float32),
    )


def _build_grid(photo: NDArray[np.uint8], plan: MotionPlan, rng: np.random.Generator) -> _Grid:
    """Precompute the displacement fields of every region motion."""
    h, w = photo.shape[:2]
    grid = _Grid(h, w)
    sky, keep, lower = _region_masks(photo, plan)
    base = keep * _border_taper(h, w)
    side = float(min(h, w)) * plan.strength
    shifts = rng.uniform(0.0, 2.0 * np.pi, size=3)
    drift = float(rng.choice([-1.0, 1.0]))
    terms: dict[int, list[tuple[F32, F32, F32, F32]]] = {1: [], 2: []}
    # Sky: a slow horizontal flow; sway: a broad low-frequency lean; water: a fast ripple.
    terms[1].append(
        _wave_fields(sky * base, _SKY_AMP * side * plan.sky, (0.9, 2.5), (drift, 0.15), shifts[0])
    )
    terms[1].append(
        _wave_fields(
            (1.0 - sky) * base,
            _SWAY_AMP * side * plan.sway,
            (0.7, 0.9),
            (1.0, 0.3),
            shifts[1],
        )
    )
    if plan.water > 0:
        terms[2].append(
            _wave_fields(
                lower * base, _WATER_AMP * side * plan.water, (3.0, 0.08), (0.3, 1.0), shifts[2]
            )
        )
    for k, parts in terms.items():
        if parts:
            sx, sy, cx, cy = (_add_all([p[i] for p in parts]) for i in range(4))
            grid.waves.append(_Wave(k, sx, sy, cx, cy))
    return grid


def _add_all(fields: list[F32]) -> F32:
    """Sum same-shaped fields into a new array."""
    total = fields[0].copy()
    for extra in fields[1:]:
        total += extra
    return total


def _ease(u: float, peak_at: float) -> float:
    """Smooth periodic bump over one loop: 0 at ``u = 0`` and ``u = 1``, 1 at ``u = peak_at``."""
    if u <= peak_at:
        return (1.0 - math.cos(math.pi * u / peak_at)) / 2.0
    return (1.0 + math.cos(math.pi * (u - peak_at) / (1.0 - peak_at))) / 2.0


def _camera(
    plan: MotionPlan, t: int, count: int, loop: bool, drift: tuple[float, float]
) -> tuple[float, float, float]:
    """Return ``(zoom, dx, dy)`` of frame ``t``; offsets are fractions of the zoom's margin."""
    cam = plan.camera
    if loop:
        u = t / count
        e = _ease(u, _PEAK_AT.get(cam, 0.5))
    else:
        # Open clips move one way, ending where a loop would turn.
        u = t / max(1, count - 1)
        e = (1.0 - math.cos(math.pi * u)) / 2.0
        e = 1.0 - e if cam is Camera.ZOOM_OUT else e
    zoom = 1.0 + _ZOOM_PEAK[cam] * plan.strength * e
    if cam in _PAN:
        # NOTE: 0.95 of the margin keeps a sliver of slack for bilinear sampling.
        return zoom, 0.95 * _PAN[cam][0], 0.95 * _PAN[cam][1]
    if cam is Camera.ORBIT:
        # A cardioid: offset grows with the zoom, so it never outruns the margin.
        phi = 2.0 * math.pi * u
        return zoom, 0.9 * math.cos(phi), 0.9 * math.sin(phi)
    if cam is Camera.AUTO:
        return zoom, 0.5 * drift[0], 0.5 * drift[1]
    return zoom, 0.0, 0.0


def _render(
    photo: NDArray[np.uint8],
    grid: _Grid,
    plan: MotionPlan,
    spec: ClipSpec,
    drift: tuple[float, float],
) -> NDArray[np.uint8]:
    """Remap the photo once per frame."""
    h, w, count = grid.height, grid.width, spec.frame_count
    out = np.empty((count, h, w, 3), dtype=np.uint8)
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    xs = np.arange(w, dtype=np.float32) - cx
    ys = np.arange(h, dtype=np.float32)[:, None] - cy
    map_x = np.empty((h, w), np.float32)
    map_y = np.empty((h, w), np.float32)
    for t in range(count):
        zoom, dx, dy = _camera(plan, t, count, spec.loop, drift)
        margin = 1.0 - 1.0 / zoom
        map_x[:] = xs / zoom + (cx + dx * cx * margin)
        map_y[:] = ys / zoom + (cy + dy * cy * margin)
        phi = 2.0 * math.pi * t / count
        for wave in grid.waves:
            a, b = math.cos(wave.k * phi) - 1.0, math.sin(wave.k * phi)
            for target, s, c in ((map_x, wave.sx, wave.cx), (map_y, wave.sy, wave.cy)):
                # One fused pass each (target += a*s), about twice numpy's multiply-then-add.
                cv2.scaleAdd(s, a, target, dst=target)
                cv2.scaleAdd(c, b, target, dst=target)
        cv2.remap(
            photo, map_x, map_y, cv2.INTER_LINEAR, dst=out[t], borderMode=cv2.BORDER_REFLECT_101
        )
    return out


class ProceduralAnimator:
    """Animates a photo on the CPU: a gentle camera move plus region-aware displacement.

    Deterministic for a given photo and spec (``spec.seed`` picks wave phases and drift).
    """

    name = "procedural"
    model = "procedural-1"

    def animate(self, image: Image, spec: ClipSpec, on_step: StepCallback | None = None) -> Frames:
        """Return ``spec.frame_count`` RGB frames of the photo, long edge about ``spec.size``.

        ``on_step`` is ignored: a procedural clip takes a fraction of a second.

        Raises:
            BackendError: the pixels are not an ``(H, W, 3)`` uint8 array, or the size is < 2.
        """
        pixels = image.pixels
        if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
            raise BackendError(
                f"expected (H, W, 3) uint8 pixels, got {pixels.shape} {pixels.dtype}"
            )
        if spec.size < 2 or spec.fps < 1:
            raise BackendError(f"bad clip size {spec.size} or fps {spec.fps}")
        photo = resize_photo(np.ascontiguousarray(pixels), spec.size)
        plan = plan_motion(spec)
        count = spec.frame_count
        if plan.strength == 0.0:
            return Frames(np.repeat(photo[None], count, axis=0), spec.fps)
        rng = np.random.default_rng(spec.seed)
        grid = _build_grid(photo, plan, rng)
        angle = float(rng.uniform(0.0, 2.0 * np.pi))
        drift = (math.cos(angle), math.sin(angle))
        logger.debug(
            "animating %dx%d, %d frames, camera %s", grid.width, grid.height, count, plan.camera
        )
        return Frames(_render(photo, grid, plan, spec, drift), spec.fps)

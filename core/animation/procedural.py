"""Step 3 of the pipeline on any CPU: scene analysis, a plan and smooth warps bring a photo to life.

``plan_motion`` turns prompt and options into gains, ``build_rig`` analyses the photo and
precomputes layers and motion fields, and each frame here sums the fields with their phase
coefficients, maps the sum through the camera (one ``warpAffine``, which also upsamples the
coarse grid) and samples the photo once (``remap``). With a subject, subject and background
move as two layers and are composited; the sky drifts and is cross-faded with its own drift
one loop earlier, so it closes (symmetric looping, Holynski et al. 2021). Every phase term is
zero at the first frame, so frame 0 is the resized photo, and periodic over the clip, so the
last frame flows into the first.
"""

from __future__ import annotations

import logging
import math

import cv2
import numpy as np
from numpy.typing import NDArray

from core.animation import motions
from core.animation.motions import F32
from core.animation.plan import plan_motion
from core.animation.rig import Rig, build_rig
from core.errors import BackendError
from core.ports import StepCallback
from core.types import ClipSpec, Frames, Image

logger = logging.getLogger(__name__)

U8 = NDArray[np.uint8]

# NOTE: a photo is never enlarged more than 2x: beyond that a remap only magnifies blur.
_MAX_UPSCALE = 2.0
# NOTE: how much less the background moves than the subject per unit of parallax gain
# (0.45 at gain 1, capped so the background never freezes).
_PARALLAX, _PARALLAX_MAX = 0.45, 0.8
# NOTE: a blink lasts about 0.25 s (closing and opening), wherever the loop is.
_BLINK_HALF_SECONDS = 0.12


def output_size(height: int, width: int, size: int) -> tuple[int, int]:
    """Return the even ``(height, width)`` with long edge about ``size``, at most 2x the photo."""
    scale = min(size / max(height, width), _MAX_UPSCALE)
    out_h = max(2, int(height * scale) // 2 * 2)
    out_w = max(2, int(width * scale) // 2 * 2)
    return out_h, out_w


def resize_photo(pixels: U8, size: int) -> U8:
    """Resize a photo to the clip size (area filter down, bilinear up)."""
    out_h, out_w = output_size(pixels.shape[0], pixels.shape[1], size)
    shrinking = out_w < pixels.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized = cv2.resize(pixels, (out_w, out_h), interpolation=interpolation)
    return np.ascontiguousarray(resized, dtype=np.uint8)


def _camera_matrix(rig: Rig, pose: tuple[float, float, float], row0: int = 0) -> F32:
    """Return the output-pixel to grid-cell affine map of a camera pose (rows from ``row0``)."""
    zoom, dx, dy = pose
    h, w = rig.photo.shape[:2]
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    margin = 1.0 - 1.0 / zoom
    step = rig.grid.step
    scale = 1.0 / (zoom * step)
    tx = (cx - cx / zoom + dx * cx * margin) / step
    ty = (cy - cy / zoom + dy * cy * margin) / step + scale * row0
    return np.array([[scale, 0.0, tx], [0.0, scale, ty]], np.float32)


def _sample(rig: Rig, field: F32, pose: tuple[float, float, float], rows: tuple[int, int]) -> F32:
    """Return the sampling map of output rows ``rows`` for a summed field and camera pose."""
    w = rig.photo.shape[1]
    matrix = _camera_matrix(rig, pose, rows[0])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    size = (w, rows[1] - rows[0])
    return np.asarray(
        cv2.warpAffine(field, matrix, size, flags=flags, borderMode=cv2.BORDER_REPLICATE),
        np.float32,
    )


def _remap(source: U8, where: F32, border: int = cv2.BORDER_REFLECT_101) -> U8:
    """Sample ``source`` bilinearly at the ``(h, w, 2)`` map ``where``."""
    frame = cv2.remap(source, where, None, cv2.INTER_LINEAR, borderMode=border)  # type: ignore[call-overload]
    return np.asarray(frame, np.uint8)


def _light(rig: Rig, u: float, phases: NDArray[np.float64]) -> float:
    """Glow pulse plus a looping flicker, zero at ``u = 0``."""
    pulse = 0.5 * (1.0 - math.cos(2.0 * math.pi * u))
    flicker = sum(
        0.15 * (math.sin(2.0 * math.pi * k * u + p) - math.sin(p))
        for k, p in zip((3, 7, 11), phases, strict=True)
    )
    return 0.6 * rig.plan.light * rig.plan.strength * (pulse + flicker)


def _background(rig: Rig, scene_map: F32, pose: tuple[float, float, float], u: float) -> U8:
    """Render the background (or the whole photo): the sky drifts and cross-fades."""
    h = rig.photo.shape[0]
    source = rig.plate if rig.plate is not None else rig.photo
    ahead = scene_map if rig.drift is None else scene_map + u * rig.drift[0]
    frame = _remap(source, _sample(rig, ahead, pose, (0, h)))
    if rig.drift is not None and rig.plan.loop and u > 0:
        field, r0, r1 = rig.drift
        behind = _sample(rig, scene_map + (u - 1.0) * field, pose, (r0, r1))
        past = _remap(source, behind)
        frame[r0:r1] = cv2.addWeighted(frame[r0:r1], 1.0 - u, past, u, 0.0)
    return frame


def render(rig: Rig, spec: ClipSpec) -> U8:
    """Render every frame of the clip from its rig; returns ``(T, H, W, 3)`` uint8."""
    h, w = rig.photo.shape[:2]
    count, plan = spec.frame_count, rig.plan
    out = np.empty((count, h, w, 3), np.uint8)
    gx, gy = rig.grid.axes()
    base = np.stack(np.broadcast_arrays(gx, gy), axis=-1).astype(np.float32)
    rng = np.random.default_rng(spec.seed + 1)
    half = min(0.2, _BLINK_HALF_SECONDS / max(spec.seconds, 1e-3))
    blink = (float(rng.uniform(0.35 + half, 0.8 - half)), half)
    phases = rng.uniform(0.0, 2.0 * np.pi, size=3)
    back = 1.0 - min(_PARALLAX_MAX, _PARALLAX * plan.parallax)
    scene_map = np.empty_like(base)
    for t in range(count):
        u = t / count if plan.loop else t / max(1, count - 1)
        scene_map[:] = base
        for key, field in rig.fields.items():
            cv2.scaleAdd(field, motions.coefficient(key, u, blink), scene_map, dst=scene_map)
        pose = motions.camera_pose(plan.camera, plan.strength, u, plan.loop)
        if rig.layer is None:
            out[t] = _background(rig, scene_map, pose, u)
        else:
            back_pose = (1.0 + (pose[0] - 1.0) * back, pose[1], pose[2])
            bg = _background(rig, scene_map, back_pose, u)
            fg_map = _sample(rig, scene_map, pose, (0, h))
            # Colour and coverage travel together: one remap of RGBA instead of two.
            fg = _remap(rig.layer, fg_map)
            alpha = fg[..., 3].astype(np.float32) * np.float32(1.0 / 255.0)
            rgb = np.ascontiguousarray(fg[..., :3])
            out[t] = cv2.blendLinear(rgb, bg, alpha, 1.0 - alpha)
        if rig.glow is not None:
            glow = _remap(rig.glow, _sample(rig, scene_map, pose, (0, h)))
            cv2.addWeighted(out[t], 1.0, glow, _light(rig, u, phases), 0.0, dst=out[t])
    return out


class ProceduralAnimator:
    """Animates a photo on the CPU: camera, sky, water, sway, face and light from one plan.

    Deterministic for a given photo and spec (``spec.seed`` picks wave phases, drift direction
    and the blink's moment). The MediaPipe and MiniLM models load lazily on first use.
    """

    name = "procedural"
    model = "procedural-2"

    def prepare(self, image: Image, spec: ClipSpec) -> Rig:
        """Validate, resize, plan and analyse: everything but the frames.

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
        return build_rig(photo, plan_motion(spec), spec)

    def animate(self, image: Image, spec: ClipSpec, on_step: StepCallback | None = None) -> Frames:
        """Return ``spec.frame_count`` RGB frames of the photo, long edge about ``spec.size``.

        ``on_step`` is ignored: a procedural clip takes a fraction of a second.

        Raises:
            BackendError: the pixels are not an ``(H, W, 3)`` uint8 array, or the size is < 2.
        """
        rig = self.prepare(image, spec)
        if rig.plan.strength == 0.0:
            return Frames(np.repeat(rig.photo[None], spec.frame_count, axis=0), spec.fps)
        logger.debug(
            "animating %dx%d, %d frames, plan %s",
            rig.photo.shape[1],
            rig.photo.shape[0],
            spec.frame_count,
            rig.plan.presets,
        )
        return Frames(render(rig, spec), spec.fps)

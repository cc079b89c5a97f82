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


Pose = tuple[float, float, float]


def _camera(rig: Rig, pose: Pose) -> tuple[float, float, float]:
    """Return ``(scale, tx, ty)``: output pixel ``p`` shows photo pixel ``scale * p + t``."""
    zoom, dx, dy = pose
    h, w = rig.photo.shape[:2]
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    margin = 1.0 - 1.0 / zoom
    return 1.0 / zoom, cx - cx / zoom + dx * cx * margin, cy - cy / zoom + dy * cy * margin


class _FrameRenderer:
    """Renders the frames of one clip into buffers allocated once per clip.

    A sampling map is built on a coarse grid (``k = rig.grid.step`` output pixels a cell): the
    camera's affine map exactly plus the displacement sampled where the camera looks, then
    ``cv2.resize`` upsamples it by ``k``, and one ``remap`` per layer samples the pixels.
    Bilinear upsampling reproduces the affine part exactly; the coarse grid starts a cell and a
    half outside the frame, so the resize's clamped border never lands inside it.
    """

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        h, w = rig.photo.shape[:2]
        self.k = k = round(rig.grid.step)
        self.cols = (w - 1) // k + 3
        self.fine = np.empty((((h - 1) // k + 3) * k, self.cols * k, 2), np.float32)
        self.past = np.empty((h, w, 3), np.uint8) if rig.drift is not None else None
        self.fg = np.empty((h, w, 4), np.uint8) if rig.layer is not None else None
        self.glow = np.empty((h, w, 3), np.uint8) if rig.glow is not None else None
        self.scratch = tuple(np.empty((h, w, 3), np.uint8) for _ in range(4))

    def sample_map(self, disp: F32, pose: Pose, rows: tuple[int, int]) -> F32:
        """Return the ``(rows, w, 2)`` map of output rows ``rows`` (a view into ``self.fine``)."""
        k, (r0, r1), w = self.k, rows, self.rig.photo.shape[1]
        a0, a1 = r0 // k, (r1 - 1) // k + 3
        scale, tx, ty = _camera(self.rig, pose)
        # Coarse cell i sits at output pixel i * k + first: the centre of its k fine pixels.
        first = k / 2.0 - 0.5 - k
        px = (np.arange(self.cols) * k + first) * scale + tx
        py = (np.arange(a0, a1) * k + first) * scale + ty
        matrix = np.array([[scale, 0.0, px[0] / k], [0.0, scale, py[0] / k]], np.float32)
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        size = (self.cols, a1 - a0)
        coarse = np.asarray(
            cv2.warpAffine(disp, matrix, size, flags=flags, borderMode=cv2.BORDER_REPLICATE),
            np.float32,
        )
        coarse[..., 0] += px.astype(np.float32)
        coarse[..., 1] += py.astype(np.float32)[:, None]
        fine = coarse
        if k > 1:
            fine = self.fine[: (a1 - a0) * k]
            cv2.resize(coarse, (self.cols * k, (a1 - a0) * k), dst=fine)
        top = r0 - a0 * k + k
        return np.asarray(fine[top : top + r1 - r0, k : k + w], np.float32)

    def background(self, frame: U8, disp: F32, pose: Pose, u: float) -> bool:
        """Render the background (or the whole photo) into ``frame``; the sky drifts and fades.

        Returns whether the glow was sampled too (its map is this one when nothing drifts).
        """
        rig = self.rig
        source = rig.plate if rig.plate is not None else rig.photo
        ahead = disp if rig.drift is None else disp + np.float32(u) * rig.drift[0]
        where = self.sample_map(ahead, pose, (0, frame.shape[0]))
        _remap(source, where, frame)
        glowed = rig.drift is None and rig.layer is None and self.glow is not None
        if glowed:
            _remap(rig.glow, where, self.glow)  # type: ignore[arg-type]
        if rig.drift is not None and self.past is not None and rig.plan.loop and u > 0:
            field, r0, r1 = rig.drift
            past = self.past[: r1 - r0]
            behind = self.sample_map(disp + np.float32(u - 1.0) * field, pose, (r0, r1))
            _remap(source, behind, past)
            cv2.addWeighted(frame[r0:r1], 1.0 - u, past, u, 0.0, dst=frame[r0:r1])
        return glowed

    def foreground(self, frame: U8, disp: F32, pose: Pose) -> None:
        """Lay the subject over ``frame`` and sample the glow, both at the full camera pose."""
        rig = self.rig
        where = self.sample_map(disp, pose, (0, frame.shape[0]))
        if rig.glow is not None and self.glow is not None:
            _remap(rig.glow, where, self.glow)
        if rig.layer is not None and self.fg is not None:
            _remap(rig.layer, where, self.fg)
            _composite(frame, self.fg, self.scratch)


def _remap(source: U8, where: F32, dst: U8) -> None:
    """Sample ``source`` bilinearly at the map ``where`` into ``dst``."""
    flags, border = cv2.INTER_LINEAR, cv2.BORDER_REFLECT_101
    cv2.remap(source, where, None, flags, dst=dst, borderMode=border)  # type: ignore[call-overload]


def _composite(frame: U8, fg: U8, scratch: tuple[U8, ...]) -> None:
    """Lay the RGBA ``fg`` over ``frame`` in place: ``frame + (fg - frame) * a``.

    The positive and negative parts of the difference are scaled apart in uint8, so the result
    is rounded once, as a float blend would be (and exact where ``fg`` equals ``frame``), at
    less than half the cost of ``blendLinear``.
    """
    colour, alpha, up, down = scratch
    cv2.cvtColor(fg, cv2.COLOR_RGBA2RGB, dst=colour)
    coverage = cv2.extractChannel(fg, 3)
    cv2.merge([coverage, coverage, coverage], dst=alpha)
    cv2.subtract(colour, frame, dst=up)
    cv2.subtract(frame, colour, dst=down)
    cv2.multiply(up, alpha, dst=up, scale=1.0 / 255.0)
    cv2.multiply(down, alpha, dst=down, scale=1.0 / 255.0)
    cv2.add(frame, up, dst=frame)
    cv2.subtract(frame, down, dst=frame)


def _light(rig: Rig, u: float, phases: NDArray[np.float64]) -> float:
    """Glow pulse plus a looping flicker, zero at ``u = 0``."""
    pulse = 0.5 * (1.0 - math.cos(2.0 * math.pi * u))
    flicker = sum(
        0.15 * (math.sin(2.0 * math.pi * k * u + p) - math.sin(p))
        for k, p in zip((3, 7, 11), phases, strict=True)
    )
    return 0.6 * rig.plan.light * rig.plan.strength * (pulse + flicker)


def render(rig: Rig, spec: ClipSpec) -> U8:
    """Render every frame of the clip from its rig; returns ``(T, H, W, 3)`` uint8."""
    h, w = rig.photo.shape[:2]
    count, plan = spec.frame_count, rig.plan
    out = np.empty((count, h, w, 3), np.uint8)
    renderer = _FrameRenderer(rig)
    rng = np.random.default_rng(spec.seed + 1)
    half = min(0.2, _BLINK_HALF_SECONDS / max(spec.seconds, 1e-3))
    blink = (float(rng.uniform(0.35 + half, 0.8 - half)), half)
    phases = rng.uniform(0.0, 2.0 * np.pi, size=3)
    back = 1.0 - min(_PARALLAX_MAX, _PARALLAX * plan.parallax)
    disp = np.empty((rig.grid.height, rig.grid.width, 2), np.float32)
    for t in range(count):
        u = t / count if plan.loop else t / max(1, count - 1)
        disp.fill(0.0)
        for key, field in rig.fields.items():
            cv2.scaleAdd(field, motions.coefficient(key, u, blink), disp, dst=disp)
        pose = motions.camera_pose(plan.camera, plan.strength, u, plan.loop)
        back_pose = pose if rig.layer is None else (1.0 + (pose[0] - 1.0) * back, *pose[1:])
        glowed = renderer.background(out[t], disp, back_pose, u)
        if not glowed and (rig.layer is not None or rig.glow is not None):
            renderer.foreground(out[t], disp, pose)
        if renderer.glow is not None:
            cv2.addWeighted(out[t], 1.0, renderer.glow, _light(rig, u, phases), 0.0, dst=out[t])
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

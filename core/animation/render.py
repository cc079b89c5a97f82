"""Frames of a procedural clip from its rig: per-frame sampling maps, one remap per layer.

Each frame sums the rig's motion fields with their phase coefficients on the coarse grid, maps
the sum through the camera and samples each layer once (``cv2.remap``). With a subject, subject
and background move as two layers and are composited; the sky drifts and is cross-faded with
its own drift one loop earlier, so it closes (symmetric looping, Holynski et al. 2021). Every
phase term is zero at the first frame, so frame 0 is the resized photo, and periodic over the
clip, so the last frame flows into the first. All buffers are allocated once per clip.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from core.animation import motions
from core.animation.motions import F32
from core.animation.rig import Rig
from core.types import ClipSpec

U8 = NDArray[np.uint8]
Pose = tuple[float, float, float]
Window = tuple[int, int, int, int]

# NOTE: how much less the background moves than the subject per unit of parallax gain
# (0.45 at gain 1, capped so the background never freezes).
_PARALLAX, _PARALLAX_MAX = 0.45, 0.8
# NOTE: a blink lasts about 0.25 s (closing and opening), wherever the loop is.
_BLINK_HALF_SECONDS = 0.12


def _camera(rig: Rig, pose: Pose) -> tuple[float, float, float]:
    """Return ``(scale, tx, ty)``: output pixel ``p`` shows photo pixel ``scale * p + t``."""
    zoom, dx, dy = pose
    h, w = rig.photo.shape[:2]
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    margin = 1.0 - 1.0 / zoom
    return 1.0 / zoom, cx - cx / zoom + dx * cx * margin, cy - cy / zoom + dy * cy * margin


def _buffer(size: int) -> U8:
    """Return a flat scratch buffer; OpenCV writes a ``dst`` in place only if it is contiguous."""
    return np.empty(size, np.uint8)


def _view(buffer: U8, shape: tuple[int, ...]) -> U8:
    """Return the leading part of a flat buffer as a contiguous array of ``shape``."""
    return buffer[: math.prod(shape)].reshape(shape)


class FrameRenderer:
    """Renders the frames of one clip into buffers allocated once per clip.

    A sampling map is built on a coarse grid (``k = rig.grid.step`` output pixels a cell): the
    camera's affine map exactly plus the displacement sampled where the camera looks, then
    ``cv2.resize`` upsamples it by ``k``. Bilinear upsampling reproduces the affine part
    exactly; the coarse grid starts a cell and a half outside the frame, so the resize's clamped
    border never lands inside it. The subject layer is sampled and composited only inside the
    window where it can appear this frame.
    """

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        h, w = rig.photo.shape[:2]
        self.k = k = round(rig.grid.step)
        self.cols = (w - 1) // k + 3
        self.fine = np.empty((((h - 1) // k + 3) * k, self.cols * k, 2), np.float32)
        self.past = np.empty((h, w, 3), np.uint8) if rig.drift is not None else None
        self.glow = np.empty((h, w, 3), np.uint8) if rig.glow is not None else None
        self.fg = _buffer(h * w * 4)
        self.scratch = tuple(_buffer(h * w * 3) for _ in range(4))
        # The subject's bounding box in photo pixels, and each field's largest offset.
        # The subject's bounding box and its largest opaque rectangle, in photo pixels.
        self.box = self.solid = (0, 0, -1, -1)
        if rig.layer is not None and rig.layer[..., 3].any():
            ys, xs = np.nonzero(rig.layer[..., 3])
            self.box = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
            self.solid = _solid(rig.layer[..., 3])
        self.peaks = {key: float(np.abs(f).max()) for key, f in rig.fields.items()}
        # Coarse cell i sits at output pixel i * k + first (the centre of its k fine pixels);
        # ``cells`` holds the output pixel of every coarse cell.
        first = k / 2.0 - 0.5 - k
        self.at = np.arange(max(self.cols, self.fine.shape[0] // k)) * k + first
        at = self.at.astype(np.float32)
        self.cells = np.stack(np.broadcast_arrays(at[None, : self.cols], at[:, None]), axis=-1)
        self.moved = np.empty((rig.grid.height, rig.grid.width, 2), np.float32)

    def sample_map(self, disp: F32, pose: Pose, rows: tuple[int, int]) -> F32:
        """Return the ``(rows, w, 2)`` map of output rows ``rows`` (a view into ``self.fine``)."""
        k, (r0, r1), w = self.k, rows, self.rig.photo.shape[1]
        a0, a1 = r0 // k, (r1 - 1) // k + 3
        scale, tx, ty = _camera(self.rig, pose)
        # The displacement where the camera looks (grid cells are k pixels), plus the camera's
        # own affine map computed exactly.
        x0, y0 = self.at[0] * scale + tx, self.at[a0] * scale + ty
        matrix = np.array([[scale, 0.0, x0 / k], [0.0, scale, y0 / k]], np.float32)
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        size = (self.cols, a1 - a0)
        coarse = np.asarray(
            cv2.warpAffine(disp, matrix, size, flags=flags, borderMode=cv2.BORDER_REPLICATE),
            np.float32,
        )
        cv2.scaleAdd(self.cells[a0:a1], scale, coarse, dst=coarse)
        cv2.add(coarse, (tx, ty, 0.0, 0.0), dst=coarse)  # type: ignore[call-overload]
        fine = coarse
        if k > 1:
            fine = self.fine[: (a1 - a0) * k]
            cv2.resize(coarse, (self.cols * k, (a1 - a0) * k), dst=fine)
        top = r0 - a0 * k + k
        return np.asarray(fine[top : top + r1 - r0, k : k + w], np.float32)

    def background(self, frame: U8, disp: F32, pose: Pose, u: float, hole: Window | None) -> bool:
        """Render the background (or the whole photo) into ``frame``; the sky drifts and fades.

        Pixels in ``hole`` are left alone: the opaque subject covers them. Returns whether the
        glow was sampled too (its map is this one when nothing drifts).
        """
        h, w = frame.shape[:2]
        rig = self.rig
        source = rig.plate if rig.plate is not None else rig.photo
        ahead = disp
        if rig.drift is not None:
            ahead = self.moved
            cv2.scaleAdd(rig.drift[0], u, disp, dst=ahead)
        where = self.sample_map(ahead, pose, (0, h))
        for r0, r1, c0, c1 in _around((0, h, 0, w), hole):
            _remap(source, where[r0:r1, c0:c1], frame[r0:r1, c0:c1])
        glowed = rig.drift is None and rig.layer is None and self.glow is not None
        if glowed:
            _remap(rig.glow, where, self.glow)  # type: ignore[arg-type]
        if rig.drift is not None and self.past is not None and rig.plan.loop and u > 0:
            field, b0, b1 = rig.drift
            cv2.scaleAdd(field, u - 1.0, disp, dst=self.moved)
            behind = self.sample_map(self.moved, pose, (b0, b1))
            for r0, r1, c0, c1 in _around((b0, b1, 0, w), hole):
                past = self.past[r0:r1, c0:c1]
                _remap(source, behind[r0 - b0 : r1 - b0, c0:c1], past)
                now = frame[r0:r1, c0:c1]
                cv2.addWeighted(now, 1.0 - u, past, u, 0.0, dst=now)
        return glowed

    def windows(self, pose: Pose, reach: float) -> tuple[Window | None, Window | None]:
        """Output windows ``(r0, r1, c0, c1)`` where the subject may show and where it is opaque.

        ``reach`` bounds this frame's displacement; two more pixels cover bilinear sampling.
        """
        pad = reach + 2.0
        return self._project(self.box, pose, pad), self._project(self.solid, pose, -pad)

    def _project(self, rect: tuple[int, int, int, int], pose: Pose, pad: float) -> Window | None:
        """The output pixels that sample photo pixels ``(x0, y0, x1, y1)`` grown by ``pad``."""
        h, w = self.rig.photo.shape[:2]
        scale, tx, ty = _camera(self.rig, pose)
        x0, y0, x1, y1 = rect
        low, high = (math.floor, math.ceil) if pad >= 0 else (math.ceil, math.floor)
        r0, r1 = low((y0 - pad - ty) / scale), high((y1 + pad - ty) / scale) + 1
        c0, c1 = low((x0 - pad - tx) / scale), high((x1 + pad - tx) / scale) + 1
        r0, r1, c0, c1 = max(0, r0), min(h, r1), max(0, c0), min(w, c1)
        return (r0, r1, c0, c1) if r0 < r1 and c0 < c1 else None

    def foreground(
        self, frame: U8, disp: F32, pose: Pose, box: Window | None, hole: Window | None
    ) -> None:
        """Lay the subject over ``frame`` in ``box`` and sample the glow, at the camera pose."""
        rig, h = self.rig, frame.shape[0]
        rows = (0, h) if self.glow is not None or box is None else box[:2]
        where = self.sample_map(disp, pose, rows)
        if rig.glow is not None and self.glow is not None:
            _remap(rig.glow, where, self.glow)
        if rig.layer is None or box is None:
            return
        r0, r1, c0, c1 = box
        fg = _view(self.fg, (r1 - r0, c1 - c0, 4))
        _remap(rig.layer, where[r0 - rows[0] : r1 - rows[0], c0:c1], fg)
        for p0, p1, q0, q1 in _around(box, hole):
            part = fg[p0 - r0 : p1 - r0, q0 - c0 : q1 - c0]
            scratch = tuple(_view(s, (p1 - p0, q1 - q0, 3)) for s in self.scratch)
            _composite(frame[p0:p1, q0:q1], part, scratch)
        if hole is not None and (hole := _inside(hole, box)) is not None:
            p0, p1, q0, q1 = hole
            part = fg[p0 - r0 : p1 - r0, q0 - c0 : q1 - c0]
            cv2.cvtColor(part, cv2.COLOR_RGBA2RGB, dst=frame[p0:p1, q0:q1])


def _inside(hole: Window, box: Window) -> Window | None:
    """Return ``hole`` clipped to ``box``, or None when they do not overlap."""
    r0, r1 = max(hole[0], box[0]), min(hole[1], box[1])
    c0, c1 = max(hole[2], box[2]), min(hole[3], box[3])
    return (r0, r1, c0, c1) if r0 < r1 and c0 < c1 else None


def _around(box: Window, hole: Window | None) -> list[Window]:
    """Split ``box`` into at most four windows covering all of it but ``hole``."""
    inner = None if hole is None else _inside(hole, box)
    if inner is None:
        return [box]
    (r0, r1, c0, c1), (h0, h1, k0, k1) = box, inner
    parts = [(r0, h0, c0, c1), (h1, r1, c0, c1), (h0, h1, c0, k0), (h0, h1, k1, c1)]
    return [p for p in parts if p[0] < p[1] and p[2] < p[3]]


def _solid(alpha: U8, block: int = 8) -> tuple[int, int, int, int]:
    """Return the largest rectangle of ``block``-pixel squares where ``alpha`` is 255.

    Inclusive photo pixels ``(x0, y0, x1, y1)``; found with the histogram-and-stack method, one
    row of squares at a time.
    """
    h, w = (n // block for n in alpha.shape)
    cells = alpha[: h * block, : w * block].reshape(h, block, w, block) == 255
    full = cells.all(axis=(1, 3))
    best, rect = 0, (0, 0, -1, -1)
    heights = np.zeros(w + 1, np.int64)
    for y in range(h):
        heights[:w] = np.where(full[y], heights[:w] + 1, 0)
        stack: list[tuple[int, int]] = []
        for x, height in enumerate(heights.tolist()):
            start = x
            while stack and stack[-1][1] >= height:
                start, top = stack.pop()
                if top * (x - start) > best:
                    best = top * (x - start)
                    x0, y0 = start * block, (y - top + 1) * block
                    rect = (x0, y0, x * block - 1, (y + 1) * block - 1)
            stack.append((start, height))
    return rect


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
    renderer = FrameRenderer(rig)
    rng = np.random.default_rng(spec.seed + 1)
    half = min(0.2, _BLINK_HALF_SECONDS / max(spec.seconds, 1e-3))
    blink = (float(rng.uniform(0.35 + half, 0.8 - half)), half)
    phases = rng.uniform(0.0, 2.0 * np.pi, size=3)
    back = 1.0 - min(_PARALLAX_MAX, _PARALLAX * plan.parallax)
    disp = np.empty((rig.grid.height, rig.grid.width, 2), np.float32)
    for t in range(count):
        u = t / count if plan.loop else t / max(1, count - 1)
        disp.fill(0.0)
        reach = 0.0
        for key, field in rig.fields.items():
            coefficient = motions.coefficient(key, u, blink)
            cv2.scaleAdd(field, coefficient, disp, dst=disp)
            reach += abs(coefficient) * renderer.peaks[key]
        pose = motions.camera_pose(plan.camera, plan.strength, u, plan.loop)
        back_pose = pose if rig.layer is None else (1.0 + (pose[0] - 1.0) * back, *pose[1:])
        box, hole = renderer.windows(pose, reach) if rig.layer is not None else (None, None)
        glowed = renderer.background(out[t], disp, back_pose, u, hole)
        if not glowed and (rig.layer is not None or rig.glow is not None):
            renderer.foreground(out[t], disp, pose, box, hole)
        if renderer.glow is not None:
            cv2.addWeighted(out[t], 1.0, renderer.glow, _light(rig, u, phases), 0.0, dst=out[t])
    return out

"""Step 3 of the pipeline on any CPU: scene analysis, a plan and smooth warps bring a photo to life.

``plan_motion`` turns prompt and options into gains, ``build_rig`` analyses the photo and
precomputes layers and motion fields, and ``render`` turns the rig into frames: per frame, the
fields summed with their phase coefficients, mapped through the camera, and one ``remap`` per
layer. Every phase term is zero at the first frame, so frame 0 is the resized photo, and
periodic over the clip, so the last frame flows into the first.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
from numpy.typing import NDArray

from core.animation.plan import plan_motion
from core.animation.render import render
from core.animation.rig import Rig, build_rig
from core.errors import BackendError
from core.ports import StepCallback
from core.types import ClipSpec, Frames, Image

logger = logging.getLogger(__name__)

U8 = NDArray[np.uint8]

# NOTE: a photo is never enlarged more than 2x: beyond that a remap only magnifies blur.
_MAX_UPSCALE = 2.0


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

"""Small helpers on frames shared by pipeline steps: sampling and the poster image."""

from __future__ import annotations

import io

import numpy as np
from numpy.typing import NDArray
from PIL import Image as PILImage

from core.types import Frames


def sample_indices(count: int, samples: int) -> list[int]:
    """Return up to ``samples`` evenly spaced frame indices, first and last included."""
    if count <= 0 or samples <= 0:
        return []
    if samples >= count:
        return list(range(count))
    return sorted({round(i) for i in np.linspace(0, count - 1, samples)})


def poster_jpeg(frames: Frames, long_edge: int = 256, quality: int = 85) -> bytes:
    """Return a JPEG of the middle frame, its long edge at most ``long_edge`` pixels."""
    frame = PILImage.fromarray(frames.array[frames.count // 2])
    frame.thumbnail((long_edge, long_edge))
    out = io.BytesIO()
    frame.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def fit_within(rgb: NDArray[np.uint8], side: int) -> NDArray[np.uint8]:
    """Return ``rgb`` scaled down (area interpolation) so its long edge is at most ``side``."""
    import cv2

    height, width = rgb.shape[:2]
    scale = side / max(height, width)
    if scale >= 1:
        return rgb
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)

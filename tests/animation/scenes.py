"""Synthetic and packaged photos with known regions, and the clip metrics the tests check."""

from __future__ import annotations

import functools

import cv2
import numpy as np

from core.types import ClipSpec, Image

SIZE = 256


def photo(pixels: np.ndarray) -> Image:
    return Image(np.ascontiguousarray(pixels), "PNG", "image/png", "0" * 64)


def spec(**kwargs: object) -> ClipSpec:
    base: dict[str, object] = {"seconds": 1.0, "fps": 24, "size": SIZE}
    base.update(kwargs)
    return ClipSpec(**base)  # type: ignore[arg-type]


def outdoor(
    height: int = 192, width: int = 256, ground: str = "earth", water: bool = False, seed: int = 0
) -> np.ndarray:
    """Blue sky with soft clouds over the top 40%, then textured ground (green or brown).

    With ``water``, the bottom 30% is a calm blue lake.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.empty((height, width, 3), np.float32)
    t = y / height
    clouds = 30 * np.sin(x / 23.0 + 1.0) * np.sin(y / 11.0) ** 2
    img[...] = np.stack([90 + 80 * t + clouds, 150 + 60 * t + clouds, 235 + 0 * t], -1)
    land = y >= 0.4 * height
    texture = rng.normal(0, 18, (height, width)).astype(np.float32)
    texture = cv2.GaussianBlur(texture, (0, 0), 0.8)
    colour = (60, 120, 50) if ground == "green" else (120, 95, 70)
    img[land] = np.stack([colour[i] + texture for i in range(3)], -1)[land]
    if water:
        lake = y >= 0.7 * height
        ripple = 6 * np.sin(y / 2.0)
        img[lake] = np.stack([40 + ripple, 90 + ripple, 160 + ripple], -1)[lake]
    return np.clip(img, 0, 255).astype(np.uint8)


@functools.cache
def astronaut(size: int = SIZE) -> np.ndarray:
    """scikit-image's astronaut portrait (a real face for MediaPipe), ``size`` square."""
    from skimage import data

    return cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_AREA)


def step_diffs(frames: np.ndarray) -> np.ndarray:
    return np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))


def seam_ratio(frames: np.ndarray) -> float:
    as_int = frames.astype(np.int16)
    return float(np.abs(as_int[-1] - as_int[0]).mean() / max(step_diffs(frames).mean(), 1e-6))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def change(frames: np.ndarray) -> np.ndarray:
    """Per-pixel largest change from the first frame over the clip, in grey levels."""
    return np.abs(frames.astype(np.int16) - frames[0]).max(axis=0).mean(axis=2)

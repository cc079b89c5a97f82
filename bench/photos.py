"""Test photos made in code (no downloads): a landscape with sky, ground and a subject."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def landscape(width: int, height: int, seed: int = 0) -> bytes:
    """Return a JPEG: blue sky with soft clouds, hills, water, and a figure in front."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    sky = np.stack([90 + 80 * y, 150 + 60 * y, 230 + 15 * y], -1) * np.ones((1, width, 1))
    clouds = np.zeros((height, width), np.float32)
    for _ in range(12):
        cx, cy = rng.uniform(0, 1), rng.uniform(0.05, 0.4)
        r = rng.uniform(0.05, 0.15)
        clouds += np.exp(-(((x - cx) / r) ** 2 + ((y - cy) / (r / 2.5)) ** 2))
    img = sky + np.clip(clouds, 0, 1)[..., None] * 60
    hills = 0.55 + 0.06 * np.sin(x * 9 + 1) + 0.03 * np.sin(x * 23)
    ground = y > hills
    texture = rng.normal(0, 10, (height, width))
    green = np.stack([60 + texture, 110 + 40 * y + texture, 50 + texture], -1)
    img = np.where(ground[..., None], green, img)
    water = y > 0.8
    ripple = 15 * np.sin(y * 300 + x * 20)
    blue = np.stack([40 + ripple, 90 + ripple, 150 + ripple], -1) * np.ones((1, width, 1))
    img = np.where(water[..., None], blue, img)
    pil = Image.fromarray(np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    w, h = width, height
    draw.ellipse([w * 0.44, h * 0.38, w * 0.56, h * 0.54], fill=(224, 172, 140))  # head
    draw.rounded_rectangle([w * 0.38, h * 0.52, w * 0.62, h], radius=w // 20, fill=(180, 40, 50))
    pil = pil.filter(ImageFilter.GaussianBlur(0.6))
    out = io.BytesIO()
    pil.save(out, format="JPEG", quality=92)
    return out.getvalue()

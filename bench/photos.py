"""Photos made in code (no downloads): landscape, portrait, city, water, night, b/w and flat."""

from __future__ import annotations

import io
from collections.abc import Callable

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


def _jpeg(img: np.ndarray | Image.Image, blur: float = 0.6) -> bytes:
    """Return a quality-92 JPEG of a float or PIL image, softened like a phone photo."""
    pil = (
        img
        if isinstance(img, Image.Image)
        else Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    )
    out = io.BytesIO()
    pil.filter(ImageFilter.GaussianBlur(blur)).save(out, format="JPEG", quality=92)
    return out.getvalue()


def _grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Return normalised y (column) and x (row) coordinates."""
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    return y, x


def portrait(width: int, height: int, seed: int = 0) -> bytes:
    """Return a head-and-shoulders portrait in front of a blurred, bokeh-lit background."""
    rng = np.random.default_rng(seed)
    y, x = _grid(width, height)
    tint = rng.uniform(60, 200, 3)
    img = tint * (0.6 + 0.4 * y)[..., None] * np.ones((1, width, 1))
    for _ in range(10):
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.03, 0.1)
        img += 70 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / r**2)[..., None]
    pil = Image.fromarray(np.clip(img + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8))
    pil = pil.filter(ImageFilter.GaussianBlur(4))
    draw = ImageDraw.Draw(pil)
    w, h = width, height
    skin = tuple(int(v) for v in rng.choice([(232, 190, 160), (198, 140, 100), (120, 80, 55)]))
    shirt = tuple(int(v) for v in rng.integers(20, 230, 3))
    draw.ellipse([w * 0.2, h * 0.7, w * 0.8, h * 1.3], fill=shirt)
    draw.rectangle([w * 0.44, h * 0.55, w * 0.56, h * 0.75], fill=skin)
    draw.ellipse([w * 0.33, h * 0.18, w * 0.67, h * 0.64], fill=skin)
    draw.chord([w * 0.31, h * 0.12, w * 0.69, h * 0.5], 180, 360, fill=(50, 35, 25))
    for ex in (0.43, 0.57):
        draw.ellipse([w * (ex - 0.03), h * 0.38, w * (ex + 0.03), h * 0.42], fill=(40, 30, 30))
    draw.arc([w * 0.43, h * 0.46, w * 0.57, h * 0.54], 20, 160, fill=(150, 60, 60), width=3)
    return _jpeg(pil, 1.0)


def city(width: int, height: int, seed: int = 0) -> bytes:
    """Return a street of buildings with lit windows under a hazy sky."""
    rng = np.random.default_rng(seed)
    y, _ = _grid(width, height)
    sky = np.stack([150 + 60 * y, 170 + 50 * y, 200 + 30 * y], -1) * np.ones((1, width, 1))
    pil = Image.fromarray(np.clip(sky, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    left = 0.0
    while left < width:
        bw, top = rng.uniform(0.08, 0.2) * width, rng.uniform(0.15, 0.55) * height
        wall = tuple(int(v) for v in rng.integers(60, 200, 3))
        draw.rectangle([left, top, left + bw, height], fill=wall)
        for wy in np.arange(top + 8, height * 0.85, 14):
            for wx in np.arange(left + 5, left + bw - 8, 12):
                lit = rng.random() < 0.4
                draw.rectangle(
                    [wx, wy, wx + 6, wy + 8], fill=(250, 220, 140) if lit else (40, 50, 60)
                )
        left += bw + rng.uniform(0, 6)
    draw.rectangle([0, height * 0.85, width, height], fill=(70, 70, 75))
    return _jpeg(np.asarray(pil, np.float32) + rng.normal(0, 4, (height, width, 3)))


def water(width: int, height: int, seed: int = 0) -> bytes:
    """Return an open sea with waves, a horizon and the sun's reflection."""
    rng = np.random.default_rng(seed)
    y, x = _grid(width, height)
    horizon = rng.uniform(0.3, 0.5)
    sky = np.stack([200 + 40 * y, 160 + 60 * y, 120 + 100 * y], -1) * np.ones((1, width, 1))
    waves = sum(
        rng.uniform(4, 12) * np.sin(y * rng.uniform(200, 500) + x * rng.uniform(-30, 30) + k)
        for k in range(4)
    )
    depth = (y - horizon) / (1 - horizon)
    sea = np.stack([20 + 30 * depth + waves, 70 + 40 * depth + waves, 120 + 40 * depth + waves], -1)
    sun_x = rng.uniform(0.3, 0.7)
    glint = np.exp(-(((x - sun_x) / 0.05) ** 2)) * (y > horizon) * (np.sin(y * 400) > 0.3)
    img = np.where((y > horizon)[..., None], sea, sky) + 120 * glint[..., None]
    return _jpeg(img + rng.normal(0, 3, img.shape))


def night(width: int, height: int, seed: int = 0) -> bytes:
    """Return a dark night scene: stars, a moon, a skyline with lights, sensor noise."""
    rng = np.random.default_rng(seed)
    y, x = _grid(width, height)
    img = np.stack([8 + 20 * y, 10 + 25 * y, 30 + 30 * y], -1) * np.ones((1, width, 1))
    stars = rng.random((height, width)) > 0.998
    img[stars] = 220
    mx, my = rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.3)
    img += 200 * (((x - mx) ** 2 + (y - my) ** 2) < 0.003)[..., None]
    skyline = 0.6 + 0.1 * np.round(np.sin(x * rng.uniform(20, 60)) * 2) / 2
    img = np.where((y > skyline)[..., None], 12, img)
    lights = (y > skyline) & (rng.random((height, width)) > 0.995)
    img[lights] = (255, 200, 90)
    return _jpeg(cv2_blur(img) + rng.normal(0, 6, img.shape), 0.4)


def cv2_blur(img: np.ndarray) -> np.ndarray:
    """Return ``img`` with lights bloomed a little (a separable box blur, in numpy)."""
    kernel = np.ones(5) / 5
    out = np.apply_along_axis(lambda r: np.convolve(r, kernel, "same"), 0, img)
    return 0.5 * img + 0.5 * np.apply_along_axis(lambda r: np.convolve(r, kernel, "same"), 1, out)


def black_and_white(width: int, height: int, seed: int = 0) -> bytes:
    """Return a grey-scale photo (a landscape or a city at random), stored as RGB."""
    maker = landscape if seed % 2 else city
    gray = Image.open(io.BytesIO(maker(width, height, seed))).convert("L").convert("RGB")
    return _jpeg(gray, 0.3)


def flat(width: int, height: int, seed: int = 0) -> bytes:
    """Return a nearly flat scene: a painted wall with one small object and faint shading."""
    rng = np.random.default_rng(seed)
    _, x = _grid(width, height)
    color = rng.uniform(90, 235, 3)
    img = color * (0.93 + 0.07 * x)[..., None] * np.ones((height, 1, 1))
    pil = Image.fromarray(np.clip(img + rng.normal(0, 1.5, img.shape), 0, 255).astype(np.uint8))
    cx, cy = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height
    r = 0.06 * min(width, height)
    ImageDraw.Draw(pil).ellipse(
        [cx - r, cy - r, cx + r, cy + r], fill=tuple(rng.integers(0, 255, 3).tolist())
    )
    return _jpeg(pil, 1.5)


KINDS: dict[str, Callable[[int, int, int], bytes]] = {
    "landscape": landscape,
    "portrait": portrait,
    "city": city,
    "water": water,
    "night": night,
    "bw": black_and_white,
    "flat": flat,
}


def varied(index: int, width: int, height: int) -> tuple[str, bytes]:
    """Return the ``index``-th photo of a varied set: its kind and JPEG bytes."""
    name = list(KINDS)[index % len(KINDS)]
    return name, KINDS[name](width, height, index)

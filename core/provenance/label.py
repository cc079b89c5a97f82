"""Step 5 of the pipeline: burns a visible "AI-generated" badge into every frame, bottom left."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from core.types import Frames

if TYPE_CHECKING:
    from numpy.typing import NDArray

log = logging.getLogger(__name__)

# NOTE: text height as a share of the short side: 12 px at 256, 21 px at 512, 43 px at 1024 —
# legible on a phone at every output size without covering the picture.
FONT_SHARE = 0.042
MIN_FONT_PX = 11  # NOTE: below ~11 px Pillow's default font stops being readable.
MARGIN_SHARE = 0.03  # NOTE: gap to the frame edges, as a share of the short side.
PILL_ALPHA = 150  # NOTE: ~60 % dark backing keeps white text readable on bright frames.
_SUPERSAMPLE = 4  # NOTE: drawn 4x larger then reduced, for anti-aliased pill edges and text.


class LabelStep:
    """Burns a visible label into every frame (a ``FrameStep``).

    The badge is rendered once per clip as RGBA and alpha-blended into the same place on every
    frame, so only its rectangle changes.

    Args:
        text: the label text.
    """

    name = "label"

    def __init__(self, text: str = "AI-generated") -> None:
        self.text = text

    def apply(self, frames: Frames, ledger_id: str) -> Frames:
        """Return frames with the badge blended in; ``ledger_id`` is not used by the label."""
        height, width = frames.height, frames.width
        badge = render_badge(self.text, height, width)
        bh, bw = badge.shape[:2]
        margin = max(2, round(MARGIN_SHARE * min(height, width)))
        x0, y0 = min(margin, width - bw), max(0, height - margin - bh)
        alpha = badge[..., 3:].astype(np.float32) / 255.0
        ink = badge[..., :3].astype(np.float32) * alpha
        out = frames.array.copy()
        area = out[:, y0 : y0 + bh, x0 : x0 + bw].astype(np.float32)
        blended = area * (1.0 - alpha) + ink
        out[:, y0 : y0 + bh, x0 : x0 + bw] = np.rint(blended).astype(np.uint8)
        return Frames(array=out, fps=frames.fps)


def render_badge(text: str, height: int, width: int) -> NDArray[np.uint8]:
    """Return the badge for a ``height`` x ``width`` frame as a ``(h, w, 4)`` uint8 RGBA array."""
    short = min(height, width)
    font_px = max(MIN_FONT_PX, round(FONT_SHARE * short))
    # Shrink the font until the badge fits inside the frame's margins (tiny or narrow frames).
    while True:
        size, font = _measure(text, font_px * _SUPERSAMPLE)
        fits = size[0] <= (width - 4) * _SUPERSAMPLE and size[1] <= (height - 4) * _SUPERSAMPLE
        if fits or font_px <= 4:
            break
        font_px -= 1
    big_w, big_h = size
    image = Image.new("RGBA", (big_w, big_h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle(
        (0, 0, big_w - 1, big_h - 1), radius=big_h // 2, fill=(16, 16, 16, PILL_ALPHA)
    )
    draw.text((big_w / 2, big_h / 2), text, font=font, fill=(255, 255, 255, 255), anchor="mm")
    out_w = max(1, min(width, round(big_w / _SUPERSAMPLE)))
    out_h = max(1, min(height, round(big_h / _SUPERSAMPLE)))
    small = image.resize((out_w, out_h), Image.Resampling.LANCZOS)
    log.debug(
        "label badge %dx%d at font %d px for a %dx%d frame", out_w, out_h, font_px, width, height
    )
    return np.asarray(small, dtype=np.uint8)


def _measure(text: str, font_px: int) -> tuple[tuple[int, int], ImageFont.FreeTypeFont]:
    """Return the pill size (w, h) for ``text`` at ``font_px`` and the font used."""
    font = ImageFont.load_default(size=font_px)
    if not isinstance(font, ImageFont.FreeTypeFont):  # Pillow built without FreeType
        raise RuntimeError("Pillow lacks FreeType; the scalable default font is unavailable")
    left, top, right, bottom = font.getbbox(text, anchor="mm")
    pad_x, pad_y = round(0.6 * font_px), round(0.35 * font_px)
    text_w, text_h = math.ceil(right - left), math.ceil(bottom - top)
    return (text_w + 2 * pad_x, text_h + 2 * pad_y), font

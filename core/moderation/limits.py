"""Step 1 of the pipeline: decode an uploaded photo safely, or refuse it with a reason code.

Reason codes (``InputError.code``), in the order they are checked:

- ``empty``: zero bytes.
- ``too_large``: more bytes than ``limits.max_bytes`` (checked before anything parses them).
- ``not_an_image``: no decoder we enable recognises the bytes (videos, PDFs, text, and
  formats we never open at all, such as EPS, whose loader runs Ghostscript).
- ``animated_image``: an animated GIF, WebP, APNG, AVIF or HEIF sequence.
- ``unsupported_format``: a still image in a format we recognise but do not accept
  (GIF, BMP, TIFF, ICO, PPM, PSD, JPEG 2000). Only JPEG (and MPO, a JPEG with extra
  pictures from phone cameras), PNG, WebP, HEIC/HEIF and AVIF are accepted.
- ``too_many_pixels``: ``width * height`` over ``limits.max_pixels`` or a side over
  ``limits.max_side``, read from the header before any pixel is decoded; Pillow's own
  decompression-bomb guard reports the same code.
- ``too_small``: a side under ``limits.min_side``.
- ``corrupt``: the header parsed but the pixels do not decode (truncated or broken data).

There is no ``decode_timeout`` code: a decode cannot be abandoned cheaply from Python, so
decoding time is bounded by the pixel and byte limits instead (a 12 MP JPEG decodes in
well under a second), and ``limits.decode_timeout_s`` is only used to log slow decodes.
Nothing here looks at file names, and neither the bytes nor the name ever reach a log.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
import time
import warnings
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image as PILImage
from PIL import ImageFile, ImageOps, UnidentifiedImageError

from core.errors import InputError
from core.types import Image

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from core.settings import Limits
    from core.types import Photo

logger = logging.getLogger(__name__)

ACCEPTED = ("JPEG", "PNG", "WEBP", "HEIF", "AVIF")
"""Pillow format ids we decode (MPO is reported as JPEG)."""

REFUSED = ("GIF", "BMP", "TIFF", "ICO", "PPM", "PSD", "JPEG2000")
"""Formats we recognise only to say ``unsupported_format``; they are never decoded."""

_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "AVIF": "image/avif"}
# NOTE: ISO/IEC 23008-12 brands; "heic"-family brands mean HEVC-coded HEIF (image/heic).
_HEIC_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx")

_setup_lock = threading.Lock()
_setup_done = False


def decode_photo(photo: Photo, limits: Limits) -> Image:
    """Decode an uploaded photo into RGB pixels, refusing anything unsafe or unusable.

    Args:
        photo: the bytes as received; ``photo.filename`` is ignored.
        limits: byte, pixel and side limits.

    Returns:
        The photo as ``(H, W, 3)`` uint8 RGB with EXIF orientation applied.

    Raises:
        InputError: with one of the codes listed in this module's docstring.
    """
    data = photo.data
    if not data:
        raise _refuse("empty", "The file is empty.", 0)
    if len(data) > limits.max_bytes:
        raise _refuse("too_large", "The file is too large.", len(data))
    _setup_pillow(limits)
    started = time.perf_counter()
    with _open(data) as im:
        _check_header(im, limits, len(data))
        pixels = _load_rgb(im, len(data))
        fmt = "JPEG" if im.format == "MPO" else str(im.format)
    elapsed = time.perf_counter() - started
    if elapsed > limits.decode_timeout_s:
        logger.warning("slow decode: %.1f s for %d bytes, %s", elapsed, len(data), fmt)
    return Image(pixels, fmt, _mime(fmt, data), hashlib.sha256(data).hexdigest())


def _setup_pillow(limits: Limits) -> None:
    """Register the HEIF opener once, and set Pillow's process-wide guards.

    ``MAX_IMAGE_PIXELS`` is process-wide; every caller in one process passes the same
    configured limits, so setting it on each call is idempotent.
    """
    global _setup_done
    with _setup_lock:
        if not _setup_done:
            import pillow_heif

            pillow_heif.register_heif_opener()
            _setup_done = True
    # Truncated data must fail loudly rather than decode as grey bands.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    PILImage.MAX_IMAGE_PIXELS = limits.max_pixels


def _open(data: bytes) -> PILImage.Image:
    """Parse the header only (no pixel data) with the decoders we enable."""
    try:
        # Warnings become errors here so a bomb warning cannot slip through as a log line.
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            return PILImage.open(io.BytesIO(data), formats=ACCEPTED + REFUSED)
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning):
        raise _refuse("too_many_pixels", "The image has too many pixels.", len(data)) from None
    except UnidentifiedImageError:
        raise _refuse("not_an_image", "The file is not an image.", len(data)) from None
    except Exception:  # any parser failure on untrusted bytes is bad input, not our bug
        raise _refuse("corrupt", "The image is damaged.", len(data)) from None


def _check_header(im: PILImage.Image, limits: Limits, size: int) -> None:
    """Refuse by format, animation and dimensions, all known before decoding."""
    width, height = im.size
    if im.format != "MPO" and getattr(im, "is_animated", False):
        raise _refuse("animated_image", "Animated images are not supported.", size, im)
    if im.format not in ACCEPTED and im.format != "MPO":
        raise _refuse("unsupported_format", "This image format is not supported.", size, im)
    if width * height > limits.max_pixels or max(width, height) > limits.max_side:
        raise _refuse("too_many_pixels", "The image has too many pixels.", size, im)
    if min(width, height) < limits.min_side:
        raise _refuse("too_small", "The image is too small.", size, im)


def _load_rgb(im: PILImage.Image, size: int) -> NDArray[np.uint8]:
    """Decode the pixels, apply EXIF orientation and return RGB uint8."""
    try:
        im.load()
        oriented = _orient(im)
        return _to_rgb(oriented)
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning):
        raise _refuse("too_many_pixels", "The image has too many pixels.", size, im) from None
    except Exception:  # broken data fails differently in each decoder (OSError, ValueError...)
        raise _refuse("corrupt", "The image is damaged.", size, im) from None


def _orient(im: PILImage.Image) -> PILImage.Image:
    """Apply the EXIF orientation; a broken EXIF block leaves the picture as stored."""
    try:
        return ImageOps.exif_transpose(im)
    except Exception:  # damaged metadata should not refuse a photo whose pixels decode
        logger.info("ignoring unreadable EXIF orientation")
        return im


def _to_rgb(im: PILImage.Image) -> NDArray[np.uint8]:
    """Convert any mode to RGB: alpha flattened onto white, 16-bit scaled, CMYK/palette mapped."""
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # Pillow's convert() clips 16-bit values at 255 instead of scaling them.
        wide = np.asarray(im).astype(np.int64)
        grey = (np.clip(wide, 0, 65535) >> 8).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if mode == "F":
        grey = np.clip(np.asarray(im), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    has_alpha = mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in im.info
    if has_alpha:
        rgba = im.convert("RGBA")
        white = PILImage.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = PILImage.alpha_composite(white, rgba)
    rgb = im if im.mode == "RGB" else im.convert("RGB")
    return np.array(rgb, dtype=np.uint8)


def _mime(fmt: str, data: bytes) -> str:
    """MIME type of the original bytes, from the decoded format and, for HEIF, its brand."""
    if fmt == "HEIF":
        return "image/heic" if data[8:12] in _HEIC_BRANDS else "image/heif"
    return _MIME[fmt]


def _refuse(code: str, message: str, size: int, im: PILImage.Image | None = None) -> InputError:
    """Log a refusal (code and sizes only) and build the error to raise."""
    if im is None:
        logger.info("photo refused: %s (%d bytes)", code, size)
    else:
        width, height = im.size
        logger.info("photo refused: %s (%d bytes, %dx%d %s)", code, size, width, height, im.format)
    return InputError(code, message)

"""decode_photo: every refusal code on real crafted files, and the RGB conversions."""

from __future__ import annotations

import hashlib
import io
import logging
import struct
import zlib

import numpy as np
import pytest
from PIL import Image as PILImage

from core.errors import InputError
from core.moderation.limits import decode_photo
from core.settings import Limits
from core.types import Photo

LIMITS = Limits()


@pytest.fixture(autouse=True)
def _restore_pillow_guard():
    # decode_photo sets Pillow's process-wide bomb guard from the limits it is given.
    saved = PILImage.MAX_IMAGE_PIXELS
    yield
    PILImage.MAX_IMAGE_PIXELS = saved


def _gradient(width: int = 64, height: int = 48) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], axis=2).astype(np.uint8)


def _save(im: PILImage.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(width: int, height: int, depth: int, colour: int, raw: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


def _code(data: bytes, limits: Limits = LIMITS) -> str:
    with pytest.raises(InputError) as info:
        decode_photo(Photo(data), limits)
    return info.value.code


def _mp4() -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(4):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 40, np.uint8), "rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


# --- refusals ---------------------------------------------------------------------------


def test_zero_bytes_is_empty():
    assert _code(b"") == "empty"


def test_size_is_checked_before_parsing():
    limits = Limits(max_bytes=100)
    assert _code(b"not an image at all" * 10, limits) == "too_large"
    png = _save(PILImage.fromarray(_gradient()), "PNG")
    assert len(png) > 100
    assert _code(png, limits) == "too_large"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF", id="pdf"),
        pytest.param(b"hello, this is a text file\n" * 20, id="text"),
        pytest.param(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\n", id="eps-never-opened"),
        pytest.param(b"PK\x03\x04" + bytes(200), id="zip"),
    ],
)
def test_non_images_are_not_an_image(data):
    assert _code(data) == "not_an_image"


def test_mp4_passed_as_photo_is_not_an_image():
    assert _code(_mp4()) == "not_an_image"


def test_pdf_jpeg_polyglot_that_does_not_start_as_an_image_is_not_an_image():
    jpeg = _save(PILImage.fromarray(_gradient()), "JPEG")
    assert _code(b"%PDF-1.4\n" + jpeg) == "not_an_image"


def test_animated_gif_webp_and_apng_are_animated():
    frames = [PILImage.fromarray(_gradient()), PILImage.fromarray(255 - _gradient())]
    for fmt in ("GIF", "WEBP", "PNG"):
        data = _save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100)
        assert _code(data) == "animated_image", fmt


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_still_formats_we_do_not_accept_are_unsupported(fmt):
    assert _code(_save(PILImage.fromarray(_gradient()), fmt)) == "unsupported_format"


def test_png_bomb_header_is_refused_before_decoding():
    # 100000 x 100000 claimed in the header, a few bytes of data: Pillow's guard trips in open().
    bomb = _png(100_000, 100_000, 8, 2, b"\x00" * 64)
    assert len(bomb) < 200
    assert _code(bomb) == "too_many_pixels"


def test_pixels_just_over_the_limit_are_refused_from_the_header():
    # 8000 x 6000 = 48 MP: over 40 MP but under Pillow's error level, only its warning level.
    assert _code(_png(8000, 6000, 8, 2, b"\x00" * 64)) == "too_many_pixels"


def test_one_side_over_max_side_is_refused_from_the_header():
    # 20000 x 40 is only 0.8 MP but one side is over max_side.
    assert _code(_png(20_000, 40, 8, 2, b"\x00" * 64)) == "too_many_pixels"


def test_configured_pixel_limit_applies():
    png = _save(PILImage.fromarray(_gradient(64, 64)), "PNG")
    assert _code(png, Limits(max_pixels=4000)) == "too_many_pixels"


def test_tiny_image_is_too_small():
    assert _code(_save(PILImage.fromarray(_gradient(16, 64)), "PNG")) == "too_small"


def test_truncated_jpeg_is_corrupt():
    noise = np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)
    jpeg = _save(PILImage.fromarray(noise), "JPEG", quality=90)
    assert _code(jpeg[: len(jpeg) // 2]) == "corrupt"


def test_truncated_png_is_corrupt():
    noise = np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)
    png = _save(PILImage.fromarray(noise), "PNG")
    assert _code(png[: len(png) // 2]) == "corrupt"


def test_refusal_log_has_code_and_sizes_but_no_name(caplog):
    caplog.set_level(logging.INFO, logger="core.moderation.limits")
    with pytest.raises(InputError):
        decode_photo(Photo(b"secret words " * 10, filename="holiday-secret.jpg"), LIMITS)
    text = caplog.text
    assert "not_an_image" in text
    assert "130 bytes" in text
    assert "secret" not in text


# --- accepted formats and conversions ----------------------------------------------------


def test_png_decodes_to_rgb_with_hash_and_mime():
    pixels = _gradient()
    data = _save(PILImage.fromarray(pixels), "PNG")
    image = decode_photo(Photo(data, filename="looks-like.gif"), LIMITS)
    assert (image.format, image.mime) == ("PNG", "image/png")
    assert image.sha256 == hashlib.sha256(data).hexdigest()
    assert image.pixels.dtype == np.uint8
    assert image.pixels.shape == (48, 64, 3)
    np.testing.assert_array_equal(image.pixels, pixels)


def test_webp_decodes():
    image = decode_photo(Photo(_save(PILImage.fromarray(_gradient()), "WEBP", quality=95)), LIMITS)
    assert (image.format, image.mime, image.width, image.height) == ("WEBP", "image/webp", 64, 48)


def test_heic_made_with_pillow_heif_decodes():
    import pillow_heif

    buf = io.BytesIO()
    pillow_heif.from_pillow(PILImage.fromarray(_gradient())).save(buf, quality=90)
    image = decode_photo(Photo(buf.getvalue()), LIMITS)
    assert (image.format, image.mime) == ("HEIF", "image/heic")
    assert image.pixels.shape == (48, 64, 3)
    assert np.abs(image.pixels.astype(int) - _gradient().astype(int)).mean() < 12


def test_avif_decodes():
    image = decode_photo(Photo(_save(PILImage.fromarray(_gradient()), "AVIF")), LIMITS)
    assert (image.format, image.mime, image.pixels.shape) == ("AVIF", "image/avif", (48, 64, 3))


def test_rgba_png_is_flattened_onto_white():
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[:, :20] = (255, 0, 0, 255)  # opaque red
    rgba[:, 20:30] = (255, 0, 0, 128)  # half-transparent red
    rgba[:, 30:] = (0, 0, 0, 0)  # fully transparent
    image = decode_photo(Photo(_save(PILImage.fromarray(rgba), "PNG")), LIMITS)
    assert tuple(image.pixels[5, 5]) == (255, 0, 0)
    assert tuple(image.pixels[5, 25]) in {(255, 127, 127), (255, 128, 128)}
    assert tuple(image.pixels[5, 35]) == (255, 255, 255)


def test_palette_png_with_transparency_is_flattened_onto_white():
    pal = PILImage.new("P", (40, 40), 1)
    pal.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    pal.paste(0, (0, 0, 20, 40))
    image = decode_photo(Photo(_save(pal, "PNG", transparency=0)), LIMITS)
    assert tuple(image.pixels[5, 5]) == (255, 255, 255)
    assert tuple(image.pixels[5, 35]) == (0, 0, 255)


def test_16_bit_grey_png_is_scaled_not_clipped():
    grey = np.tile(np.array([0, 0x4000, 0x8000, 0xFFFF], np.uint16).repeat(10), (40, 1))
    image = decode_photo(Photo(_save(PILImage.fromarray(grey), "PNG")), LIMITS)
    assert [int(image.pixels[0, x, 0]) for x in (0, 10, 20, 30)] == [0, 64, 128, 255]
    assert (image.pixels[..., 0] == image.pixels[..., 2]).all()


def test_16_bit_rgb_png_decodes_to_8_bit():
    row = b"\x00" + struct.pack(">HHH", 0xFFFF, 0x8000, 0x0000) * 40
    image = decode_photo(Photo(_png(40, 40, 16, 2, row * 40)), LIMITS)
    assert tuple(image.pixels[3, 3]) == (255, 128, 0)


def test_cmyk_jpeg_becomes_rgb():
    cmyk = PILImage.new("CMYK", (64, 64), (0, 255, 255, 0))  # no cyan, full magenta+yellow: red
    image = decode_photo(Photo(_save(cmyk, "JPEG", quality=95)), LIMITS)
    assert image.pixels[32, 32].tolist() == pytest.approx([255, 0, 0], abs=40)


def test_greyscale_jpeg_becomes_three_equal_channels():
    grey = PILImage.fromarray(_gradient()[..., 0])
    image = decode_photo(Photo(_save(grey, "JPEG")), LIMITS)
    assert image.pixels.shape == (48, 64, 3)
    assert (image.pixels[..., 0] == image.pixels[..., 1]).all()


def test_exif_orientation_is_applied():
    # Stored 64 wide x 32 high, left half red, right half blue; Orientation 6 = rotate 90° CW
    # to display, which puts the stored left half on top.
    stored = np.zeros((32, 64, 3), np.uint8)
    stored[:, :32] = (255, 0, 0)
    stored[:, 32:] = (0, 0, 255)
    exif = PILImage.Exif()
    exif[0x0112] = 6
    data = _save(PILImage.fromarray(stored), "JPEG", quality=95, exif=exif.tobytes())
    image = decode_photo(Photo(data), LIMITS)
    assert image.pixels.shape == (64, 32, 3)
    assert image.pixels[8, 16].tolist() == pytest.approx([255, 0, 0], abs=40)  # top: red
    assert image.pixels[56, 16].tolist() == pytest.approx([0, 0, 255], abs=40)  # bottom: blue

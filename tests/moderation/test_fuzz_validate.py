"""decode_photo on hostile bytes: it returns a valid Image or raises InputError, quickly."""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

from core.errors import InputError
from core.moderation.limits import decode_photo
from core.settings import Limits
from core.types import Photo

LIMITS = Limits()
CODES = (
    "empty",
    "not_an_image",
    "animated_image",
    "unsupported_format",
    "too_many_pixels",
    "too_small",
    "corrupt",
)
# NOTE: a decode of these 48x48 files takes milliseconds; seconds would mean a hang or a bomb.
MAX_SECONDS = 3.0
# derandomize: the same examples on every run, so a failure is reproducible and CI is stable.
FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _save(fmt: str, **kwargs) -> bytes:
    y, x = np.mgrid[0:48, 0:48]
    pixels = np.stack([x * 5, y * 5, (x * y) % 256], axis=2).astype(np.uint8)
    buf = io.BytesIO()
    PILImage.fromarray(pixels).save(buf, fmt, **kwargs)
    return buf.getvalue()


def _heic() -> bytes:
    import pillow_heif

    y, x = np.mgrid[0:48, 0:48]
    pixels = np.stack([x * 5, y * 5, (x * y) % 256], axis=2).astype(np.uint8)
    buf = io.BytesIO()
    pillow_heif.from_pillow(PILImage.fromarray(pixels)).save(buf, quality=80)
    return buf.getvalue()


VALID = {
    "heic": _heic(),
    "jpeg": _save("JPEG", quality=90),
    "png": _save("PNG"),
    "webp": _save("WEBP", quality=90),
    "gif": _save("GIF"),
}


@pytest.fixture(autouse=True)
def _restore_pillow_guard():
    saved = PILImage.MAX_IMAGE_PIXELS
    yield
    PILImage.MAX_IMAGE_PIXELS = saved


def _decode_or_refuse(data: bytes) -> None:
    started = time.perf_counter()
    code = ""
    try:
        image = decode_photo(Photo(data), LIMITS)
    except InputError as exc:
        code = exc.code
    else:
        assert image.pixels.dtype == np.uint8
        assert image.pixels.ndim == 3
        assert image.pixels.shape[2] == 3
        assert image.width * image.height <= LIMITS.max_pixels
        assert min(image.width, image.height) >= LIMITS.min_side
        assert image.format in {"JPEG", "PNG", "WEBP", "HEIF", "AVIF"}
    assert code in {"", *CODES}
    assert time.perf_counter() - started < MAX_SECONDS


def _png_header(width: int, height: int, depth: int, colour: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 256)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _jpeg_with_size(width: int, height: int) -> bytes:
    data = bytearray(VALID["jpeg"])
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def test_the_seed_files_themselves_decode_or_are_refused_as_gif():
    for kind, data in VALID.items():
        if kind == "gif":
            with pytest.raises(InputError, match="format"):
                decode_photo(Photo(data), LIMITS)
        else:
            assert decode_photo(Photo(data), LIMITS).pixels.shape == (48, 48, 3)


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(data):
    _decode_or_refuse(data)


@FUZZ
@given(st.sampled_from(sorted(VALID)), st.data())
def test_truncations_of_valid_files(kind, data):
    original = VALID[kind]
    _decode_or_refuse(original[: data.draw(st.integers(0, len(original)))])


@FUZZ
@given(st.sampled_from(sorted(VALID)), st.data(), st.integers(0, 255))
def test_single_byte_corruptions_of_valid_files(kind, data, value):
    corrupted = bytearray(VALID[kind])
    corrupted[data.draw(st.integers(0, len(corrupted) - 1))] = value
    _decode_or_refuse(bytes(corrupted))


dims = st.integers(0, 2**31 - 1) | st.integers(0, 70_000)


@FUZZ
@given(dims, dims, st.sampled_from([1, 2, 4, 8, 16]), st.sampled_from([0, 2, 3, 4, 6]))
def test_huge_png_headers(width, height, depth, colour):
    _decode_or_refuse(_png_header(width, height, depth, colour))


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.integers(0, 65535), st.integers(0, 65535))
def test_huge_jpeg_headers(width, height):
    _decode_or_refuse(_jpeg_with_size(width, height))


@pytest.mark.parametrize("kind", sorted(VALID))
def test_every_header_byte_corrupted_in_turn(kind):
    # Random examples rarely land in the few hundred header bytes where parsers throw their
    # unusual exceptions (libheif's ValueError, EOFError, RuntimeError), so sweep them all.
    original = VALID[kind]
    for index in range(min(len(original), 512)):
        corrupted = bytearray(original)
        corrupted[index] = (0x00, 0xFF, 0x07)[index % 3]
        _decode_or_refuse(bytes(corrupted))

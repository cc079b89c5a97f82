"""File formats around C2PA for signing and verify: what a file is, and a photo without its store.

Verify must know a file's MIME type to hand it to c2pa; signing removes the Content Credentials
a source photo already carries before it becomes an ingredient, because c2pa would otherwise
copy the photo's whole manifest store (with its thumbnail, a copy of the photo, and whatever the
camera or app wrote) into every shared clip. Only the photo's hash stays in our manifest.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

# Magic bytes -> MIME for the formats c2pa reads; ISO BMFF files are told apart by brand.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"%PDF-", "application/pdf"),
    (b"fLaC", "audio/flac"),
    (b"ID3", "audio/mpeg"),
    (b"\xff\x0a", "image/jxl"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "image/jxl"),
)
_RIFF = {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/avi"}
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
_QT_BOXES = {b"moov", b"mdat", b"wide", b"free", b"skip"}

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_APP11 = 0xEB  # NOTE: C2PA §11.3.1: JPEG stores the manifest store as JUMBF in APP11.
JPEG_SOS = 0xDA
PNG_C2PA_CHUNK = b"caBX"  # NOTE: C2PA §11.3.3.
WEBP_C2PA_CHUNK = b"C2PA"  # NOTE: C2PA §11.3.5 (RIFF chunk).


def sniff_mime(data: bytes) -> str | None:
    """Return the MIME type the bytes look like, or None when unknown."""
    for magic, mime in _SIGNATURES:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] in _RIFF:
        return _RIFF[data[8:12]]
    if data[4:8] == b"ftyp":
        return _bmff_mime(data)
    if data[4:8] in _QT_BOXES:
        return "video/quicktime"
    return None


def _bmff_mime(data: bytes) -> str:
    size = int.from_bytes(data[:4], "big")
    # NOTE: the ftyp box lists its major brand at offset 8, then compatible brands from 16.
    end = size if 16 <= size <= min(len(data), 256) else 16
    brands = {data[i : i + 4] for i in range(16, end - 3, 4)} | {data[8:12]}
    if data[8:12] == b"qt  ":
        return "video/quicktime"
    if brands & _AVIF_BRANDS:
        return "image/avif"
    if brands & _HEIF_BRANDS and data[8:12] not in {b"isom", b"mp41", b"mp42", b"M4V "}:
        return "image/heic"
    if data[8:12] in {b"M4A ", b"M4B "}:
        return "audio/mp4"
    return "video/mp4"


def strip_manifest(data: bytes, mime: str) -> bytes | None:
    """Return the photo without its embedded C2PA manifest store.

    JPEG, PNG and WebP keep the store in a segment or chunk that nothing else points into, so
    it is cut out. Other formats (HEIC's ``uuid`` box shifts the offsets ``iloc`` records)
    return None: the caller then describes the photo without its bytes. Malformed input also
    returns None.
    """
    try:
        if mime == "image/jpeg":
            return _strip_jpeg(data)
        if mime == "image/png":
            return _strip_png(data)
        if mime == "image/webp":
            return _strip_webp(data)
    except (IndexError, ValueError):
        log.debug("could not strip the manifest of a %s photo", mime)
    return None


def _strip_jpeg(data: bytes) -> bytes:
    out, pos = [data[:2]], 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError("not a JPEG marker")
        marker = data[pos + 1]
        if marker == JPEG_SOS:
            break
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if end > len(data):
            raise ValueError("truncated JPEG segment")
        if marker != JPEG_APP11:
            out.append(data[pos:end])
        pos = end
    out.append(data[pos:])
    return b"".join(out)


def _strip_png(data: bytes) -> bytes:
    out, pos = [PNG_MAGIC], len(PNG_MAGIC)
    while pos + 12 <= len(data):
        end = pos + 12 + int.from_bytes(data[pos : pos + 4], "big")
        if end > len(data):
            raise ValueError("truncated PNG chunk")
        if data[pos + 4 : pos + 8] != PNG_C2PA_CHUNK:
            out.append(data[pos:end])
        pos = end
    return b"".join(out)


def _strip_webp(data: bytes) -> bytes:
    out, pos = [], 12
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        end = pos + 8 + size + (size & 1)  # chunks are padded to an even length
        if end > len(data) + 1:
            raise ValueError("truncated WebP chunk")
        if data[pos : pos + 4] != WEBP_C2PA_CHUNK:
            out.append(data[pos:end])
        pos = end
    body = b"WEBP" + b"".join(out)
    return b"RIFF" + len(body).to_bytes(4, "little") + body

"""Content Credentials on every format people verify, the source photo's own store, and codes."""

from __future__ import annotations

import datetime as dt
import io
import json
import time
from collections.abc import Callable
from pathlib import Path

import av
import c2pa
import numpy as np
import pillow_heif
import pytest
from PIL import Image

from core.provenance.c2pa_media import sniff_mime, strip_manifest
from core.provenance.c2pa_sign import C2paSigner
from core.provenance.credentials import PLAIN_WORDS, C2paReader
from core.provenance.keys import Identity
from core.types import Claim, CredentialState
from tests.provenance.conftest import C2PA_FIXTURES, c2pa_make_chain, c2pa_make_jpeg

pillow_heif.register_heif_opener()

FORMATS = ["JPEG", "PNG", "WEBP", "HEIF"]
MIMES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "HEIF": "image/heic"}


def _image(fmt: str, seed: int = 3) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, fmt)
    return out.getvalue()


def _mov(path: Path) -> bytes:
    pixels = np.random.default_rng(5).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    with av.open(str(path), "w", format="mov") as out:
        stream = out.add_stream("libx264", rate=8)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for i in range(4):
            frame = av.VideoFrame.from_ndarray(np.roll(pixels, i, axis=1), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path.read_bytes()


def _store(data: bytes, anchors: bytes) -> tuple[str, dict[str, object]]:
    ctx = c2pa.Context.from_dict(
        {"trust": {"trust_anchors": anchors.decode()}, "verify": {"remote_manifest_fetch": False}}
    )
    with c2pa.Reader(sniff_mime(data), io.BytesIO(data), None, ctx) as reader:
        return reader.get_validation_state(), json.loads(reader.json())


@pytest.mark.parametrize("fmt", [*FORMATS, "MOV", "MP4"])
def test_each_format_signs_and_reads_trusted(
    fmt: str,
    tmp_path: Path,
    c2pa_signer: C2paSigner,
    c2pa_reader: C2paReader,
    c2pa_video: bytes,
    c2pa_claim: Callable[..., Claim],
) -> None:
    data = {"MOV": lambda: _mov(tmp_path / "a.mov"), "MP4": lambda: c2pa_video}.get(
        fmt, lambda: _image(fmt)
    )()
    signed, label = c2pa_signer.sign(data, c2pa_claim(ledger_id=f"L-{fmt}"))
    found = c2pa_reader.read(signed)
    assert found.state is CredentialState.TRUSTED, found.codes
    assert found.ledger_id == f"L-{fmt}"
    assert found.manifest_id == label
    assert found.ai_generated


def test_tampered_image_pixels_read_invalid(
    c2pa_signer: C2paSigner, c2pa_reader: C2paReader, c2pa_claim: Callable[..., Claim]
) -> None:
    signed, _ = c2pa_signer.sign(_image("JPEG"), c2pa_claim())
    at = len(signed) - 40  # inside the entropy-coded scan, after the manifest
    tampered = signed[:at] + bytes([signed[at] ^ 0x55]) + signed[at + 1 :]
    found = c2pa_reader.read(tampered)
    assert found.state is CredentialState.INVALID
    assert "assertion.dataHash.mismatch" in found.codes
    assert found.ledger_id == ""


def test_expired_certificate_reads_invalid_with_a_plain_reason(
    c2pa_video: bytes, c2pa_claim: Callable[..., Claim]
) -> None:
    # c2pa refuses to sign with an expired certificate, so the certificate expires right after.
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    chain, key, ca = c2pa_make_chain(now - dt.timedelta(days=1), now + dt.timedelta(seconds=2))
    brief = Identity(chain, key, ca, False, "brief signer", now)
    signed, _ = C2paSigner(brief).sign(c2pa_video, c2pa_claim())
    reader = C2paReader(ca)
    assert reader.read(signed).state is CredentialState.TRUSTED
    time.sleep(max(0.0, (now + dt.timedelta(seconds=3) - dt.datetime.now(dt.UTC)).total_seconds()))
    found = reader.read(signed)
    assert found.state is CredentialState.INVALID
    assert "signingCredential.expired" in found.codes
    assert PLAIN_WORDS["signingCredential.expired"] in found.reasons
    assert found.ledger_id == ""


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_source_photos_own_credentials_are_not_copied_into_the_clip(
    fmt: str,
    c2pa_signer: C2paSigner,
    c2pa_video: bytes,
    c2pa_claim: Callable[..., Claim],
    c2pa_identity: Identity,
) -> None:
    # A photo that carries credentials (with a thumbnail) of its own, as phones now make them.
    photo_poster = c2pa_make_jpeg(40, (250, 250, 0))
    photo, _ = c2pa_signer.sign(_image(fmt), c2pa_claim(ledger_id="PHOTO-1", poster=photo_poster))
    assert C2paReader(c2pa_identity.anchors_pem).read(photo).ledger_id == "PHOTO-1"
    clip, _ = c2pa_signer.sign(c2pa_video, c2pa_claim(source=photo, source_mime=MIMES[fmt]))
    state, store = _store(clip, c2pa_identity.anchors_pem)
    assert state == "Trusted"
    manifests = store["manifests"]
    assert isinstance(manifests, dict)
    assert len(manifests) == 1  # only ours: the photo's store stayed behind
    (ingredient,) = manifests[store["active_manifest"]]["ingredients"]
    assert ingredient["relationship"] == "inputTo"
    assert "active_manifest" not in ingredient
    assert b"PHOTO-1" not in clip
    assert photo_poster[-200:] not in clip


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_strip_manifest_leaves_a_plain_decodable_photo(
    fmt: str, c2pa_signer: C2paSigner, c2pa_claim: Callable[..., Claim], c2pa_reader: C2paReader
) -> None:
    plain = _image(fmt)
    signed, _ = c2pa_signer.sign(plain, c2pa_claim())
    stripped = strip_manifest(signed, MIMES[fmt])
    assert stripped is not None
    assert c2pa_reader.read(stripped).state is CredentialState.NONE
    with Image.open(io.BytesIO(stripped)) as a, Image.open(io.BytesIO(plain)) as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert strip_manifest(plain, MIMES[fmt]) is not None
    assert strip_manifest(b"\xff\xd8\xff\xe0\xff\xff\x00", "image/jpeg") is None  # cut short
    assert strip_manifest(_image("HEIF"), "image/heic") is None  # not cut in BMFF


def _codes_met(
    tmp_path: Path, signer: C2paSigner, reader: C2paReader, video: bytes, claim: Claim
) -> set[str]:
    """Every validation code our self-made broken files produce."""
    now = dt.datetime.now(dt.UTC)
    signed, _ = signer.sign(video, claim)
    image, _ = signer.sign(_image("PNG"), claim)
    chain, key, ca = c2pa_make_chain(now - dt.timedelta(days=1), now + dt.timedelta(days=9))
    other, _ = C2paSigner(Identity(chain, key, ca, False, "Eve", now)).sign(video, claim)
    mdat = signed.index(b"mdat") + 200
    files = [
        signed[:mdat] + bytes([signed[mdat] ^ 1]) + signed[mdat + 1 :],
        signed.replace(claim.ledger_id.encode(), b"X" * len(claim.ledger_id)),
        image[:-30] + bytes([image[-30] ^ 1]) + image[-29:],
        other,
    ]
    return {code for data in files for code in reader.read(data).codes}


def test_every_validation_code_met_has_plain_words(
    tmp_path: Path,
    c2pa_signer: C2paSigner,
    c2pa_reader: C2paReader,
    c2pa_video: bytes,
    c2pa_claim: Callable[..., Claim],
    request: pytest.FixtureRequest,
) -> None:
    codes = _codes_met(tmp_path, c2pa_signer, c2pa_reader, c2pa_video, c2pa_claim())
    assert {"assertion.bmffHash.mismatch", "signingCredential.untrusted"} <= codes
    fixtures = C2PA_FIXTURES
    if fixtures.is_dir():
        anchors = (fixtures / "test_cert_root_bundle.pem").read_bytes()
        for reader in (c2pa_reader, C2paReader(anchors)):
            for path in sorted(fixtures.iterdir()):
                codes |= set(reader.read(path.read_bytes()).codes)
    missing = sorted(code for code in codes if code not in PLAIN_WORDS)
    assert not missing, f"validation codes without plain words: {missing}"
    for code in codes:
        assert PLAIN_WORDS[code].endswith(".")

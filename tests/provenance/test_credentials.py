from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from core.provenance.c2pa_sign import TRAINED_ALGORITHMIC_MEDIA, C2paSigner
from core.provenance.credentials import (
    INGREDIENT_PREFIX,
    PLAIN_WORDS,
    REMOTE_REASON,
    C2paReader,
    sniff_mime,
)
from core.provenance.keys import DEV_SIGNER_CN, Identity, init_dev_identity, load_identity
from core.types import Claim, CredentialState
from tests.provenance.conftest import c2pa_make_chain, c2pa_make_jpeg


def _mdat_offset(data: bytes) -> int:
    offset = 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        if data[offset + 4 : offset + 8] == b"mdat":
            return offset
        offset += size
    raise AssertionError("no mdat box")


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


def test_our_clip_reads_trusted_with_everything_filled(
    c2pa_reader: C2paReader, c2pa_signed: tuple[bytes, str]
) -> None:
    signed, label = c2pa_signed
    found = c2pa_reader.read(signed)
    assert found.state is CredentialState.TRUSTED
    assert found.codes == ()
    assert found.reasons == ()
    assert found.ai_generated
    assert found.source_type == TRAINED_ALGORITHMIC_MEDIA
    assert found.signer == DEV_SIGNER_CN
    assert found.software == "alive 0.1.0"
    assert found.manifest_id == label
    assert found.ledger_id == "LEDGER-7f3a9c"
    assert found.signed_at == ""  # no timestamp authority in tests


def test_unknown_signer_reads_valid(tmp_path: Path, c2pa_signed: tuple[bytes, str]) -> None:
    other = load_identity(None, None, None, init_dev_identity(tmp_path / "other"))
    found = C2paReader(other.anchors_pem).read(c2pa_signed[0])
    assert found.state is CredentialState.VALID
    assert found.codes == ("signingCredential.untrusted",)
    assert found.reasons == (PLAIN_WORDS["signingCredential.untrusted"],)
    assert found.ledger_id == "LEDGER-7f3a9c"
    assert found.ai_generated


def test_no_anchors_at_all_reads_valid(c2pa_signed: tuple[bytes, str]) -> None:
    assert C2paReader(b"").read(c2pa_signed[0]).state is CredentialState.VALID


def test_one_flipped_byte_in_mdat_reads_invalid(
    c2pa_reader: C2paReader, c2pa_signed: tuple[bytes, str]
) -> None:
    signed = c2pa_signed[0]
    at = _mdat_offset(signed) + 64
    found = c2pa_reader.read(_flip(signed, at))
    assert found.state is CredentialState.INVALID
    assert "assertion.bmffHash.mismatch" in found.codes
    assert "The video was changed after it was signed." in found.reasons
    assert found.ledger_id == ""  # a broken manifest's ledger id is not believed
    assert found.ai_generated  # ...but what it declares is still reported


def test_tampered_assertion_reads_invalid(
    c2pa_reader: C2paReader, c2pa_signed: tuple[bytes, str]
) -> None:
    signed = c2pa_signed[0]
    assert signed.count(b"LEDGER-7f3a9c") == 1
    tampered = signed.replace(b"LEDGER-7f3a9c", b"LEDGER-000000")
    found = c2pa_reader.read(tampered)
    assert found.state is CredentialState.INVALID
    assert "assertion.hashedURI.mismatch" in found.codes
    assert found.ledger_id == ""


def test_remuxed_clip_has_no_credentials(
    c2pa_reader: C2paReader, c2pa_signed: tuple[bytes, str]
) -> None:
    out = io.BytesIO()
    with av.open(io.BytesIO(c2pa_signed[0])) as src, av.open(out, "w", format="mp4") as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    found = c2pa_reader.read(out.getvalue())
    assert found.state is CredentialState.NONE
    assert found.reasons == ()


def test_signed_without_timestamp_by_a_currently_valid_cert_reads_fine(
    c2pa_identity: Identity,
    c2pa_video: bytes,
    c2pa_claim: Callable[..., Claim],
) -> None:
    now = dt.datetime.now(dt.UTC)
    chain, key, ca = c2pa_make_chain(now - dt.timedelta(days=1), now + dt.timedelta(days=2), "shop")
    short = Identity(chain, key, ca, False, "shop signer", now + dt.timedelta(days=2))
    signed, _ = C2paSigner(short).sign(c2pa_video, c2pa_claim())
    found = C2paReader(ca).read(signed)
    assert found.state is CredentialState.TRUSTED
    assert found.signer == "shop signer"  # the issuer org is already in the name
    assert found.signed_at == ""


def test_wrong_signer_is_not_trusted(
    c2pa_video: bytes, c2pa_claim: Callable[..., Claim], c2pa_reader: C2paReader
) -> None:
    now = dt.datetime.now(dt.UTC)
    chain, key, ca = c2pa_make_chain(now - dt.timedelta(days=1), now + dt.timedelta(days=9), "Eve")
    impostor = Identity(chain, key, ca, False, "Eve signer", now + dt.timedelta(days=9))
    signed, _ = C2paSigner(impostor).sign(c2pa_video, c2pa_claim(ledger_id="FORGED"))
    found = c2pa_reader.read(signed)
    assert found.state is CredentialState.VALID
    assert found.codes == ("signingCredential.untrusted",)
    assert found.signer == "Eve signer"


def _png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        bytes(range(256)) * 8,
        b"\xff\xd8\xff\xe0" + b"\x13" * 500,
        b"\x00\x00\x00\x18ftypisom" + b"\x07" * 500,
        b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x01" * 64,
        _png(),
        c2pa_make_jpeg(),
    ],
    ids=["empty", "one-byte", "garbage", "jpeg-head", "mp4-head", "webp-head", "png", "jpeg"],
)
def test_hostile_or_plain_input_reads_none(c2pa_reader: C2paReader, data: bytes) -> None:
    found = c2pa_reader.read(data)
    assert found.state is CredentialState.NONE
    assert found.codes == ()


def test_truncated_signed_clip_never_raises(
    c2pa_reader: C2paReader, c2pa_signed: tuple[bytes, str]
) -> None:
    signed = c2pa_signed[0]
    for cut in (40, 200, 2000, len(signed) // 2, len(signed) - 1):
        found = c2pa_reader.read(signed[:cut])
        assert found.state in (CredentialState.NONE, CredentialState.INVALID)


@pytest.mark.parametrize(
    ("head", "mime"),
    [
        (b"\xff\xd8\xff\xe1", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "image/heic"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf", "image/avif"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1avif", "image/avif"),
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41", "video/mp4"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  ", "video/quicktime"),
        (b"\x00\x00\x00\x08wide\x00\x00\x00\x10mdat", "video/quicktime"),
        (b"GIF89a", "image/gif"),
        (b"II*\x00", "image/tiff"),
        (b"hello", None),
    ],
)
def test_sniff_mime(head: bytes, mime: str | None) -> None:
    assert sniff_mime(head + b"\x00" * 32) == mime


def test_plain_words_cover_the_brief() -> None:
    for code in (
        "claimSignature.mismatch",
        "assertion.bmffHash.mismatch",
        "assertion.dataHash.mismatch",
        "assertion.hashedURI.mismatch",
        "signingCredential.untrusted",
        "signingCredential.expired",
        "signingCredential.invalid",
        "signingCredential.revoked",
        "signingCredential.ocsp.revoked",
        "timeStamp.mismatch",
        "timeStamp.untrusted",
        "ingredient.manifest.missing",
        "ingredient.unknownProvenance",
        "assertion.action.malformed",
        "cawg.x509.credential.untrusted",
    ):
        sentence = PLAIN_WORDS[code]
        assert sentence.endswith(".")
        assert sentence[0].isupper()
        assert len(sentence) < 80


# --- shared fixtures from public repositories ---------------------------------------------


@pytest.fixture
def c2pa_test_reader(c2pa_fixtures: Path) -> C2paReader:
    return C2paReader((c2pa_fixtures / "test_cert_root_bundle.pem").read_bytes())


@pytest.mark.parametrize(
    ("name", "state", "code"),
    [
        ("C.jpg", CredentialState.TRUSTED, None),
        ("CACA.jpg", CredentialState.TRUSTED, None),
        ("XCA.jpg", CredentialState.INVALID, "assertion.dataHash.mismatch"),
        ("E-sig-CA.jpg", CredentialState.INVALID, "claimSignature.mismatch"),
        ("adobe-20220124-E-uri-CA.jpg", CredentialState.INVALID, "assertion.hashedURI.mismatch"),
        ("adobe-20220124-E-clm-CAICAI.jpg", CredentialState.INVALID, "ingredient.manifest.missing"),
        ("video1_tampered_mdat.mp4", CredentialState.INVALID, "assertion.bmffHash.mismatch"),
        ("video1.mp4", CredentialState.VALID, "signingCredential.untrusted"),
        ("C_with_CAWG_data.jpg", CredentialState.VALID, "cawg.x509.credential.untrusted"),
        ("no_manifest.jpg", CredentialState.NONE, None),
        ("video1_no_manifest.mp4", CredentialState.NONE, None),
        ("c.mov", CredentialState.NONE, None),
    ],
)
def test_shared_fixtures(
    c2pa_fixtures: Path,
    c2pa_test_reader: C2paReader,
    name: str,
    state: CredentialState,
    code: str | None,
) -> None:
    found = c2pa_test_reader.read((c2pa_fixtures / name).read_bytes())
    assert found.state is state
    if code is not None:
        assert code in found.codes
    for seen in found.codes:
        assert seen in PLAIN_WORDS, f"{seen} has no plain words"
    assert len(found.reasons) == len(found.codes)
    assert found.ledger_id == ""


def test_fixture_details(c2pa_fixtures: Path, c2pa_test_reader: C2paReader) -> None:
    good = c2pa_test_reader.read((c2pa_fixtures / "C.jpg").read_bytes())
    assert good.signer == "C2PA Signer, C2PA Test Signing Cert"
    assert good.signed_at.startswith("2024-08-06T")
    assert good.software == "make_test_images 0.33.1"
    assert "urn:uuid:" in good.manifest_id
    # algorithmicMedia (a computed gradient) counts as machine-made too.
    assert good.source_type.endswith("/algorithmicMedia")
    assert good.ai_generated
    video = c2pa_test_reader.read((c2pa_fixtures / "video1.mp4").read_bytes())
    # The untrusted signer belongs to the ingredient, and the reason says so.
    assert video.reasons == (INGREDIENT_PREFIX + PLAIN_WORDS["signingCredential.untrusted"],)


def test_remote_manifest_is_not_fetched(c2pa_fixtures: Path, c2pa_test_reader: C2paReader) -> None:
    found = c2pa_test_reader.read((c2pa_fixtures / "cloud.jpg").read_bytes())
    assert found.state is CredentialState.NONE
    assert found.reasons == (REMOTE_REASON,)

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image

from core.provenance.c2pa_sign import C2paSigner
from core.provenance.credentials import C2paReader
from core.provenance.keys import Identity, init_dev_identity, load_identity
from core.types import Claim
from tests.conftest import FIXTURES

C2PA_FIXTURES = FIXTURES / "c2pa"


def c2pa_make_mp4(path: Path, *, frames: int = 16, size: int = 64, fps: int = 16) -> bytes:
    """A small H.264 MP4 with the moov box first, as the encoder makes them."""
    rng = np.random.default_rng(7)
    # faststart rewrites the file after muxing, so it needs a real path, not a BytesIO.
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        base = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.roll(base, i, axis=1), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path.read_bytes()


def c2pa_make_jpeg(size: int = 96, color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    pixels = np.zeros((size, size, 3), np.uint8)
    pixels[..., :] = color
    pixels[: size // 2, : size // 2] = (20, 180, 60)
    # Noise makes the compressed data unique, so a test can tell whether a copy is embedded.
    noise = np.random.default_rng(size).integers(0, 40, pixels.shape, dtype=np.uint8)
    pixels = pixels // 2 + noise
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def c2pa_make_chain(
    not_before: dt.datetime, not_after: dt.datetime, org: str = "test org"
) -> tuple[bytes, bytes, bytes]:
    """A CA and a leaf with the C2PA profile and the given leaf dates: (chain, key, ca)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{org} CA"),
        ]
    )
    usage = {
        "content_commitment": False,
        "key_encipherment": False,
        "data_encipherment": False,
        "key_agreement": False,
        "encipher_only": False,
        "decipher_only": False,
    }
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=4000))
        .not_valid_after(now + dt.timedelta(days=4000))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=False, key_cert_sign=True, crl_sign=True, **usage),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                    x509.NameAttribute(NameOID.COMMON_NAME, f"{org} signer"),
                ]
            )
        )
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False, **usage),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = leaf_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    ca_pem = ca.public_bytes(pem)
    return leaf.public_bytes(pem) + ca_pem, key_pem, ca_pem


@pytest.fixture(scope="session")
def c2pa_keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_dev_identity(tmp_path_factory.mktemp("c2pa") / "keys")


@pytest.fixture(scope="session")
def c2pa_identity(c2pa_keys_dir: Path) -> Identity:
    return load_identity(None, None, None, c2pa_keys_dir)


@pytest.fixture(scope="session")
def c2pa_signer(c2pa_identity: Identity) -> C2paSigner:
    return C2paSigner(c2pa_identity)


@pytest.fixture(scope="session")
def c2pa_reader(c2pa_identity: Identity) -> C2paReader:
    return C2paReader(c2pa_identity.anchors_pem)


@pytest.fixture(scope="session")
def c2pa_video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return c2pa_make_mp4(tmp_path_factory.mktemp("c2pa-video") / "clip.mp4")


@pytest.fixture(scope="session")
def c2pa_photo() -> bytes:
    return c2pa_make_jpeg()


@pytest.fixture(scope="session")
def c2pa_claim(c2pa_photo: bytes) -> Callable[..., Claim]:
    def make(**changes: object) -> Claim:
        values: dict[str, object] = {
            "ledger_id": "LEDGER-7f3a9c",
            "title": "clip.mp4",
            "software": "alive 0.1.0",
            "backend": "procedural",
            "model": "procedural-1",
            "source": c2pa_photo,
            "source_mime": "image/jpeg",
            "poster": c2pa_make_jpeg(48, (10, 10, 200)),
        }
        values.update(changes)
        return Claim(**values)  # type: ignore[arg-type]

    return make


@pytest.fixture(scope="session")
def c2pa_signed(
    c2pa_signer: C2paSigner, c2pa_video: bytes, c2pa_claim: Callable[..., Claim]
) -> tuple[bytes, str]:
    return c2pa_signer.sign(c2pa_video, c2pa_claim())


@pytest.fixture
def c2pa_fixtures() -> Path:
    if not C2PA_FIXTURES.is_dir():
        pytest.skip(f"shared C2PA fixtures not found at {C2PA_FIXTURES}")
    return C2PA_FIXTURES

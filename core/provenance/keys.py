"""Signing identity for the sign step: the development CA and leaf, or a configured key.

A development identity is made by ``alive keys init`` under ``data_dir/keys``; production
passes ``ALIVE_SIGNING_CERT`` / ``ALIVE_SIGNING_KEY`` (and optionally ``ALIVE_TRUST_ANCHORS``).
The private key never appears in a repr, a log line or an error message.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core.errors import ConfigError

log = logging.getLogger(__name__)

CA_FILE = "ca.pem"
CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"

DEV_ORG = "alive development"
DEV_SIGNER_CN = "alive development signer (NOT FOR PRODUCTION)"
DEV_CA_CN = "alive development root CA (NOT FOR PRODUCTION)"

# NOTE: lifetimes follow research/c2pa-provenance.md §6.2 (root ~10 years, leaf 1-2 years);
# the leaf starts a few minutes early so a slightly slow clock still accepts it.
CA_DAYS = 3650
LEAF_DAYS = 730
BACKDATE = dt.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Identity:
    """A signing identity: certificate chain, private key and the anchors that trust it.

    Attributes:
        cert_chain_pem: PEM chain, leaf first.
        key_pem: PEM private key of the leaf (never shown in ``repr``).
        anchors_pem: PEM trust anchors for reading our own clips (may be empty).
        development: whether this is the development identity.
        subject: the leaf's subject, RFC 4514.
        not_after: when the leaf expires (UTC).
        name: a readable signer name for notes: the leaf's common name, else its organisation.
    """

    cert_chain_pem: bytes
    key_pem: bytes = field(repr=False)
    anchors_pem: bytes
    development: bool
    subject: str
    not_after: dt.datetime
    name: str = ""


def init_dev_identity(keys_dir: Path, *, force: bool = False) -> Path:
    """Create the development CA and signing leaf under ``keys_dir``.

    Args:
        keys_dir: the folder for ``ca.pem``, ``cert.pem`` (leaf + CA) and ``key.pem``.
        force: replace an existing identity.

    Returns:
        ``keys_dir``.
    """
    if not force and all((keys_dir / name).is_file() for name in (CA_FILE, CERT_FILE, KEY_FILE)):
        log.info("development signing identity already present in %s", keys_dir)
        return keys_dir
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(keys_dir, 0o700)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _make_ca(ca_key, now)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_cert = _make_leaf(leaf_key, ca_key, ca_cert, now)
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    leaf_pem = leaf_cert.public_bytes(serialization.Encoding.PEM)
    key_pem = leaf_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_private(keys_dir / KEY_FILE, key_pem)
    (keys_dir / CA_FILE).write_bytes(ca_pem)
    (keys_dir / CERT_FILE).write_bytes(leaf_pem + ca_pem)
    log.warning(
        "created a DEVELOPMENT signing identity in %s: clips signed with it are not trusted "
        "by anyone else; set ALIVE_SIGNING_CERT and ALIVE_SIGNING_KEY for production",
        keys_dir,
    )
    return keys_dir


def load_identity(
    cert: Path | None, key: Path | None, anchors: Path | None, keys_dir: Path
) -> Identity:
    """Load the production identity when configured, else the development one.

    Args:
        cert: PEM certificate chain, leaf first (``ALIVE_SIGNING_CERT``).
        key: PEM private key (``ALIVE_SIGNING_KEY``).
        anchors: PEM trust anchors (``ALIVE_TRUST_ANCHORS``), optional.
        keys_dir: where ``alive keys init`` put the development identity.

    Raises:
        ConfigError: a path is missing or unreadable, the key does not match the
            certificate, or the certificate is not currently valid.
    """
    if cert is not None or key is not None:
        if cert is None:
            raise ConfigError("ALIVE_SIGNING_KEY is set but ALIVE_SIGNING_CERT is missing")
        if key is None:
            raise ConfigError("ALIVE_SIGNING_CERT is set but ALIVE_SIGNING_KEY is missing")
        return _build_identity(cert, key, anchors, development=False)
    if not (keys_dir / CERT_FILE).is_file() or not (keys_dir / KEY_FILE).is_file():
        raise ConfigError(
            f"no signing identity: none configured and none in {keys_dir}; "
            "run `alive keys init` to create a development identity"
        )
    identity = _build_identity(keys_dir / CERT_FILE, keys_dir / KEY_FILE, None, development=True)
    if anchors is not None:
        # Configured anchors are added to the development CA, so our own clips stay trusted.
        extra = _read(anchors, "trust anchors")
        identity = dataclasses.replace(identity, anchors_pem=identity.anchors_pem + extra)
    return identity


def describe_identity(identity: Identity) -> dict[str, str]:
    """Return what ``alive keys show`` prints: who signs, until when, with what."""
    leaf = x509.load_pem_x509_certificates(identity.cert_chain_pem)[0]
    public = leaf.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        algorithm = f"ECDSA {public.curve.name}"
    else:
        algorithm = type(public).__name__.removesuffix("PublicKey").lstrip("_")
    return {
        "subject": identity.subject,
        "issuer": leaf.issuer.rfc4514_string(),
        "not_after": identity.not_after.isoformat(),
        "development": "yes" if identity.development else "no",
        "fingerprint_sha256": hashlib.sha256(
            leaf.public_bytes(serialization.Encoding.DER)
        ).hexdigest(),
        "algorithm": algorithm,
    }


def _build_identity(cert: Path, key: Path, anchors: Path | None, *, development: bool) -> Identity:
    chain_pem = _read(cert, "certificate")
    key_pem = _read(key, "private key")
    try:
        chain = x509.load_pem_x509_certificates(chain_pem)
    except ValueError:
        raise ConfigError(f"{cert} does not hold a PEM certificate chain") from None
    try:
        private = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # NOTE: the library's message may quote the input; never pass it on.
        raise ConfigError(f"{key} does not hold an unencrypted PEM private key") from None
    leaf = chain[0]
    if private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise ConfigError(f"the private key in {key} does not match the certificate in {cert}")
    _check_validity(leaf, cert)
    anchors_pem = _read(anchors, "trust anchors") if anchors is not None else _root_of(chain)
    return Identity(
        cert_chain_pem=chain_pem,
        key_pem=key_pem,
        anchors_pem=anchors_pem,
        development=development,
        subject=leaf.subject.rfc4514_string(),
        not_after=leaf.not_valid_after_utc,
        name=_display_name(leaf),
    )


def _display_name(cert: x509.Certificate) -> str:
    """The common name, else the organisation, else the whole subject."""
    for oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME):
        values = cert.subject.get_attributes_for_oid(oid)
        if values:
            return str(values[0].value)
    return cert.subject.rfc4514_string()


def _check_validity(leaf: x509.Certificate, path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    if now < leaf.not_valid_before_utc:
        raise ConfigError(
            f"the certificate in {path} is not valid before {leaf.not_valid_before_utc:%Y-%m-%d}"
        )
    if now > leaf.not_valid_after_utc:
        raise ConfigError(
            f"the certificate in {path} expired on {leaf.not_valid_after_utc:%Y-%m-%d}"
        )


def _root_of(chain: list[x509.Certificate]) -> bytes:
    """The chain's last certificate when it is self-signed (a root), else nothing."""
    last = chain[-1]
    if last.issuer == last.subject:
        return last.public_bytes(serialization.Encoding.PEM)
    return b""


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} file {path}: {exc.strerror}") from None


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret so it is never readable by others, not even for a moment."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEV_ORG),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _make_ca(key: ec.EllipticCurvePrivateKey, now: dt.datetime) -> x509.Certificate:
    name = _name(DEV_CA_CN)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _make_leaf(
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    now: dt.datetime,
) -> x509.Certificate:
    # The profile c2pa-rs accepts without extra trust_config: CA:FALSE, digitalSignature,
    # EKU emailProtection, SKI + AKI (research/c2pa-provenance.md §3).
    return (
        x509.CertificateBuilder()
        .subject_name(_name(DEV_SIGNER_CN))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )

from __future__ import annotations

import datetime as dt
import logging
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from core.errors import ConfigError
from core.provenance.keys import (
    DEV_SIGNER_CN,
    Identity,
    describe_identity,
    init_dev_identity,
    load_identity,
)
from tests.provenance.conftest import c2pa_make_chain


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_dev_identity_files_and_modes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    keys = tmp_path / "keys"
    with caplog.at_level(logging.WARNING, logger="core.provenance.keys"):
        init_dev_identity(keys)
    assert sorted(p.name for p in keys.iterdir()) == ["ca.pem", "cert.pem", "key.pem"]
    assert _mode(keys / "key.pem") == 0o600
    assert _mode(keys) == 0o700
    assert any("DEVELOPMENT" in r.getMessage() for r in caplog.records)
    assert b"PRIVATE KEY" not in (keys / "cert.pem").read_bytes()


def test_dev_certificates_follow_the_c2pa_profile(c2pa_keys_dir: Path) -> None:
    leaf, ca = x509.load_pem_x509_certificates((c2pa_keys_dir / "cert.pem").read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ca_usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ca_usage.key_cert_sign
    assert ca_usage.crl_sign
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.EMAIL_PROTECTION]
    leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    now = dt.datetime.now(dt.UTC)
    assert now - dt.timedelta(hours=1) < leaf.not_valid_before_utc < now
    assert dt.timedelta(days=700) < leaf.not_valid_after_utc - now < dt.timedelta(days=740)
    assert ca.not_valid_after_utc - now > dt.timedelta(days=3600)
    assert leaf.subject.rfc4514_string() == f"CN={DEV_SIGNER_CN},O=alive development"


def test_init_is_idempotent_unless_forced(tmp_path: Path) -> None:
    keys = init_dev_identity(tmp_path / "k")
    first = (keys / "key.pem").read_bytes()
    init_dev_identity(keys)
    assert (keys / "key.pem").read_bytes() == first
    init_dev_identity(keys, force=True)
    assert (keys / "key.pem").read_bytes() != first
    assert _mode(keys / "key.pem") == 0o600


def test_dev_identity_loads_with_its_ca_as_anchor(c2pa_identity: Identity, c2pa_keys_dir: Path):
    assert c2pa_identity.development
    assert c2pa_identity.anchors_pem == (c2pa_keys_dir / "ca.pem").read_bytes()
    assert DEV_SIGNER_CN in c2pa_identity.subject
    assert c2pa_identity.not_after > dt.datetime.now(dt.UTC)


def test_repr_never_shows_the_key(c2pa_identity: Identity) -> None:
    assert b"PRIVATE KEY" in c2pa_identity.key_pem
    assert "PRIVATE KEY" not in repr(c2pa_identity)
    assert "key_pem" not in repr(c2pa_identity)


def test_missing_dev_identity_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="alive keys init"):
        load_identity(None, None, None, tmp_path / "nothing")


def test_cert_and_key_are_required_together(tmp_path: Path, c2pa_keys_dir: Path) -> None:
    with pytest.raises(ConfigError, match="ALIVE_SIGNING_KEY is missing"):
        load_identity(c2pa_keys_dir / "cert.pem", None, None, tmp_path)
    with pytest.raises(ConfigError, match="ALIVE_SIGNING_CERT is missing"):
        load_identity(None, c2pa_keys_dir / "key.pem", None, tmp_path)


def test_production_identity_anchors(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    chain, key, ca = c2pa_make_chain(now - dt.timedelta(days=1), now + dt.timedelta(days=30))
    (tmp_path / "chain.pem").write_bytes(chain)
    (tmp_path / "leaf.pem").write_bytes(chain[: chain.index(ca)])
    (tmp_path / "key.pem").write_bytes(key)
    (tmp_path / "anchors.pem").write_bytes(b"ANCHORS")
    full = load_identity(tmp_path / "chain.pem", tmp_path / "key.pem", None, tmp_path / "none")
    assert not full.development
    assert full.anchors_pem == ca  # the chain's self-signed root
    leaf_only = load_identity(tmp_path / "leaf.pem", tmp_path / "key.pem", None, tmp_path)
    assert leaf_only.anchors_pem == b""
    given = load_identity(
        tmp_path / "chain.pem", tmp_path / "key.pem", tmp_path / "anchors.pem", tmp_path
    )
    assert given.anchors_pem == b"ANCHORS"


def test_key_must_match_the_certificate(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    chain, _, _ = c2pa_make_chain(now - dt.timedelta(days=1), now + dt.timedelta(days=30))
    _, other_key, _ = c2pa_make_chain(now - dt.timedelta(days=1), now + dt.timedelta(days=30))
    (tmp_path / "chain.pem").write_bytes(chain)
    (tmp_path / "key.pem").write_bytes(other_key)
    with pytest.raises(ConfigError, match="does not match") as info:
        load_identity(tmp_path / "chain.pem", tmp_path / "key.pem", None, tmp_path)
    assert "PRIVATE" not in str(info.value)
    assert other_key.decode().splitlines()[1] not in str(info.value)


@pytest.mark.parametrize(
    ("start", "end", "words"),
    [(-400, -10, "expired"), (10, 400, "not valid before")],
)
def test_certificate_must_be_valid_now(tmp_path: Path, start: int, end: int, words: str) -> None:
    now = dt.datetime.now(dt.UTC)
    chain, key, _ = c2pa_make_chain(now + dt.timedelta(days=start), now + dt.timedelta(days=end))
    (tmp_path / "chain.pem").write_bytes(chain)
    (tmp_path / "key.pem").write_bytes(key)
    with pytest.raises(ConfigError, match=words):
        load_identity(tmp_path / "chain.pem", tmp_path / "key.pem", None, tmp_path)


def test_unreadable_or_garbage_files(tmp_path: Path, c2pa_keys_dir: Path) -> None:
    (tmp_path / "junk.pem").write_bytes(b"not a pem")
    with pytest.raises(ConfigError, match="cannot read the private key"):
        load_identity(c2pa_keys_dir / "cert.pem", tmp_path / "absent.pem", None, tmp_path)
    with pytest.raises(ConfigError, match="unencrypted PEM private key"):
        load_identity(c2pa_keys_dir / "cert.pem", tmp_path / "junk.pem", None, tmp_path)
    with pytest.raises(ConfigError, match="PEM certificate"):
        load_identity(tmp_path / "junk.pem", c2pa_keys_dir / "key.pem", None, tmp_path)


def test_describe_identity(c2pa_identity: Identity) -> None:
    info = describe_identity(c2pa_identity)
    assert info["development"] == "yes"
    assert info["algorithm"] == "ECDSA secp256r1"
    assert "alive development root CA" in info["issuer"]
    assert info["subject"] == c2pa_identity.subject
    assert len(info["fingerprint_sha256"]) == 64
    assert dt.datetime.fromisoformat(info["not_after"]) == c2pa_identity.not_after
    assert all("PRIVATE" not in value for value in info.values())

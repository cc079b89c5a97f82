"""Step 8 of the pipeline: sign the finished clip with C2PA Content Credentials, in memory.

The manifest says the clip is AI-generated (``c2pa.created`` with ``trainedAlgorithmicMedia``),
names the software and model, links the source photo as an ``inputTo`` ingredient (a hash;
its thumbnail only when the chat opted in), carries our ledger id in ``org.alive.clip`` and
opts out of AI training. Layout: research/c2pa-provenance.md §2, "Recommended manifest".
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from core import __version__
from core.errors import ProvenanceError
from core.provenance.c2pa_media import sniff_mime, strip_manifest
from core.provenance.keys import Identity
from core.types import Claim

log = logging.getLogger(__name__)

VIDEO_MIME = "video/mp4"
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
CLIP_ASSERTION = "org.alive.clip"
PHOTO_LABEL = "photo"
POSTER_ID = "poster.jpg"
# NOTE: the four CAWG T&DM v1.0 entry keys (research/c2pa-provenance.md §2).
TRAINING_MINING_KEYS = (
    "cawg.ai_generative_training",
    "cawg.ai_inference",
    "cawg.ai_training",
    "cawg.data_mining",
)
# NOTE: 256 px keeps an opted-in photo thumbnail near 5 KB instead of an upscaled 1024 px
# one of ~40 KB (research/c2pa-provenance.md §1, "Ingredient from a stream").
SOURCE_THUMBNAIL_EDGE = 256
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/heic": "heic"}


class C2paSigner:
    """Signs clips with one identity; implements the ``Signer`` port.

    The c2pa ``Signer`` and both ``Context`` objects are made once here and reused; a
    c2pa ``Builder`` signs only once, so each call builds a fresh one.

    Args:
        identity: the certificate chain and key to sign with.
        timestamp_url: an RFC 3161 authority, or ``""`` for none (signing then works offline).
        claim_generator: our product name in ``claim_generator_info``.
        version: our version in ``claim_generator_info`` and the software agent.

    Raises:
        ProvenanceError: the identity cannot be used for C2PA signing.
    """

    def __init__(
        self,
        identity: Identity,
        *,
        timestamp_url: str = "",
        claim_generator: str = "alive",
        version: str = __version__,
    ) -> None:
        import c2pa

        self._c2pa = c2pa
        self._generator = claim_generator
        self._version = version
        alg = _algorithm(identity.key_pem)
        info = c2pa.C2paSignerInfo(
            alg.encode(),
            identity.cert_chain_pem,
            identity.key_pem,
            timestamp_url.encode() if timestamp_url else None,
        )
        try:
            self._signer = c2pa.Signer.from_info(info)
            # Two contexts because the thumbnail switch is a context setting; the claim
            # thumbnail (our poster) is added explicitly, so it is unaffected by it.
            self._plain = c2pa.Context.from_dict(_context_config(thumbnail=False))
            self._with_thumbnail = c2pa.Context.from_dict(_context_config(thumbnail=True))
        except c2pa.C2paError as exc:
            raise ProvenanceError(f"cannot set up C2PA signing: {_plain(exc)}") from None
        log.info("C2PA signer ready (%s, timestamp authority %s)", alg, timestamp_url or "none")

    def sign(self, video: bytes, claim: Claim) -> tuple[bytes, str]:
        """Return the signed MP4 bytes and the active manifest label.

        Raises:
            ProvenanceError: c2pa refused the identity, the manifest or the file.
        """
        c2pa = self._c2pa
        context = self._with_thumbnail if claim.include_source_thumbnail else self._plain
        mime = sniff_mime(video) or VIDEO_MIME
        out = io.BytesIO()
        try:
            source = self._bare_source(claim)
            manifest = self._manifest(claim, mime, streamless=source is None)
            with c2pa.Builder(manifest, context) as builder:
                if claim.poster:
                    builder.add_resource(POSTER_ID, io.BytesIO(claim.poster))
                if source is not None:
                    builder.add_ingredient(
                        self._ingredient(claim), claim.source_mime, io.BytesIO(source)
                    )
                builder.sign(self._signer, mime, io.BytesIO(video), out)
            signed = out.getvalue()
            label = self._active_label(signed, mime, context)
        except c2pa.C2paError as exc:
            raise ProvenanceError(f"C2PA signing failed: {_plain(exc)}") from None
        log.debug(
            "signed %s: %d -> %d bytes, manifest %s", claim.title, len(video), len(signed), label
        )
        return signed, label

    def _bare_source(self, claim: Claim) -> bytes | None:
        """The source photo without Content Credentials of its own, or None to omit its bytes.

        A photo's own manifest store would ride along inside every shared clip (with its
        thumbnail and whatever the camera or app recorded), so it is cut out first; where the
        format does not allow that, the photo is described without its bytes.
        """
        stripped = strip_manifest(claim.source, claim.source_mime)
        if stripped is not None:
            return stripped
        try:
            with self._c2pa.Reader(
                claim.source_mime, io.BytesIO(claim.source), None, self._plain
            ) as reader:
                reader.json()
        except self._c2pa.C2paError:
            return claim.source  # no manifest (or none c2pa can read): nothing to leak
        log.info("source photo carries Content Credentials; describing it without its bytes")
        return None

    def _ingredient(self, claim: Claim) -> dict[str, Any]:
        return {
            "title": f"photo.{_EXTENSIONS.get(claim.source_mime, 'img')}",
            "format": claim.source_mime,
            "relationship": "inputTo",
            "label": PHOTO_LABEL,
        }

    def _manifest(self, claim: Claim, mime: str, *, streamless: bool) -> dict[str, Any]:
        """The manifest definition; the prompt is deliberately absent (it travels with copies)."""
        agent_name, agent_version = _split_software(claim.software, self._version)
        created = {
            "action": "c2pa.created",
            "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
            "softwareAgent": {"name": agent_name, "version": agent_version},
            "description": f"AI-generated video animated from a photo ({claim.backend}, "
            f"{claim.model})",
            "parameters": {"ingredientIds": [PHOTO_LABEL]},
        }
        manifest: dict[str, Any] = {
            "claim_generator_info": [{"name": self._generator, "version": self._version}],
            "title": claim.title,
            "format": mime,
            "assertions": [
                {"label": "c2pa.actions.v2", "data": {"actions": [created]}},
                {
                    "label": CLIP_ASSERTION,
                    "data": {
                        "ledger_id": claim.ledger_id,
                        "backend": claim.backend,
                        "model": claim.model,
                    },
                },
                {
                    "label": "cawg.training-mining",
                    "data": {"entries": {k: {"use": "notAllowed"} for k in TRAINING_MINING_KEYS}},
                },
            ],
        }
        if streamless:
            manifest["ingredients"] = [self._ingredient(claim)]
        if claim.poster:
            manifest["thumbnail"] = {"format": "image/jpeg", "identifier": POSTER_ID}
        return manifest

    def _active_label(self, signed: bytes, mime: str, context: Any) -> str:
        """Read the label back: sign() returns the store bytes, not the label."""
        with self._c2pa.Reader(mime, io.BytesIO(signed), None, context) as reader:
            label = json.loads(reader.json()).get("active_manifest")
        if not isinstance(label, str) or not label:
            raise ProvenanceError("C2PA signing failed: the signed clip has no active manifest")
        return label


def _context_config(*, thumbnail: bool) -> dict[str, Any]:
    # The ingredient photo is an upload: never fetch a remote manifest it points to.
    return {
        "builder": {"thumbnail": {"enabled": thumbnail, "long_edge": SOURCE_THUMBNAIL_EDGE}},
        "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
    }


def _algorithm(key_pem: bytes) -> str:
    """The c2pa signing algorithm for a key (ES256 for the P-256 keys we make)."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise ProvenanceError("the signing key is not an unencrypted PEM private key") from None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        curves = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
        if key.curve.name in curves:
            return curves[key.curve.name]
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    if isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    raise ProvenanceError("the signing key type is not one C2PA allows")


def _split_software(software: str, default_version: str) -> tuple[str, str]:
    """``"alive 0.1.0"`` -> ``("alive", "0.1.0")``; a name without a version gets ours."""
    name, _, last = software.rpartition(" ")
    if name and last[:1].isdigit():
        return name, last
    return software or "alive", default_version


def _plain(exc: Exception) -> str:
    """A short, safe message from a c2pa error: never anything that looks like key material."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "-----BEGIN" in text:
        text = text.split("-----BEGIN", 1)[0] + "[PEM removed]"
    # NOTE: 300 characters keeps log lines readable; c2pa messages are usually under 150.
    return text[:300]

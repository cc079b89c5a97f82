"""The first layer of verify: read and validate a file's C2PA Content Credentials, offline.

The reader is fed hostile uploads, so it never raises and never fetches anything: a file
it cannot parse has no credentials, and a manifest stored remotely is reported, not fetched.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from core.provenance.c2pa_media import sniff_mime
from core.provenance.c2pa_sign import CLIP_ASSERTION
from core.types import Credentials, CredentialState

log = logging.getLogger(__name__)

__all__ = ["PLAIN_WORDS", "C2paReader", "plain_words", "sniff_mime"]

AI_SOURCE_TYPES = frozenset(
    f"http://cv.iptc.org/newscodes/digitalsourcetype/{name}"
    for name in (
        "trainedAlgorithmicMedia",
        "compositeWithTrainedAlgorithmicMedia",
        "algorithmicMedia",
    )
)
REMOTE_REASON = "the credentials are stored remotely and were not fetched"
INGREDIENT_PREFIX = "In a file it was made from: "

PLAIN_WORDS: dict[str, str] = {
    # The signature over the claim.
    "claimSignature.mismatch": "The signature does not match the credentials: they were altered.",
    "claimSignature.missing": "The credentials have no signature.",
    "claimSignature.outsideValidity": "It was signed when the signing certificate was not valid.",
    "claim.malformed": "The credentials are damaged and cannot be read.",
    "claim.missing": "The credentials refer to a record that is missing.",
    "claim.multiple": "The credentials contain more than one claim, which is not allowed.",
    "claim.hardBindings.missing": "The credentials are not tied to the file's content.",
    "claim.required.missing": "The credentials lack a required field.",
    "claim.cbor.invalid": "The credentials are damaged and cannot be read.",
    # Who signed it.
    "signingCredential.untrusted": "The signer is not one we know and trust.",
    "signingCredential.invalid": "The signing certificate is not valid for signing.",
    "signingCredential.expired": "The signing certificate had expired.",
    "signingCredential.revoked": "The signing certificate was revoked by its issuer.",
    "signingCredential.ocsp.revoked": "The signing certificate was revoked by its issuer.",
    "signingCredential.ocsp.unknown": "The certificate's revocation status is unknown.",
    "signingCredential.ocsp.inaccessible": "Could not check whether the certificate was revoked.",
    "signingCredential.ocsp.skipped": "The certificate's revocation status was not checked online.",
    # When it was signed.
    "timeStamp.mismatch": "The time stamp does not match the signature.",
    "timeStamp.malformed": "The time stamp is damaged.",
    "timeStamp.outsideValidity": "The time stamp is outside the certificate's validity.",
    "timeStamp.untrusted": "The time stamp comes from an authority we do not know.",
    "timeOfSigning.insideValidity": "It was signed while the certificate was valid.",
    # The link between the credentials and the content.
    "assertion.dataHash.mismatch": "The picture was changed after it was signed.",
    "assertion.dataHash.malformed": "The content fingerprint in the credentials is damaged.",
    "assertion.dataHash.redacted": "The content fingerprint was removed from the credentials.",
    "assertion.bmffHash.mismatch": "The video was changed after it was signed.",
    "assertion.bmffHash.malformed": "The video fingerprint in the credentials is damaged.",
    "assertion.boxesHash.mismatch": "The file was changed after it was signed.",
    "assertion.boxesHash.unknownBox": "The file contains parts the signature does not cover.",
    "assertion.boxesHash.malformed": "The content fingerprint in the credentials is damaged.",
    "assertion.collectionHash.mismatch": "A file in the collection was changed after signing.",
    "assertion.collectionHash.incorrectFileCount": "A file of the collection is missing.",
    "assertion.collectionHash.invalidURI": "The collection names a file in a way not allowed.",
    "assertion.collectionHash.malformed": "The collection fingerprint is damaged.",
    "assertion.multiAssetHash.malformed": "The multi-part fingerprint is damaged.",
    "assertion.multiAssetHash.missingPart": "A part of the file is missing.",
    "assertion.multipleHardBindings": "The credentials tie themselves to the content twice.",
    # The statements inside the credentials.
    "assertion.hashedURI.mismatch": "A statement in the credentials was altered after signing.",
    "assertion.missing": "A statement the credentials list is missing.",
    "assertion.undeclared": "The credentials contain a statement that was not signed.",
    "assertion.inaccessible": "A statement stored elsewhere could not be reached.",
    "assertion.notRedacted": "A statement said to be removed is still present.",
    "assertion.selfRedacted": "The credentials removed one of their own statements.",
    "assertion.required.missing": "A statement lacks a required field.",
    "assertion.json.invalid": "A statement in the credentials is damaged.",
    "assertion.cbor.invalid": "A statement in the credentials is damaged.",
    "assertion.outsideManifest": "A statement lies outside the credentials it belongs to.",
    "assertion.action.malformed": "The list of edits in the credentials is malformed.",
    "assertion.action.ingredientMismatch": "An edit refers to a source file that is missing.",
    "assertion.action.redacted": "An edit was removed from the history.",
    "assertion.action.redactionMismatch": "A removal in the history cannot be matched.",
    "assertion.ingredient.malformed": "A source file's record is malformed.",
    "assertion.metadata.disallowed": "The credentials contain metadata that is not allowed.",
    "assertion.timestamp.malformed": "A time stamp statement is damaged.",
    "assertion.cloud-data.hardBinding": "A content fingerprint is stored elsewhere, not allowed.",
    "assertion.cloud-data.actions": "The edit history is stored elsewhere, not allowed.",
    "assertion.cloud-data.malformed": "A statement stored elsewhere is incomplete.",
    "hashedURI.missing": "Something the credentials point to is missing.",
    "hashedURI.mismatch": "Something the credentials point to was altered.",
    # The manifests as a whole.
    "manifest.inaccessible": "The credentials are stored elsewhere and could not be reached.",
    "manifest.multipleParents": "The credentials name more than one original file.",
    "manifest.update.invalid": "An update to the credentials contains what it must not.",
    "manifest.update.wrongParents": "An update to the credentials names the wrong original.",
    "manifest.timestamp.invalid": "A time stamp record contains what it must not.",
    "manifest.timestamp.wrongParents": "A time stamp record names the wrong original.",
    "manifest.compressed.invalid": "The compressed credentials are damaged.",
    "manifest.unknownProvenance": "Part of the credentials cannot be read by this verifier.",
    "manifest.unreferenced": "The file carries credentials nothing refers to.",
    # Source files (ingredients).
    "ingredient.manifest.missing": "The credentials of a source file are missing.",
    "ingredient.manifest.mismatch": "The credentials of a source file were altered.",
    "ingredient.claimSignature.missing": "The signature of a source file is missing.",
    "ingredient.claimSignature.mismatch": "The signature of a source file does not match.",
    "ingredient.hashedURI.mismatch": "The record of a source file was altered.",
    "ingredient.unknownProvenance": "A source file has no credentials of its own.",
    # Algorithms and everything else.
    "algorithm.unsupported": "The credentials use an algorithm we cannot check.",
    "algorithm.deprecated": "The credentials use an outdated algorithm.",
    "general.error": "The credentials could not be checked.",
    # CAWG identity assertions (who made it, as opposed to who signed the file).
    "cawg.identity.well-formed": "The creator identity is well formed.",
    "cawg.identity.cbor.invalid": "The creator identity is damaged.",
    "cawg.identity.assertion.mismatch": "The creator identity does not match the credentials.",
    "cawg.identity.assertion.duplicate": "The creator identity is listed twice.",
    "cawg.identity.hard_binding_missing": "The creator identity is not tied to the content.",
    "cawg.identity.sig_type.unknown": "The creator identity uses an unknown kind of signature.",
    "cawg.identity.pad.invalid": "The creator identity is damaged.",
    "cawg.x509.signature.validated": "The creator identity's signature checks out.",
    "cawg.x509.signature.mismatch": "The creator identity's signature does not match.",
    "cawg.x509.credential.untrusted": "The creator identity comes from an issuer we do not know.",
    "cawg.x509.credential.invalid": "The creator identity's certificate is not valid.",
    "cawg.x509.credential.expired": "The creator identity's certificate had expired.",
    "cawg.x509.credential.revoked": "The creator identity's certificate was revoked.",
    "cawg.ica.invalid_cose_sign1": "The creator identity's signature is damaged.",
    "cawg.ica.invalid_alg": "The creator identity uses an algorithm we cannot check.",
    "cawg.ica.invalid_content_type": "The creator identity is malformed.",
    "cawg.ica.invalid_verifiable_credential": "The creator identity is malformed.",
    "cawg.ica.invalid_issuer": "The creator identity's issuer is not valid.",
    "cawg.ica.untrusted_issuer": "The creator identity comes from an issuer we do not know.",
    "cawg.ica.did_unsupported_method": "The creator identity's issuer cannot be looked up.",
    "cawg.ica.did_unavailable": "The creator identity's issuer could not be reached.",
    "cawg.ica.invalid_did_document": "The creator identity's issuer record is malformed.",
    "cawg.ica.signature_mismatch": "The creator identity's signature does not match.",
    "cawg.ica.signer_payload.mismatch": "The creator identity does not match the credentials.",
    "cawg.ica.time_stamp.invalid": "The creator identity's time stamp is not valid.",
    "cawg.ica.valid_from.missing": "The creator identity has no start of validity.",
    "cawg.ica.valid_from.invalid": "The creator identity was not yet valid.",
    "cawg.ica.valid_until.invalid": "The creator identity had expired.",
}


def plain_words(code: str) -> str:
    """The plain sentence for a validation code; an unknown code is returned as it is."""
    return PLAIN_WORDS.get(code, code)


class C2paReader:
    """Reads Content Credentials with our trust anchors; implements ``CredentialReader``.

    Args:
        anchors_pem: PEM trust anchors; a signer chaining to one of them reads as trusted.
    """

    def __init__(self, anchors_pem: bytes) -> None:
        import c2pa

        self._c2pa = c2pa
        config: dict[str, Any] = {
            # Uploads are hostile: no outbound requests for remote manifests or OCSP.
            "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
        }
        if anchors_pem.strip():
            config["trust"] = {"trust_anchors": anchors_pem.decode("ascii", "replace")}
        self._context = c2pa.Context.from_dict(config)

    def read(self, data: bytes) -> Credentials:
        """Return what the C2PA layer says about ``data``; never raises."""
        try:
            store = self._store(data)
        except Exception:
            # The last guard for hostile input: a reader bug must not take verify down.
            log.warning("could not read Content Credentials", exc_info=True)
            return Credentials(CredentialState.NONE)
        if isinstance(store, Credentials):
            return store
        return _credentials(store)

    def _store(self, data: bytes) -> dict[str, Any] | Credentials:
        """The manifest store as JSON, or the credentials verdict when there is none."""
        c2pa = self._c2pa
        if not data:
            return Credentials(CredentialState.NONE)
        try:
            with c2pa.Reader(sniff_mime(data), io.BytesIO(data), None, self._context) as reader:
                store = json.loads(reader.json())
        except c2pa.C2paError as exc:
            if str(exc).startswith("Remote"):
                return Credentials(CredentialState.NONE, reasons=(REMOTE_REASON,))
            # ManifestNotFound, NotSupported, or a file c2pa cannot parse.
            log.debug("no readable Content Credentials: %s", type(exc).__name__)
            return Credentials(CredentialState.NONE)
        if not isinstance(store, dict):
            return Credentials(CredentialState.NONE)
        return store


def _credentials(store: Mapping[str, Any]) -> Credentials:
    """Turn a manifest store (c2pa's JSON) into our ``Credentials``."""
    state = {
        "Trusted": CredentialState.TRUSTED,
        "Valid": CredentialState.VALID,
    }.get(str(store.get("validation_state")), CredentialState.INVALID)
    label = store.get("active_manifest")
    manifests = _dict(store.get("manifests"))
    manifest = _dict(manifests.get(label)) if isinstance(label, str) else {}
    codes, reasons = _failures(store)
    if state is CredentialState.INVALID and not codes:
        codes, reasons = ("general.error",), (plain_words("general.error"),)
    source_type = _source_type(manifest)
    clip = _assertion(manifest, CLIP_ASSERTION)
    trusted_enough = state in (CredentialState.TRUSTED, CredentialState.VALID)
    return Credentials(
        state=state,
        reasons=reasons,
        codes=codes,
        ai_generated=source_type in AI_SOURCE_TYPES,
        source_type=source_type,
        signer=_signer(manifest),
        signed_at=_text(_dict(manifest.get("signature_info")).get("time")),
        software=_software(manifest),
        manifest_id=label if isinstance(label, str) else "",
        ledger_id=_text(clip.get("ledger_id")) if trusted_enough else "",
    )


def _failures(store: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Failure codes and their sentences: the active manifest's, then its ingredients'."""
    results = _dict(store.get("validation_results"))
    found: dict[str, str] = {}
    if results:
        active = _dict(results.get("activeManifest"))
        for code in _codes(active.get("failure")):
            found.setdefault(code, plain_words(code))
        for delta in _list(results.get("ingredientDeltas")):
            for code in _codes(_dict(_dict(delta).get("validationDeltas")).get("failure")):
                found.setdefault(code, INGREDIENT_PREFIX + plain_words(code))
    else:
        # NOTE: older stores only have the legacy list, which holds failures alone.
        for code in _codes(store.get("validation_status")):
            found.setdefault(code, plain_words(code))
    return tuple(found), tuple(found.values())


def _source_type(manifest: Mapping[str, Any]) -> str:
    """The digitalSourceType of the active manifest's actions, an AI one first."""
    seen: list[str] = []
    for label in ("c2pa.actions.v2", "c2pa.actions"):
        for action in _list(_assertion(manifest, label).get("actions")):
            value = _text(_dict(action).get("digitalSourceType"))
            if value:
                seen.append(value)
    ai = [value for value in seen if value in AI_SOURCE_TYPES]
    return (ai or seen or [""])[0]


def _signer(manifest: Mapping[str, Any]) -> str:
    info = _dict(manifest.get("signature_info"))
    name, issuer = _text(info.get("common_name")), _text(info.get("issuer"))
    if name and issuer and issuer not in name:
        return f"{name}, {issuer}"
    return name or issuer


def _software(manifest: Mapping[str, Any]) -> str:
    """The claim generator, else the software agent of the first action."""
    for item in _list(manifest.get("claim_generator_info")):
        entry = _dict(item)
        name = _text(entry.get("name"))
        if name:
            return f"{name} {_text(entry.get('version'))}".strip()
    legacy = _text(manifest.get("claim_generator"))
    if legacy:
        return legacy
    for label in ("c2pa.actions.v2", "c2pa.actions"):
        for action in _list(_assertion(manifest, label).get("actions")):
            agent = _dict(action).get("softwareAgent")
            if isinstance(agent, str) and agent:
                return agent
            agent_info = _dict(agent)
            if _text(agent_info.get("name")):
                return f"{agent_info['name']} {_text(agent_info.get('version'))}".strip()
    return ""


def _assertion(manifest: Mapping[str, Any], label: str) -> dict[str, Any]:
    for item in _list(manifest.get("assertions")):
        entry = _dict(item)
        if entry.get("label") == label:
            return _dict(entry.get("data"))
    return {}


def _codes(items: object) -> Iterable[str]:
    for item in _list(items):
        code = _text(_dict(item).get("code"))
        if code:
            yield code


# The store is parsed from bytes an uploader controls: every field is checked for its type.
def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""

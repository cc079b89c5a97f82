from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
from collections.abc import Callable
from typing import Any

import av
import c2pa
import pytest

from core.errors import ProvenanceError
from core.provenance.c2pa_sign import TRAINED_ALGORITHMIC_MEDIA, C2paSigner
from core.provenance.keys import Identity
from core.types import Claim
from tests.provenance.conftest import c2pa_make_chain


def _top_boxes(data: bytes) -> list[str]:
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        boxes.append(data[offset + 4 : offset + 8].decode("latin-1"))
        if size == 1:
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
        if size < 8:
            break
        offset += size
    return boxes


def _store(data: bytes, anchors: bytes) -> tuple[c2pa.Reader, dict[str, Any]]:
    ctx = c2pa.Context.from_dict(
        {"trust": {"trust_anchors": anchors.decode()}, "verify": {"remote_manifest_fetch": False}}
    )
    reader = c2pa.Reader("video/mp4", io.BytesIO(data), None, ctx)
    return reader, json.loads(reader.json())


def _active(store: dict[str, Any]) -> dict[str, Any]:
    return store["manifests"][store["active_manifest"]]


def _assertion(manifest: dict[str, Any], label: str) -> dict[str, Any]:
    return next(a["data"] for a in manifest["assertions"] if a["label"] == label)


def test_signed_clip_is_trusted_and_keeps_moov_first(
    c2pa_signed: tuple[bytes, str], c2pa_video: bytes, c2pa_identity: Identity
) -> None:
    signed, label = c2pa_signed
    before = _top_boxes(c2pa_video)
    assert before.index("moov") < before.index("mdat")
    boxes = _top_boxes(signed)
    assert boxes.index("moov") < boxes.index("mdat")
    assert "uuid" in boxes
    reader, store = _store(signed, c2pa_identity.anchors_pem)
    assert reader.get_validation_state() == "Trusted"
    assert store["active_manifest"] == label
    assert label.startswith("urn:c2pa:")


def test_signed_clip_still_plays(c2pa_signed: tuple[bytes, str]) -> None:
    with av.open(io.BytesIO(c2pa_signed[0])) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 16
    assert (frames[0].width, frames[0].height) == (64, 64)


def test_manifest_declares_ai_generation(
    c2pa_signed: tuple[bytes, str], c2pa_identity: Identity
) -> None:
    _, store = _store(c2pa_signed[0], c2pa_identity.anchors_pem)
    manifest = _active(store)
    assert manifest["title"] == "clip.mp4"
    assert manifest["claim_generator_info"][0]["name"] == "alive"
    actions = _assertion(manifest, "c2pa.actions.v2")["actions"]
    created = actions[0]
    assert created["action"] == "c2pa.created"
    assert created["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    assert created["softwareAgent"] == {"name": "alive", "version": "0.1.0"}
    assert "procedural-1" in created["description"]
    ingredient = manifest["ingredients"][0]
    assert ingredient["relationship"] == "inputTo"
    linked = created["parameters"]["ingredients"][0]["url"]
    assert linked.endswith(ingredient["label"])
    assert _assertion(manifest, "org.alive.clip") == {
        "ledger_id": "LEDGER-7f3a9c",
        "backend": "procedural",
        "model": "procedural-1",
    }
    entries = _assertion(manifest, "cawg.training-mining")["entries"]
    assert len(entries) == 4
    assert {e["use"] for e in entries.values()} == {"notAllowed"}
    labels = {a["label"] for a in manifest["assertions"]}
    assert labels <= {
        "c2pa.hash.bmff.v3",
        "c2pa.actions.v2",
        "org.alive.clip",
        "cawg.training-mining",
    }


def test_poster_is_the_claim_thumbnail(
    c2pa_signed: tuple[bytes, str], c2pa_identity: Identity
) -> None:
    reader, store = _store(c2pa_signed[0], c2pa_identity.anchors_pem)
    thumb = _active(store)["thumbnail"]
    assert thumb["format"] == "image/jpeg"
    out = io.BytesIO()
    reader.resource_to_stream(thumb["identifier"], out)
    assert out.getvalue().startswith(b"\xff\xd8")


def test_no_poster_means_no_claim_thumbnail(
    c2pa_signer: C2paSigner,
    c2pa_video: bytes,
    c2pa_claim: Callable[..., Claim],
    c2pa_identity: Identity,
) -> None:
    signed, _ = c2pa_signer.sign(c2pa_video, c2pa_claim(poster=b""))
    reader, store = _store(signed, c2pa_identity.anchors_pem)
    assert reader.get_validation_state() == "Trusted"
    assert _active(store).get("thumbnail") is None


def test_source_photo_has_no_thumbnail_by_default(
    c2pa_signed: tuple[bytes, str], c2pa_identity: Identity, c2pa_photo: bytes
) -> None:
    signed = c2pa_signed[0]
    _, store = _store(signed, c2pa_identity.anchors_pem)
    ingredient = _active(store)["ingredients"][0]
    assert "thumbnail" not in ingredient
    assert "c2pa.thumbnail.ingredient" not in signed.decode("latin-1")
    assert c2pa_photo[-400:-2] not in signed  # no copy of the photo rides along


def test_source_thumbnail_when_the_chat_opted_in(
    c2pa_signer: C2paSigner,
    c2pa_video: bytes,
    c2pa_claim: Callable[..., Claim],
    c2pa_identity: Identity,
) -> None:
    signed, _ = c2pa_signer.sign(c2pa_video, c2pa_claim(include_source_thumbnail=True))
    reader, store = _store(signed, c2pa_identity.anchors_pem)
    assert reader.get_validation_state() == "Trusted"
    thumb = _active(store)["ingredients"][0]["thumbnail"]
    out = io.BytesIO()
    reader.resource_to_stream(thumb["identifier"], out)
    assert out.getvalue()[:2] in (b"\xff\xd8", b"\x89P")


def test_one_signer_signs_many_clips(
    c2pa_signer: C2paSigner, c2pa_video: bytes, c2pa_claim: Callable[..., Claim]
) -> None:
    labels = {c2pa_signer.sign(c2pa_video, c2pa_claim(ledger_id=f"L{i}"))[1] for i in range(3)}
    assert len(labels) == 3


def test_expired_certificate_cannot_sign(
    c2pa_identity: Identity, c2pa_video: bytes, c2pa_claim: Callable[..., Claim]
) -> None:
    now = dt.datetime.now(dt.UTC)
    chain, key, ca = c2pa_make_chain(now - dt.timedelta(days=400), now - dt.timedelta(days=1))
    expired = dataclasses.replace(c2pa_identity, cert_chain_pem=chain, key_pem=key, anchors_pem=ca)
    with pytest.raises(ProvenanceError) as info:
        C2paSigner(expired).sign(c2pa_video, c2pa_claim())
    assert "PRIVATE" not in str(info.value)
    assert key.decode().splitlines()[1] not in str(info.value)


def test_key_of_another_certificate_cannot_sign(
    c2pa_identity: Identity, c2pa_video: bytes, c2pa_claim: Callable[..., Claim]
) -> None:
    now = dt.datetime.now(dt.UTC)
    _, other_key, _ = c2pa_make_chain(now - dt.timedelta(days=1), now + dt.timedelta(days=9))
    wrong = dataclasses.replace(c2pa_identity, key_pem=other_key)
    with pytest.raises(ProvenanceError) as info:
        C2paSigner(wrong).sign(c2pa_video, c2pa_claim())
    assert other_key.decode().splitlines()[1] not in str(info.value)


def test_timestamp_authority_is_used_only_when_set(
    c2pa_identity: Identity, c2pa_video: bytes, c2pa_claim: Callable[..., Claim]
) -> None:
    # Nothing listens on port 9: a signer that uses the authority must fail (no silent fallback).
    signer = C2paSigner(c2pa_identity, timestamp_url="http://127.0.0.1:9/tsa")
    with pytest.raises(ProvenanceError, match="C2PA signing failed"):
        signer.sign(c2pa_video, c2pa_claim())


def test_unsigned_input_that_is_not_a_video_fails_plainly(
    c2pa_signer: C2paSigner, c2pa_claim: Callable[..., Claim]
) -> None:
    with pytest.raises(ProvenanceError, match="C2PA signing failed"):
        c2pa_signer.sign(b"definitely not an mp4", c2pa_claim())

"""The wiring: the only place that chooses implementations and the order of checks and steps."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core import __version__
from core.audit import AuditLog
from core.encode import H264Encoder
from core.ports import (
    Animator,
    CommunityState,
    CredentialReader,
    Encoder,
    Fingerprinter,
    FramesCheck,
    FrameStep,
    Ledger,
    PhotoCheck,
    PromptCheck,
    Signer,
    Store,
    WatermarkReader,
)
from core.settings import Limits, Settings
from core.state import open_store
from core.store import Database
from core.types import Frames, Image, Photo

if TYPE_CHECKING:
    from core.moderation.classifier import PromptClassifierCheck
    from core.moderation.policy import Policy

log = logging.getLogger(__name__)

Decoder = Callable[[Photo, Limits], Image]
"""Decodes an upload safely into an Image or raises InputError (pipeline step 1)."""


@dataclass(slots=True)
class Services:
    """Everything the pipeline and verify call, built once per process.

    The order of the check and step lists is the order they run in.
    """

    settings: Settings
    decode: Decoder
    prompt_checks: Sequence[PromptCheck]
    photo_checks: Sequence[PhotoCheck]
    animator: Animator
    output_checks: Sequence[FramesCheck]
    frame_steps: Sequence[FrameStep]
    fingerprinter: Fingerprinter
    encoder: Encoder
    signer: Signer
    signer_name: str
    credential_reader: CredentialReader
    watermark_reader: WatermarkReader
    ledger: Ledger
    audit: AuditLog
    db: Database
    community: CommunityState
    store: Store

    @property
    def software(self) -> str:
        """The software agent named in manifests and notes."""
        return f"{self.settings.provenance.claim_generator} {__version__}"

    def warm_up(self) -> None:
        """Train the prompt classifier and load MiniLM now (seconds), not on a user's first prompt.

        Serving processes call this at start; one-shot commands (``alive verify``) never
        check a prompt and skip it.
        """
        from core.moderation.classifier import PromptClassifierCheck
        from core.moderation.semantic import SemanticPromptCheck

        for check in self.prompt_checks:
            if isinstance(check, PromptClassifierCheck | SemanticPromptCheck):
                check.warm_up()

    def close(self) -> None:
        """Release what the services hold."""
        self.store.close()
        self.db.close()


# NOTE: a signed clip grows by the manifest: about 30 kB with the 256 px poster (measured), so
# the encoder aims this much under the upload limit.
MANIFEST_ROOM_BYTES = 128 * 1024


@dataclass(frozen=True, slots=True)
class FittingEncoder:
    """The Encoder port: H.264 that still fits an upload limit once the manifest is added."""

    h264: H264Encoder

    def encode(self, frames: Frames, max_bytes: int) -> bytes:
        """Encode at the configured quality, lowering it (then the size) only to fit."""
        return self.h264.fit_to_limit(frames, max_bytes - MANIFEST_ROOM_BYTES)


def moderation_checks(
    settings: Settings,
) -> tuple[list[PromptCheck], list[PhotoCheck], list[FramesCheck]]:
    """Build the checks of steps 2 and 4 from the policy file, in the order they run.

    Photo (after the decoding limits): hash list -> NudeNet -> faces (reports only).
    Prompt: length -> lexicon -> classifier (trained on first use, see Services.warm_up) ->
    semantic (MiniLM, loaded on the first prompt).
    Output: NudeNet on sampled frames.
    """
    from core.moderation.classifier import PromptClassifierCheck
    from core.moderation.faces import FaceCountCheck
    from core.moderation.hashlist import HashListCheck
    from core.moderation.nsfw import NudityCheck, NudityFramesCheck
    from core.moderation.policy import load_policy

    threads = settings.jobs.threads_per_job
    policy = load_policy(settings.moderation.policy_path)
    classifier = None
    if policy.classifier.enabled:
        classifier = PromptClassifierCheck.from_policy(policy)  # trained on first use
    prompt = prompt_chain(policy, classifier, threads)
    photo: list[PhotoCheck] = []
    output: list[FramesCheck] = []
    if policy.hashlist.file is not None:
        hashes, h = policy.hashlist.file, policy.hashlist
        photo.append(HashListCheck.from_file(hashes, h.distance, h.min_quality))
    if settings.moderation.nsfw_enabled:
        nudity = NudityCheck(policy.photo.nudenet, threads=threads)
        photo.append(nudity)
        output.append(NudityFramesCheck(nudity, policy.output.sample_frames))
    if policy.faces.enabled:
        photo.append(FaceCountCheck(policy.faces.model, policy.faces.min_confidence))
    return prompt, photo, output


def prompt_chain(
    policy: Policy, classifier: PromptClassifierCheck | None, threads: int = 1
) -> list[PromptCheck]:
    """The prompt checks in order: length -> lexicon -> classifier -> semantic.

    Every check asks the classifier too whether a sexual prompt names a child.
    """
    from core.moderation.prompt import PromptLengthCheck, PromptLexiconCheck
    from core.moderation.semantic import SemanticPromptCheck

    minor = classifier.likely_minor if classifier is not None else None
    chain: list[PromptCheck] = [
        PromptLengthCheck(policy.prompt.max_chars),
        PromptLexiconCheck.from_policy(policy, minor),
    ]
    if classifier is not None:
        chain.append(classifier)
    if policy.semantic.enabled:
        chain.append(SemanticPromptCheck.from_policy(policy, threads, minor))
    return chain


def build_animator(settings: Settings) -> Animator:
    """Build the configured animator; the diffusers one (torch, a GPU model) only when chosen."""
    if settings.animation.backend == "diffusers":
        from core.animation.diffusers_base import load_animator

        return load_animator(settings)
    from core.animation.procedural import ProceduralAnimator

    return ProceduralAnimator()


def build_services(settings: Settings, db: Database | None = None) -> Services:
    """Build the production services from settings (loads models once; takes a few seconds)."""
    import cv2

    from core.moderation.limits import decode_photo
    from core.provenance.c2pa_sign import C2paSigner
    from core.provenance.credentials import C2paReader
    from core.provenance.fingerprint import PdqFingerprinter
    from core.provenance.keys import load_identity
    from core.provenance.label import LabelStep
    from core.provenance.watermark import WatermarkReader as DwtWatermarkReader
    from core.provenance.watermark import WatermarkStep

    # NOTE: two cores shared by jobs; oversubscribed threads made inference 8x slower in the
    # feasibility measurements, so each job's libraries get threads_per_job threads.
    threads = settings.jobs.threads_per_job
    cv2.setNumThreads(threads)
    db = db or Database(settings.data_dir / "alive.db")
    store = open_store(settings, db)  # SQLite, or Redis when redis_url is set
    identity = load_identity(
        settings.signing_cert,
        settings.signing_key,
        settings.trust_anchors,
        keys_dir=settings.data_dir / "keys",
    )
    prov = settings.provenance
    prompt_checks, photo_checks, output_checks = moderation_checks(settings)
    return Services(
        settings=settings,
        decode=decode_photo,
        prompt_checks=prompt_checks,
        photo_checks=photo_checks,
        animator=build_animator(settings),
        output_checks=output_checks,
        frame_steps=[
            LabelStep(),
            WatermarkStep(strength=prov.watermark_strength, block=prov.watermark_block),
        ],
        fingerprinter=PdqFingerprinter(),
        encoder=FittingEncoder(
            H264Encoder(
                crf=settings.encode.crf,
                preset=settings.encode.preset,
                max_bitrate_kbps=settings.encode.max_bitrate_kbps,
            )
        ),
        signer=C2paSigner(
            identity, timestamp_url=prov.timestamp_url, claim_generator=prov.claim_generator
        ),
        signer_name=identity.name,
        credential_reader=C2paReader(identity.anchors_pem),
        watermark_reader=DwtWatermarkReader(
            strength=prov.watermark_strength, block=prov.watermark_block
        ),
        ledger=store.ledger,
        audit=store.audit,
        db=db,
        community=store.community,
        store=store,
    )

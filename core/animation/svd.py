"""Stable Video Diffusion for step 3: an image-only model (no text), moved by its motion bucket.

The request's motion strength maps onto SVD's micro-conditioning: ``motion_bucket_id`` (how
much moves) and ``noise_aug_strength`` (how far frames may drift from the photo). The prompt and
camera move cannot be expressed; loops play forward then back.
"""

from __future__ import annotations

from typing import Any

from core.animation.diffusers_base import ModelFamily, Plan
from core.types import ClipSpec

# NOTE: motion 2 gives SVD's defaults (motion bucket 127, noise augmentation 0.02, from the
# pipeline's signature); the other levels spread across the bucket's 1..255 range.
MOTION_BUCKET = (40, 90, 127, 170, 220)
NOISE_AUG = (0.0, 0.01, 0.02, 0.04, 0.06)
# NOTE: frames decoded per VAE call; diffusers' SVD guide uses 8 to bound decode memory.
DECODE_CHUNK = 8


class SvdFamily(ModelFamily):
    """SVD / SVD-XT: 1024x576 native, 14 or 25 frames, told 7 fps (diffusers' SVD guide)."""

    name = "svd"
    fps = 7
    steps = 25
    guidance = 3.0
    buckets = ((1024, 576), (576, 1024), (768, 768))

    def pipeline_class(self, class_name: str) -> Any:
        """Return ``StableVideoDiffusionPipeline``."""
        from diffusers import StableVideoDiffusionPipeline

        return StableVideoDiffusionPipeline

    def size_multiple(self, pipe: Any) -> int:
        """The VAE's scale factor times the UNet's downsampling."""
        levels = len(pipe.unet.config.block_out_channels) - 1
        return int(pipe.vae_scale_factor * 2**levels)

    def denoisers(self, pipe: Any) -> list[Any]:
        """The spatio-temporal UNet."""
        return [pipe.unet]

    def call_kwargs(self, pipe: Any, photo: Any, spec: ClipSpec, plan: Plan) -> dict[str, Any]:
        """Photo, size, frames, guidance range and the motion micro-conditioning."""
        return {
            "image": photo,
            "width": plan.width,
            "height": plan.height,
            "num_frames": plan.frames,
            "num_inference_steps": plan.steps,
            "min_guidance_scale": min(1.0, plan.guidance),
            "max_guidance_scale": plan.guidance,
            "fps": plan.fps,
            "motion_bucket_id": MOTION_BUCKET[spec.motion],
            "noise_aug_strength": NOISE_AUG[spec.motion],
            "decode_chunk_size": DECODE_CHUNK,
        }

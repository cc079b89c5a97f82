"""Wan 2.x image-to-video for step 3: the Apache-2.0 alternative (slower; best quality per step).

The photo is the first frame, the prompt and camera move become the text, and loops play
forward then back: the plain I2V checkpoints are not trained to end on a given frame.
"""

from __future__ import annotations

from typing import Any

from core.animation.diffusers_base import ModelFamily, Plan, describe
from core.types import ClipSpec

# NOTE: an English rendering of the usual Wan negative prompt (Wan2.1 README examples).
NEGATIVE = (
    "static, blurry details, subtitles, worst quality, low quality, JPEG artifacts, ugly, "
    "deformed, disfigured, extra fingers, poorly drawn hands, poorly drawn face, messy background"
)


class WanFamily(ModelFamily):
    """Wan 2.1/2.2 I2V: 16 fps, frames 4k+1, 480p native (Wan2.1 README, generate.py)."""

    name = "wan"
    fps = 16
    steps = 40
    guidance = 5.0
    buckets = ((832, 480), (480, 832), (624, 624))

    def pipeline_class(self, class_name: str) -> Any:
        """Return ``WanImageToVideoPipeline``."""
        from diffusers import WanImageToVideoPipeline

        return WanImageToVideoPipeline

    def frame_step(self, pipe: Any) -> int:
        """Frames are ``temporal_ratio * k + 1``."""
        return int(pipe.vae_scale_factor_temporal)

    def size_multiple(self, pipe: Any) -> int:
        """The VAE's spatial ratio times the transformer's patch size."""
        model = pipe.transformer if pipe.transformer is not None else pipe.transformer_2
        return int(pipe.vae_scale_factor_spatial * model.config.patch_size[1])

    def denoisers(self, pipe: Any) -> list[Any]:
        """One transformer, or two for the Wan 2.2 A14B mixture of experts."""
        return [m for m in (pipe.transformer, pipe.transformer_2) if m is not None]

    def call_kwargs(self, pipe: Any, photo: Any, spec: ClipSpec, plan: Plan) -> dict[str, Any]:
        """Photo, prompt, size, frames, steps and guidance."""
        return {
            "image": photo,
            "prompt": describe(spec),
            "negative_prompt": NEGATIVE,
            "width": plan.width,
            "height": plan.height,
            "num_frames": plan.frames,
            "num_inference_steps": plan.steps,
            "guidance_scale": plan.guidance,
        }

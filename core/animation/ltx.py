"""LTX-Video image-to-video for step 3: the default GPU model (distilled: 8 steps, no guidance).

LTX-Video 0.9.5 and newer run through ``LTXConditionPipeline``: the photo conditions frame 0,
and a looping clip pins the photo to the last frame too (keyframe conditioning), so the clip
returns to where it started. Checkpoints whose ``model_index.json`` names
``LTXImageToVideoPipeline`` (0.9.0/0.9.1) run through that class and loop by ping-pong.
"""

from __future__ import annotations

from typing import Any

from core.animation.diffusers_base import ModelFamily, Plan, describe
from core.types import ClipSpec

# NOTE: the negative prompt of the LTX-Video examples in diffusers' docs (ltx_video.md).
NEGATIVE = "worst quality, inconsistent motion, blurry, jittery, distorted"
# NOTE: the first-pass timesteps diffusers' docs give for the 0.9.7/0.9.8 distilled checkpoints.
DISTILLED_TIMESTEPS = [1000.0, 993.0, 987.0, 981.0, 975.0, 909.0, 725.0, 0.03]
# NOTE: decode timestep/noise and conditioning noise recommended for the timestep-aware VAE
# (0.9.1 and newer) in diffusers' ltx_video.md notes.
DECODE_TIMESTEP = 0.05
DECODE_NOISE = 0.025
IMAGE_COND_NOISE = 0.025


class LtxFamily(ModelFamily):
    """LTX-Video: 24 fps, frames 8k+1, sizes multiples of 32 (LTX-Video README)."""

    name = "ltx"
    fps = 24
    steps = 8
    guidance = 1.0
    # NOTE: 768x512 is the native size of LTX-Video 2B (README, paper); portrait and square
    # variants keep about the same pixel count.
    buckets = ((768, 512), (512, 768), (640, 640))

    def pipeline_class(self, class_name: str) -> Any:
        """Return the condition pipeline, or the older image-to-video one if the model names it."""
        from diffusers import LTXConditionPipeline, LTXImageToVideoPipeline

        if class_name == "LTXImageToVideoPipeline":
            return LTXImageToVideoPipeline
        return LTXConditionPipeline

    def frame_step(self, pipe: Any) -> int:
        """Frames are ``temporal_ratio * k + 1``."""
        return int(pipe.vae_temporal_compression_ratio)

    def size_multiple(self, pipe: Any) -> int:
        """The VAE's spatial ratio times the patch size, and never under 32.

        NOTE: both LTX pipelines' ``check_inputs`` insist on multiples of 32.
        """
        ratio = int(pipe.vae_spatial_compression_ratio * pipe.transformer_spatial_patch_size)
        return max(32, ratio)

    def loop_mode(self, pipe: Any, spec: ClipSpec) -> str:
        """Keyframe loops on the condition pipeline, ping-pong on the older one."""
        if not spec.loop:
            return "none"
        return "keyframe" if _is_condition(pipe) else "pingpong"

    def call_kwargs(self, pipe: Any, photo: Any, spec: ClipSpec, plan: Plan) -> dict[str, Any]:
        """Prompt, size, frames, schedule and the photo as frame conditioning."""
        kwargs: dict[str, Any] = {
            "prompt": describe(spec),
            "negative_prompt": NEGATIVE,
            "width": plan.width,
            "height": plan.height,
            "num_frames": plan.frames,
            "frame_rate": plan.fps,
            "num_inference_steps": plan.steps,
            "guidance_scale": plan.guidance,
        }
        if pipe.vae.config.timestep_conditioning:
            kwargs.update(decode_timestep=DECODE_TIMESTEP, decode_noise_scale=DECODE_NOISE)
        if not _is_condition(pipe):
            kwargs["image"] = photo
            return kwargs
        from diffusers.pipelines.ltx.pipeline_ltx_condition import (
            LTXVideoCondition,
            linear_quadratic_schedule,
        )

        conditions = [LTXVideoCondition(image=photo, frame_index=0)]
        if plan.loop == "keyframe":
            conditions.append(LTXVideoCondition(image=photo, frame_index=plan.frames - 1))
        distilled = plan.guidance <= 1.0 and plan.steps == len(DISTILLED_TIMESTEPS)
        # The pipeline's own default schedule, passed as a plain list: the same values, and
        # no tensor-to-numpy conversion inside the scheduler.
        schedule = linear_quadratic_schedule(plan.steps) * 1000.0  # type: ignore[no-untyped-call]
        kwargs.update(
            conditions=conditions,
            image_cond_noise_scale=IMAGE_COND_NOISE,
            timesteps=DISTILLED_TIMESTEPS if distilled else [float(t) for t in schedule],
        )
        return kwargs


def _is_condition(pipe: Any) -> bool:
    return type(pipe).__name__ == "LTXConditionPipeline"

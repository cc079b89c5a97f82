"""Step 3 of the pipeline on a GPU: load a diffusers image-to-video model once and run it per job.

Shared by every model family (``ltx.py``, ``svd.py``, ``wan.py``): loading from a local
directory or the local cache, dtype/device/offload/tiling/cache/compile, a warm-up run, the
``callback_on_step_end`` hook that reports progress and lets a cancel stop the denoising loop,
one retry at a smaller size after running out of GPU memory, and turning the model's float frames
into even-sized uint8 ``Frames`` at the clip's own frame rate. Imported only when
``animation.backend = "diffusers"``, so the procedural path never loads torch.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import torch
from numpy.typing import NDArray

from core.errors import BackendError, BackendUnavailable, ConfigError
from core.ports import StepCallback
from core.types import Camera, ClipSpec, Frames, Image

if TYPE_CHECKING:
    from core.settings import Settings

log = logging.getLogger(__name__)

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
# NOTE: each retry after an out-of-memory error runs at this fraction of the width and height
# (about 56% of the pixels and of the activation memory).
OOM_SHRINK = 0.75
# NOTE: FirstBlockCache threshold: diffusers' default (hooks/first_block_cache.py).
FIRST_BLOCK_THRESHOLD = 0.05

_CAMERA_WORDS = {
    Camera.AUTO: "",
    Camera.NONE: "The camera is static.",
    Camera.ZOOM_IN: "The camera slowly zooms in.",
    Camera.ZOOM_OUT: "The camera slowly zooms out.",
    Camera.PAN_LEFT: "The camera pans slowly to the left.",
    Camera.PAN_RIGHT: "The camera pans slowly to the right.",
    Camera.PAN_UP: "The camera tilts slowly up.",
    Camera.PAN_DOWN: "The camera tilts slowly down.",
    Camera.ORBIT: "The camera slowly orbits the subject.",
}
_MOTION_WORDS = (
    "Almost still, very subtle motion.",
    "Subtle, gentle motion.",
    "Natural, gentle motion.",
    "Lively motion.",
    "Strong, dynamic motion.",
)


def describe(spec: ClipSpec) -> str:
    """Return the text prompt for text-conditioned models: the request plus camera and motion."""
    subject = spec.prompt.strip() or "The scene comes gently to life"
    words = [subject.rstrip(".") + ".", _CAMERA_WORDS[spec.camera], _MOTION_WORDS[spec.motion]]
    return " ".join(w for w in words if w)


@dataclass(frozen=True, slots=True)
class Plan:
    """What one generation runs at.

    Attributes:
        width: generation width in pixels (a multiple the model accepts).
        height: generation height in pixels.
        frames: frames the model generates.
        fps: the frame rate the model is told (micro-conditioning), not the clip's.
        steps: denoising steps.
        guidance: guidance scale (1.0 or less: no classifier-free guidance).
        loop: ``"keyframe"`` (last frame pinned to the photo), ``"pingpong"`` or ``"none"``.
    """

    width: int
    height: int
    frames: int
    fps: int
    steps: int
    guidance: float
    loop: str


class ModelFamily:
    """What differs between model families; each family module subclasses it.

    Attributes:
        name: the family (``"ltx"``, ``"svd"``, ``"wan"``).
        fps: native frame rate. steps, guidance: defaults for the published checkpoints.
        buckets: native ``(width, height)`` generation sizes.
    """

    name = ""
    fps = 24
    steps = 25
    guidance = 3.0
    buckets: tuple[tuple[int, int], ...] = ((768, 512), (512, 768), (640, 640))

    def pipeline_class(self, class_name: str) -> Any:
        """Return the diffusers pipeline class for a model_index ``_class_name``."""
        raise NotImplementedError

    def frame_step(self, pipe: Any) -> int:
        """Return ``s`` such that the model generates ``s * k + 1`` frames."""
        return 1

    def size_multiple(self, pipe: Any) -> int:
        """Return the multiple that generation width and height must be."""
        raise NotImplementedError

    def denoisers(self, pipe: Any) -> list[Any]:
        """Return the denoising models (cache and compile apply to these)."""
        return [pipe.transformer]

    def loop_mode(self, pipe: Any, spec: ClipSpec) -> str:
        """Return how a looping clip is made: ``"keyframe"``, ``"pingpong"`` or ``"none"``."""
        return "pingpong" if spec.loop else "none"

    def call_kwargs(self, pipe: Any, photo: Any, spec: ClipSpec, plan: Plan) -> dict[str, Any]:
        """Return the model-specific arguments of one pipeline call (photo is a PIL image)."""
        raise NotImplementedError


class DiffusersAnimator:
    """The Animator port on a diffusers image-to-video pipeline, loaded once per process.

    Calls are serialised: a pipeline keeps per-call state (scheduler timesteps) and one GPU
    runs one clip at a time.
    """

    name = "diffusers"

    def __init__(self, pipe: Any, family: ModelFamily, settings: Settings, model: str) -> None:
        self.pipe, self.family, self.options = pipe, family, settings.diffusers
        self.model = model
        self._lock = threading.Lock()

    def animate(self, image: Image, spec: ClipSpec, on_step: StepCallback | None = None) -> Frames:
        """Generate frames from the photo; retry once smaller after running out of GPU memory.

        Raises:
            BackendError: the model failed, or ran out of memory twice.
            JobCancelled: from ``on_step``, between denoising steps.
        """
        with self._lock:
            plan = self.plan(image, spec)
            try:
                video = self._generate(image, spec, plan, on_step)
            except torch.OutOfMemoryError:
                free_memory()
                plan = self._shrunk(plan)
                log.warning("out of GPU memory; retrying at %dx%d", plan.width, plan.height)
                try:
                    video = self._generate(image, spec, plan, on_step)
                except torch.OutOfMemoryError:
                    free_memory()
                    raise BackendError(
                        f"out of GPU memory even at {plan.width}x{plan.height}"
                    ) from None
        return to_frames(video, spec, plan.loop)

    def plan(self, image: Image, spec: ClipSpec) -> Plan:
        """Choose size, frame count, steps and guidance for one clip."""
        fam, opts = self.family, self.options
        multiple = fam.size_multiple(self.pipe)
        buckets = [tuple(int(v) for v in b.split("x")) for b in opts.buckets] or fam.buckets
        width, height = pick_bucket(buckets, image.width, image.height)
        loop = fam.loop_mode(self.pipe, spec)
        fps = opts.fps or fam.fps
        return Plan(
            width=max(multiple, width // multiple * multiple),
            height=max(multiple, height // multiple * multiple),
            frames=frame_count(spec.seconds, fps, loop, fam.frame_step(self.pipe), opts.frames),
            fps=fps,
            steps=opts.steps or fam.steps,
            guidance=opts.guidance or fam.guidance,
            loop=loop,
        )

    def warm_up(self, spec: ClipSpec) -> float:
        """Run two denoising steps at the default clip's plan; return the seconds it took."""
        start = time.perf_counter()
        y, x = np.mgrid[0:64, 0:96]
        pixels = np.stack([x * 2, y * 3, x + y], -1).astype(np.uint8)
        image = Image(pixels, "PNG", "image/png", "0" * 64)
        with self._lock:
            plan = replace(self.plan(image, spec), steps=2)
            self._generate(image, spec, plan, None)
        return time.perf_counter() - start

    def _shrunk(self, plan: Plan) -> Plan:
        multiple = self.family.size_multiple(self.pipe)
        width = max(multiple, int(plan.width * OOM_SHRINK) // multiple * multiple)
        height = max(multiple, int(plan.height * OOM_SHRINK) // multiple * multiple)
        return replace(plan, width=width, height=height)

    def _generate(
        self, image: Image, spec: ClipSpec, plan: Plan, on_step: StepCallback | None
    ) -> NDArray[np.float32]:
        """Run the pipeline once; return ``(T, H, W, 3)`` floats in 0..1."""
        photo = fit_photo(image.pixels, plan.width, plan.height)

        def callback(pipe: Any, i: int, t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            # One more step than the model has stands for the VAE decode that follows.
            if on_step is not None:
                on_step(i + 1, int(pipe.num_timesteps) + 1)
            return tensors

        kwargs = self.family.call_kwargs(self.pipe, photo, spec, plan)
        generator = torch.Generator("cpu").manual_seed(spec.seed)
        try:
            result = self.pipe(
                **kwargs,
                generator=generator,
                output_type="np",
                callback_on_step_end=callback,
            )
        except (torch.OutOfMemoryError, BackendError):
            raise
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"{self.family.name} generation failed: {exc}") from exc
        return np.asarray(result.frames[0], dtype=np.float32)


def pick_bucket(buckets: Any, width: int, height: int) -> tuple[int, int]:
    """Return the ``(width, height)`` bucket whose aspect ratio is closest to the photo's."""
    aspect = width / height
    return min(buckets, key=lambda b: abs(math.log(b[0] / b[1] / aspect)))  # type: ignore[no-any-return]


def frame_count(seconds: float, fps: int, loop: str, step: int, fixed: int = 0) -> int:
    """Return the frames to generate: ``step * k + 1``, enough for ``seconds`` at ``fps``.

    A keyframe loop generates one frame more (the pinned last frame is dropped); a ping-pong
    loop generates about half (the clip plays forward, then back).
    """
    wanted = fixed or round(seconds * fps)
    if not fixed and loop == "keyframe":
        wanted += 1
    elif not fixed and loop == "pingpong":
        wanted = wanted // 2 + 1
    return max(1, math.ceil((wanted - 1) / step)) * step + 1


def fit_photo(pixels: NDArray[np.uint8], width: int, height: int) -> Any:
    """Centre-crop the photo to the bucket's aspect ratio and resize it: the first frame."""
    from PIL import Image as PILImage

    h, w = pixels.shape[:2]
    scale = min(w / width, h / height)
    cw, ch = round(width * scale), round(height * scale)
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    crop = np.ascontiguousarray(pixels[y0 : y0 + ch, x0 : x0 + cw])
    return PILImage.fromarray(crop).resize((width, height), PILImage.Resampling.LANCZOS)


def retime(count: int, wanted: int, loop: bool) -> NDArray[np.intp]:
    """Return indices that stretch ``count`` frames to ``wanted`` frames at the clip's rate."""
    if loop:  # the sequence wraps around: frame ``count`` would be frame 0 again
        return (np.arange(wanted) * count // wanted).astype(np.intp)
    return np.round(np.linspace(0, count - 1, wanted)).astype(np.intp)


def to_frames(video: NDArray[np.float32], spec: ClipSpec, loop: str) -> Frames:
    """Turn the model's float frames into ``spec.frame_count`` even-sized uint8 frames."""
    if loop == "keyframe":
        video = video[:-1]
    elif loop == "pingpong" and len(video) > 2:
        video = np.concatenate([video, video[-2:0:-1]])
    video = video[retime(len(video), spec.frame_count, loop != "none")]
    frames = (np.clip(video, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    h, w = frames.shape[1:3]
    scale = spec.size / max(h, w)
    out_w, out_h = max(2, int(w * scale) // 2 * 2), max(2, int(h * scale) // 2 * 2)
    if (out_h, out_w) != (h, w):
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        frames = np.stack(
            [cv2.resize(f, (out_w, out_h), interpolation=interpolation) for f in frames]
        )
    return Frames(np.ascontiguousarray(frames), spec.fps)


def free_memory() -> None:
    """Return cached GPU memory after a failure so the retry starts clean."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def model_class_name(model: str, local_files_only: bool) -> str:
    """Return the pipeline class named in the model's ``model_index.json``."""
    path = Path(model)
    try:
        if path.is_dir():
            config = json.loads((path / "model_index.json").read_text(encoding="utf-8"))
        else:
            from diffusers import DiffusionPipeline

            config = DiffusionPipeline.load_config(model, local_files_only=local_files_only)
    except (OSError, ValueError) as exc:
        raise BackendUnavailable(f"no diffusers model at {model!r}: {exc}") from None
    return str(config.get("_class_name", ""))


def family_for(name: str, class_name: str) -> ModelFamily:
    """Return the family named in settings, or the one a pipeline class belongs to."""
    if name == "auto":
        prefixes = {"LTX": "ltx", "StableVideoDiffusion": "svd", "Wan": "wan"}
        name = next((f for p, f in prefixes.items() if class_name.startswith(p)), "")
        if not name:
            raise ConfigError(f"diffusers.family: cannot tell the family of {class_name!r}")
    if name == "ltx":
        from core.animation.ltx import LtxFamily

        return LtxFamily()
    if name == "svd":
        from core.animation.svd import SvdFamily

        return SvdFamily()
    from core.animation.wan import WanFamily

    return WanFamily()


def load_animator(settings: Settings) -> DiffusersAnimator:
    """Load the configured model once, place it, apply the speed-ups, and warm it up.

    Raises:
        BackendUnavailable: the model is not on this machine or cannot be loaded.
        ConfigError: the settings cannot work together (offload without a GPU, ...).
    """
    opts = settings.diffusers
    torch.set_num_threads(max(1, settings.jobs.threads_per_job))
    class_name = model_class_name(opts.model, opts.local_files_only)
    family = family_for(opts.family, class_name)
    cls = family.pipeline_class(class_name)
    start = time.perf_counter()
    try:
        pipe = cls.from_pretrained(
            opts.model, dtype=DTYPES[opts.dtype], local_files_only=opts.local_files_only
        )
    except (OSError, ValueError) as exc:
        raise BackendUnavailable(f"cannot load {opts.model!r}: {exc}") from None
    _place(pipe, opts.device, opts.cpu_offload)
    pipe.set_progress_bar_config(disable=True)
    if opts.vae_tiling and hasattr(pipe.vae, "enable_tiling"):
        pipe.vae.enable_tiling()
    for denoiser in family.denoisers(pipe):
        _speed_up(denoiser, opts.cache, opts.compile)
    label = Path(opts.model).name if Path(opts.model).is_dir() else opts.model
    animator = DiffusersAnimator(pipe, family, settings, f"{label} ({cls.__name__})")
    log.info("loaded %s in %.1f s", animator.model, time.perf_counter() - start)
    if opts.warm_up:
        clip = settings.clip
        spec = ClipSpec(seconds=clip.seconds, fps=clip.fps, size=clip.size, motion=clip.motion)
        log.info("warm-up took %.1f s", animator.warm_up(spec))
    return animator


def _place(pipe: Any, device: str, offload: str) -> None:
    """Move the pipeline to its device, or let diffusers move components on demand."""
    if offload == "none":
        pipe.to(device)
        return
    if not device.startswith("cuda"):
        raise ConfigError("diffusers.cpu_offload needs a CUDA device")
    if offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.enable_sequential_cpu_offload(device=device)


def _speed_up(denoiser: Any, cache: str, compile_: bool) -> None:
    """Apply diffusers' cache acceleration and torch.compile where the model supports them."""
    if cache == "first_block":
        if hasattr(denoiser, "enable_cache"):
            from diffusers import FirstBlockCacheConfig

            config = FirstBlockCacheConfig(threshold=FIRST_BLOCK_THRESHOLD)  # type: ignore[no-untyped-call]
            denoiser.enable_cache(config)
        else:
            log.warning("%s has no cache acceleration; ignoring diffusers.cache", type(denoiser))
    if compile_:
        # In place, so the module keeps its type, config and hooks for the pipeline.
        denoiser.compile()

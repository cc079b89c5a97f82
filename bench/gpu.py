"""Seconds per clip and peak GPU memory of the diffusers animator, per model and generation size.

Run on a machine with a CUDA GPU and the models already in the local cache or in directories:

    .venv/bin/python bench/gpu.py --model Lightricks/LTX-Video-0.9.7-distilled \
        --size 768x512 --size 512x512 --seconds 3

Without a GPU it says so and exits 0. The model is loaded and warmed up before timing; each
figure is the median of ``--runs`` clips. Only the animate step is timed (the rest of the
pipeline is in bench/pipeline.py). The figures the model authors publish are in bench/GPU.md.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch
from PIL import Image as PILImage

from bench.photos import landscape
from core.settings import Animation, Diffusers, Settings, load_settings
from core.types import ClipSpec, Image


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", action="append", help="model id or directory (repeatable)")
    parser.add_argument("--size", action="append", help="generation size WxH (repeatable)")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--fps", type=int, default=24, help="the clip's frame rate")
    parser.add_argument("--steps", type=int, default=0, help="0 = the family's default")
    parser.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    parser.add_argument("--offload", default="none", choices=["none", "model", "sequential"])
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--cache", default="none", choices=["none", "first_block"])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("No CUDA GPU is present: nothing to measure. Published figures: bench/GPU.md.")
        return 0
    base = load_settings()
    models = args.model or [base.diffusers.model]
    sizes = args.size or ["768x512"]
    print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}, {args.dtype}")
    print(f"{'model':<44} {'size':>9} {'frames':>6} {'steps':>5} {'s/clip':>7} {'peak GiB':>8}")
    for model in models:
        for size in sizes:
            print(_row(_settings(base, model, size, args), args))
    return 0


def _settings(base: Settings, model: str, size: str, args: argparse.Namespace) -> Settings:
    options = base.diffusers.model_dump() | {
        "model": model,
        "buckets": [size],
        "dtype": args.dtype,
        "cpu_offload": args.offload,
        "compile": args.compile,
        "cache": args.cache,
        "steps": args.steps,
        "warm_up": False,  # warmed below at the measured shape, so compile cost stays out
    }
    return base.model_copy(
        update={
            "animation": Animation(backend="diffusers"),
            "diffusers": Diffusers.model_validate(options),
        }
    )


def _row(settings: Settings, args: argparse.Namespace) -> str:
    from core.animation.diffusers_base import load_animator

    width, height = (int(v) for v in settings.diffusers.buckets[0].split("x"))
    pixels = np.asarray(PILImage.open(io.BytesIO(landscape(width, height))).convert("RGB"))
    photo = Image(pixels, "JPEG", "image/jpeg", "0" * 64)
    spec = ClipSpec(seconds=args.seconds, fps=args.fps, size=max(width, height))
    animator = load_animator(settings)
    plan = animator.plan(photo, spec)
    animator.animate(photo, spec)  # warm-up at this shape (cuDNN autotune, compile)
    times = []
    torch.cuda.reset_peak_memory_stats()
    for _ in range(args.runs):
        torch.cuda.synchronize()
        start = time.perf_counter()
        animator.animate(photo, spec)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**30
    del animator
    torch.cuda.empty_cache()
    size = f"{plan.width}x{plan.height}"
    model = settings.diffusers.model[-44:]
    return (
        f"{model:<44} {size:>9} {plan.frames:>6} {plan.steps:>5} "
        f"{statistics.median(times):>7.2f} {peak:>8.2f}"
    )


if __name__ == "__main__":
    sys.exit(main())

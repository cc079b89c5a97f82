"""Quality, speed and memory of the procedural animator over a set of photos, with contact sheets.

Run: ``.venv/bin/python bench/animation.py`` (``--quick`` for 1 s clips). Photos come from
scikit-image's bundled data (dev extra) and ``bench/photos.py``. Per photo it prints time
(analysis + animation, models already loaded), loop-seam ratio (|last - first| over the mean
consecutive difference; goal <= 1.2), flicker (mean |second difference| of frame brightness,
grey levels), first-frame PSNR against the resized input (goal >= 30 dB), motion energy
inside/outside the animated regions (camera held still), and the warping error along the
subject's edge (Farneback flow between frames, grey levels). Contact sheets (first, middle and
last frames plus a motion heat map) go to ``bench/out/animation/``.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.photos import landscape
from core.animation.procedural import ProceduralAnimator
from core.types import Camera, ClipSpec, Image

OUT = Path(__file__).resolve().parent / "out" / "animation"


def _decode(data: bytes) -> np.ndarray:
    from PIL import Image as PILImage

    return np.asarray(PILImage.open(io.BytesIO(data)).convert("RGB"))


def photos() -> dict[str, Callable[[], np.ndarray]]:
    from skimage import data

    def group() -> np.ndarray:
        left, right = data.astronaut(), np.fliplr(data.astronaut())
        return np.concatenate([left, right[:, :, ::-1]], axis=1)

    return {
        "portrait": data.astronaut,
        "group": group,
        "landscape": lambda: _decode(landscape(1024, 683, seed=1)),
        "city": data.rocket,
        "pet": data.chelsea,
        "coffee": data.coffee,
        "bw": lambda: np.repeat(data.camera()[..., None], 3, axis=2),
        "dark": lambda: (data.astronaut() * 0.12).astype(np.uint8),
        "tiny200": lambda: cv2.resize(data.chelsea(), (200, 133), interpolation=cv2.INTER_AREA),
        "huge6000": lambda: cv2.resize(
            _decode(landscape(1500, 1000, seed=2)), (6000, 4000), interpolation=cv2.INTER_CUBIC
        ),
    }


def grey(frames: np.ndarray) -> np.ndarray:
    return frames.astype(np.float32).mean(axis=3)


def seam_ratio(g: np.ndarray) -> float:
    steps = np.abs(np.diff(g, axis=0)).mean()
    return float(np.abs(g[-1] - g[0]).mean() / max(steps, 1e-6))


def flicker(g: np.ndarray) -> float:
    level = g.mean(axis=(1, 2))
    return float(np.abs(np.diff(level, n=2)).mean())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(cv2.PSNR(a, b))


def energy_in_out(g: np.ndarray, region: np.ndarray) -> tuple[float, float]:
    heat = np.abs(np.diff(g, axis=0)).mean(axis=0)
    inside, outside = region > 0.3, region < 0.05
    e_in = float(heat[inside].mean()) if inside.any() else float("nan")
    e_out = float(heat[outside].mean()) if outside.any() else float("nan")
    return e_in, e_out


def edge_warp_error(g: np.ndarray, subject: np.ndarray) -> float:
    """Mean |frame t+1 warped back to t - frame t| on the subject's edge band (256 px frames)."""
    if subject.max() < 0.5:
        return float("nan")
    h, w = g.shape[1:]
    scale = min(1.0, 256 / max(h, w))
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    hard = cv2.resize((subject > 0.5).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    kernel = np.ones((5, 5), np.uint8)
    band = (cv2.dilate(hard, kernel) - cv2.erode(hard, kernel)) > 0
    xs, ys = np.meshgrid(np.arange(size[0], dtype=np.float32), np.arange(size[1], dtype=np.float32))
    errors = []
    for t in range(0, len(g) - 1, max(1, len(g) // 12)):
        a = cv2.resize(g[t], size, interpolation=cv2.INTER_AREA)
        b = cv2.resize(g[t + 1], size, interpolation=cv2.INTER_AREA)
        flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        back = cv2.remap(b, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR)
        errors.append(float(np.abs(back - a)[band].mean()))
    return float(np.mean(errors))


def contact_sheet(name: str, frames: np.ndarray, g: np.ndarray) -> Path:
    tile_h = 256
    h, w = frames.shape[1:3]
    size = (max(2, round(w * tile_h / h)), tile_h)
    heat = np.abs(np.diff(g, axis=0)).mean(axis=0)
    heat = np.clip(heat / max(float(np.percentile(heat, 99.5)), 1e-3) * 255, 0, 255)
    heat_rgb = cv2.applyColorMap(heat.astype(np.uint8), cv2.COLORMAP_INFERNO)[..., ::-1]
    picks = [frames[0], frames[len(frames) // 2], frames[-1], heat_rgb]
    tiles = [cv2.resize(np.ascontiguousarray(p), size, interpolation=cv2.INTER_AREA) for p in picks]
    sheet = np.concatenate(tiles, axis=1)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.png"
    cv2.imwrite(str(path), sheet[..., ::-1])
    return path


def quality(args: argparse.Namespace) -> None:
    animator = ProceduralAnimator()
    animator.animate(Image(photos()["portrait"](), "PNG", "image/png", ""), ClipSpec(seconds=0.5))
    print(
        f"{'photo':10} {'in px':>11} {'wall s':>6} {'cpu s':>6} {'seam':>5} {'flick':>6} "
        f"{'psnr0':>6} {'E in':>5} {'E out':>5} {'edgeW':>6} {'peakMB':>6} {'rssMB':>6}  plan"
    )
    for name, make in photos().items():
        pixels = make()
        image = Image(np.ascontiguousarray(pixels), "PNG", "image/png", "")
        spec = ClipSpec(prompt=args.prompt, seconds=args.seconds, size=args.size)
        tracemalloc.start()
        start, cpu = time.perf_counter(), time.process_time()
        frames = animator.animate(image, spec).array
        took, cpu = time.perf_counter() - start, time.process_time() - cpu
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        rig = animator.prepare(image, spec)
        still = animator.animate(
            image, ClipSpec(args.prompt, args.seconds, size=args.size, camera=Camera.NONE)
        ).array
        g, gs = grey(frames), grey(still)
        e_in, e_out = energy_in_out(gs, rig.region)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{name:10} {pixels.shape[1]:>5}x{pixels.shape[0]:<5} {took:6.2f} {cpu:6.2f} "
            f"{seam_ratio(g):5.2f} {flicker(g):6.3f} {psnr(frames[0], rig.photo):6.1f} "
            f"{e_in:5.2f} {e_out:5.2f} {edge_warp_error(g, rig.scene.subject):6.2f} "
            f"{peak:6.0f} {rss:6.0f}  {'+'.join(rig.plan.presets)} faces={len(rig.scene.faces)} "
            f"layers={rig.layer is not None} sky={rig.drift is not None}"
        )
        contact_sheet(name, frames, g)
    print(f"contact sheets: {OUT}")


def speed() -> None:
    from skimage import data

    animator = ProceduralAnimator()
    cases = [
        ("512x512 3s", data.astronaut(), 512, 3.0),
        ("1280x720 4s", cv2.resize(data.astronaut(), (1280, 720)), 1280, 4.0),
        ("1280x720 4s land", _decode(landscape(1280, 720)), 1280, 4.0),
    ]
    print(f"{'case':18} {'median s':>8} {'min s':>6} {'cpu s':>6}  (analysis + animation, 24 fps)")
    # Wall time means little on a busy machine; the load average says how busy it was.
    print("load average before: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    for label, pixels, size, seconds in cases:
        image = Image(np.ascontiguousarray(pixels), "PNG", "image/png", "")
        times, cpus = [], []
        for seed in range(5):
            start, cpu = time.perf_counter(), time.process_time()
            animator.animate(image, ClipSpec(seconds=seconds, size=size, seed=seed))
            times.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu)
        print(f"{label:18} {np.median(times):8.3f} {min(times):6.3f} {np.median(cpus):6.3f}")
    print("load average after: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {rss:.0f} MB (ru_maxrss, includes MiniLM and MediaPipe)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 s clips, no speed table")
    parser.add_argument("--prompt", default="")
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    args.seconds = 1.0 if args.quick else 3.0
    cv2.setNumThreads(2)
    quality(args)
    if not args.quick:
        speed()


if __name__ == "__main__":
    main()

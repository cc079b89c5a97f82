"""Does provenance survive sharing? Clips of ours through what phones and messengers do.

Run: ``.venv/bin/python bench/robustness.py`` (about 10 minutes on 2 cores); ``--quick`` for a
smoke run (3 clips, 10 never-made files). The real services make every clip (a temporary data
dir with a dev identity, as ``bench/pipeline.py``); every transformation runs in process (PyAV,
Pillow, OpenCV). For each transformation it prints the share that ``verify`` recognises as ours
with the right ledger entry (any layer), the share the watermark alone reads back, and the
median verify time; then false recognitions on photos and clips this service never made, and
the watermark's PSNR against the same frames unmarked.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.photos import varied
from core import (
    pipeline,
    testing,
)
from core.encode import H264Encoder, decode
from core.errors import InputError
from core.provenance.keys import init_dev_identity
from core.provenance.verify import MAX_VERIFY_FRAMES, verify
from core.services import Services, build_services
from core.settings import load_settings
from core.types import ClipSpec, Frames, JobRequest, Photo

# Photo sizes (width, height) cycled over the clips and the never-made files.
SIZES = ((640, 480), (480, 640), (600, 600), (800, 450), (1024, 768))
Transform = Callable[[bytes, np.random.Generator], bytes]


def encode(array: np.ndarray, fps: float, crf: int, **options: str) -> bytes:
    """Return an H.264 MP4 of RGB frames at ``crf`` (x264 defaults otherwise, as apps use)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        rate = Fraction(fps).limit_denominator(1000)
        stream = out.add_stream("libx264", rate=rate, options={"crf": str(crf), **options})
        stream.width, stream.height = array.shape[2] // 2 * 2, array.shape[1] // 2 * 2
        stream.pix_fmt = "yuv420p"
        for pixels in array:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
            for packet in stream.encode(frame.reformat(stream.width, stream.height)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


def frames_of(data: bytes) -> Frames:
    """Decode every frame of a clip (the transformations see the whole clip)."""
    return decode(data)


def remux(data: bytes, _: np.random.Generator) -> bytes:
    """Copy the packets into a fresh MP4: what a messenger's server does; metadata is gone."""
    return testing.remux(data)


def reencode(crf: int) -> Transform:
    """Return a transformation that re-encodes with x264 at ``crf``."""

    def apply(data: bytes, _: np.random.Generator) -> bytes:
        clip = frames_of(data)
        return encode(clip.array, clip.fps, crf)

    return apply


def resize(share: float) -> Transform:
    """Return a transformation that scales frames by ``share`` and re-encodes at crf 23."""

    def apply(data: bytes, _: np.random.Generator) -> bytes:
        clip = frames_of(data)
        size = (round(clip.width * share / 2) * 2, round(clip.height * share / 2) * 2)
        small = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in clip.array]
        return encode(np.stack(small), clip.fps, 23)

    return apply


def crop(data: bytes, rng: np.random.Generator) -> bytes:
    """Cut 10 % of the width and of the height off the edges, split unevenly; crf 23."""
    clip = frames_of(data)
    h, w = clip.height, clip.width
    top, left = int(rng.uniform(0.02, 0.08) * h), int(rng.uniform(0.02, 0.08) * w)
    kept = clip.array[:, top : top + int(0.9 * h) // 2 * 2, left : left + int(0.9 * w) // 2 * 2]
    return encode(kept, clip.fps, 23)


def to_gif(data: bytes, _: np.random.Generator) -> bytes:
    """Convert to an animated GIF: a 256-colour palette per frame with dithering."""
    clip = frames_of(data)
    images = [
        Image.fromarray(f).quantize(
            256, Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG
        )
        for f in clip.array
    ]
    buffer = io.BytesIO()
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:], duration=40, loop=0)
    return buffer.getvalue()


def fps15(data: bytes, _: np.random.Generator) -> bytes:
    """Drop frames to 15 fps and re-encode at crf 23."""
    clip = frames_of(data)
    keep = np.arange(0, clip.count, clip.fps / 15).astype(int)
    return encode(clip.array[keep], 15, 23)


def whatsapp(data: bytes, _: np.random.Generator) -> bytes:
    """Re-encode like WhatsApp: baseline profile, ~1.5 Mbit/s cap, long edge <= 848, <= 16 MB."""
    clip = frames_of(data)
    array = clip.array
    if max(clip.width, clip.height) > 848:
        share = 848 / max(clip.width, clip.height)
        size = (round(clip.width * share / 2) * 2, round(clip.height * share / 2) * 2)
        array = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in array])
    out = encode(
        array, clip.fps, 28, profile="baseline", maxrate="1500k", bufsize="3000k", preset="fast"
    )
    assert len(out) <= 16 * 1024 * 1024
    return out


def jpeg_frame(data: bytes, _: np.random.Generator) -> bytes:
    """Save the middle frame as a JPEG at quality 70 (a screenshot shared as a photo)."""
    clip = frames_of(data)
    buffer = io.BytesIO()
    Image.fromarray(clip.array[clip.count // 2]).save(buffer, "JPEG", quality=70)
    return buffer.getvalue()


TRANSFORMS: dict[str, Transform] = {
    "original (signed)": lambda data, _: data,
    "remux (metadata gone)": remux,
    "H.264 crf 23": reencode(23),
    "H.264 crf 28": reencode(28),
    "H.264 crf 35": reencode(35),
    "resize 50%": resize(0.5),
    "resize 75%": resize(0.75),
    "crop 10% (edges)": crop,
    "GIF": to_gif,
    "15 fps": fps15,
    "WhatsApp-like": whatsapp,
    "one frame JPEG q70": jpeg_frame,
}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Return the PSNR of ``b`` against ``a`` in dB."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


def watermark_psnr(s: Services, request: JobRequest) -> float:
    """Return the PSNR the watermark step costs on this request's labelled frames."""
    frames = s.animator.animate(s.decode(request.photo, s.settings.limits), request.spec)
    for step in s.frame_steps:
        marked = step.apply(frames, "000000000000")
        if step.name == "watermark":
            return psnr(frames.array, marked.array)
        frames = marked
    return float("nan")


def make_clips(s: Services, count: int) -> list[tuple[str, str, bytes, float]]:
    """Return ``count`` clips of ours: (kind, ledger id, signed bytes, watermark PSNR)."""
    clips: list[tuple[str, str, bytes, float]] = []
    index = 0
    while len(clips) < count:
        kind, photo = varied(index, *SIZES[index % len(SIZES)])
        request = JobRequest(Photo(photo), ClipSpec(seconds=3.0, fps=24, size=512, seed=index))
        index += 1
        outcome = pipeline.run(request, s)
        if outcome.clip is None:
            print(f"  ({kind} photo {index - 1} refused: {outcome.verdict.code}; next one)")
            continue
        clips.append((kind, outcome.clip.ledger_id, outcome.clip.data, watermark_psnr(s, request)))
    return clips


def never_made(index: int) -> bytes:
    """Return a photo or a clip this service never made: even indices photos, odd clips."""
    width, height = SIZES[index % len(SIZES)]
    _, photo = varied(10_000 + index, width, height)
    if index % 2 == 0:
        return photo
    pixels = np.asarray(Image.open(io.BytesIO(photo)).convert("RGB"))
    h, w = pixels.shape[:2] if max(pixels.shape[:2]) <= 640 else (height // 2, width // 2)
    frames = []
    for i in range(48):  # a slow push-in, 2 s at 24 fps
        zoom = cv2.getRotationMatrix2D((w / 2, h / 2), 0, 1.0 + 0.002 * i)
        small = cv2.resize(pixels, (w, h), interpolation=cv2.INTER_AREA)
        frames.append(cv2.warpAffine(small, zoom, (w, h), borderMode=cv2.BORDER_REFLECT))
    return H264Encoder(crf=23).encode(Frames(np.stack(frames)[:, : h // 2 * 2, : w // 2 * 2], 24))


def watermark_alone(s: Services, data: bytes) -> str:
    """Return what the watermark layer reads from a file, decoded as verify decodes it."""
    try:
        return s.watermark_reader.read(
            Frames(s.decode(Photo(data), s.settings.limits).pixels[None], 1)
        )
    except InputError:  # not a picture: read it as a video, as verify does
        return s.watermark_reader.read(decode(data, max_frames=MAX_VERIFY_FRAMES))


def run_transforms(s: Services, clips: list[tuple[str, str, bytes, float]]) -> None:
    """Print, per transformation, the shares recognised and the median verify time."""
    rng = np.random.default_rng(0)
    print(f"{'transformation':<24}{'verify: ours':>14}{'watermark alone':>17}{'verify ms':>11}")
    print("-" * 66)
    for name, transform in TRANSFORMS.items():
        ours = marks = 0
        times, misses = [], []
        for kind, ledger_id, data, _ in clips:
            changed = transform(data, rng)
            start = time.perf_counter()
            report = verify(changed, s)
            times.append(time.perf_counter() - start)
            hit = report.ledger is not None and report.ledger.id == ledger_id
            ours += hit
            mark = watermark_alone(s, changed) == ledger_id
            marks += mark
            if not (hit and mark):
                misses.append(f"{kind}{'' if hit else ' (verify)'}{'' if mark else ' (wm)'}")
        n = len(clips)
        print(
            f"{name:<24}{ours:>7}/{n} {100 * ours / n:>4.0f}%"
            f"{marks:>9}/{n} {100 * marks / n:>4.0f}%{1000 * statistics.median(times):>11.0f}"
            + (f"   missed: {', '.join(misses)}" if misses else ""),
            flush=True,
        )


def run_negatives(s: Services, count: int) -> None:
    """Print false recognitions on ``count`` photos and clips this service never made."""
    false_any = false_mark = 0
    for index in range(count):
        data = never_made(index)
        report = verify(data, s)
        mark = watermark_alone(s, data)
        false_any += report.ours
        false_mark += bool(mark)
        if report.ours or mark:
            print(
                f"  false: never-made #{index}: verdict {report.verdict.kind}, watermark {mark!r}"
            )
    print(
        f"\nnever made: {count} ({(count + 1) // 2} photos, {count // 2} clips); false"
        f" recognitions: verify {false_any}, watermark alone (any id read) {false_mark}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--negatives", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="3 clips, 10 never-made (smoke)")
    args = parser.parse_args()
    clips_n, negatives_n = (3, 10) if args.quick else (args.clips, args.negatives)
    os.environ.pop("ALIVE_CONFIG", None)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp))
        init_dev_identity(Path(tmp) / "keys")
        s = build_services(settings)
        started = time.perf_counter()
        clips = make_clips(s, clips_n)
        psnrs = [p for *_, p in clips]
        print(
            f"alive robustness: {len(clips)} clips of ours (512 px, 3 s, 24 fps) from "
            f"{len({k for k, *_ in clips})} kinds of photo; {os.cpu_count()} CPU cores\n"
            f"watermark PSNR vs the same frames unmarked: min {min(psnrs):.2f} dB, "
            f"mean {statistics.mean(psnrs):.2f} dB\n"
        )
        run_transforms(s, clips)
        run_negatives(s, negatives_n)
        print(f"\n(total {time.perf_counter() - started:.0f} s)")
        s.close()


if __name__ == "__main__":
    main()

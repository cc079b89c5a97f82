"""Fakes at core's own seams, for tests of adapters and runners (like httpx's MockTransport).

They are real implementations of the ports with trivial behaviour, not mocks: an adapter test
drives the real service, runner and pipeline with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from core.ports import StepCallback
from core.types import ClipSpec, Frames, Image, Stage, Verdict


@dataclass
class AllowAll:
    """A check (photo, prompt or frames) that allows everything and counts its calls."""

    name: str = "allow-all"
    calls: int = 0

    def check(self, subject: object) -> Verdict:
        """Allow."""
        self.calls += 1
        return Verdict.ok(Stage.PHOTO, self.name)


@dataclass
class RejectAll:
    """A check that rejects everything with a fixed code."""

    code: str = "nsfw_photo"
    stage: Stage = Stage.PHOTO
    name: str = "reject-all"

    def check(self, subject: object) -> Verdict:
        """Reject."""
        return Verdict.reject(self.code, self.stage, self.name)


@dataclass
class FakeAnimator:
    """Makes frames by sliding the photo sideways a little: fast and deterministic."""

    name: str = "fake"
    model: str = "fake-1"
    calls: list[ClipSpec] = field(default_factory=list)

    def animate(self, image: Image, spec: ClipSpec, on_step: StepCallback | None = None) -> Frames:
        """Return ``spec.frame_count`` shifted copies at even size ``spec.size`` or smaller."""
        self.calls.append(spec)
        from PIL import Image as PILImage

        pil = PILImage.fromarray(image.pixels)
        pil.thumbnail((spec.size, spec.size))
        base = np.asarray(pil)[: pil.height // 2 * 2, : pil.width // 2 * 2]
        shifts = [
            round(2 * np.sin(2 * np.pi * i / spec.frame_count)) for i in range(spec.frame_count)
        ]
        return Frames(np.stack([np.roll(base, s, axis=1) for s in shifts]), spec.fps)


def remux(data: bytes) -> bytes:
    """Copy a clip's video packets into a fresh MP4, as a messenger's server does.

    The pixels are untouched; everything else — the C2PA manifest included — is gone.
    """
    import io

    import av

    out = io.BytesIO()
    src: Any = av.open(io.BytesIO(data))
    with src, av.open(out, "w", format="mp4") as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:  # the demuxer's final flush packet
                packet.stream = stream
                dst.mux(packet)
    return out.getvalue()


def reencode(frames: NDArray[np.uint8], crf: int = 28, fps: int = 24) -> NDArray[np.uint8]:
    """Re-encode ``(T, H, W, 3)`` RGB frames with plain libx264 and decode them back.

    This is what a sharing app does to a clip: its own encoder, its own settings (the default GOP:
    one keyframe, the rest predicted), not ours.
    """
    import io

    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf)}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    buf.seek(0)
    src: Any = av.open(buf)
    with src:
        decoded = [f.to_ndarray(format="rgb24") for f in src.decode(video=0)]
    return np.stack(decoded).astype(np.uint8)

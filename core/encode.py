"""Step 6 of the pipeline: frames become an H.264 MP4 that plays everywhere; verify decodes clips.

The file is muxed in memory. FFmpeg's ``+faststart`` needs a real file path (it reopens the output
by name, and fails on a ``BytesIO``), so the moov box is moved to the front here instead, the way
``qt-faststart`` does it: the box moves before ``mdat`` and every chunk offset grows by its size.
"""

from __future__ import annotations

import io
import logging
import struct
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import numpy as np

from core.types import Frames

logger = logging.getLogger(__name__)

# NOTE: two cores are shared by every job (feasibility machine); one x264 thread count, <= 2.
_THREADS = 2
# NOTE: one keyframe per second lets players seek and messengers cut previews cheaply.
_KEYFRAME_SECONDS = 1.0
# NOTE: a one-second VBV buffer, the usual choice for streaming; it bounds a clip's size by
# maxrate * (duration + 1 s), which fit_to_limit relies on.
_VBV_SECONDS = 1.0
_PRESETS = frozenset(
    {
        "ultrafast",
        "superfast",
        "veryfast",
        "faster",
        "fast",
        "medium",
        "slow",
        "slower",
        "veryslow",
    }
)
# NOTE: x264's CRF scale for 8-bit video.
_MAX_CRF = 51
# fit_to_limit's retries: (crf added, share of the frame size); each also caps the bitrate.
_FIT_STEPS = ((0, 1.0), (4, 1.0), (8, 0.75), (12, 0.5), (16, 0.35))
# NOTE: measured moov overhead of a 72-frame clip is ~1.2 kB (ftyp, moov, sample tables).
_MUX_OVERHEAD_BYTES = 2048
_MUX_OVERHEAD_PER_FRAME = 24

# Decoding limits for files from strangers.
# NOTE: messengers cap uploads at 20-50 MB; nothing we verify is bigger.
_MAX_INPUT_BYTES = 64 * 1024 * 1024
# NOTE: 4096x4096, above 4K UHD; larger frames are refused before decoding.
_MAX_FRAME_PIXELS = 4096 * 4096
# NOTE: 256 Mpx of RGB is 768 MB: a whole 6 s clip at 1024 px fits (141 Mpx), more is cut off.
_MAX_TOTAL_PIXELS = 256_000_000
_MAX_FRAMES = 1000
_DEFAULT_FPS = 24
# Demuxers tried in order, each named explicitly so FFmpeg never probes its way into playlist
# or concat demuxers that open other files.
_DEMUXERS = ("mp4", "matroska", "gif")
_VIDEO_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1", "libdav1d", "mpeg4", "gif"})

_OFFSET_PARENTS = frozenset({b"moov", b"trak", b"mdia", b"minf", b"stbl"})


class H264Encoder:
    """Encodes frames as H.264 High, yuv420p, constant frame rate MP4 with the moov box first.

    Args:
        crf: x264 constant rate factor (0-51; lower is better and bigger).
        preset: x264 speed preset (``"veryfast"`` ...).
        max_bitrate_kbps: VBV cap on the bitrate, in kbit/s.

    Raises:
        ValueError: a setting is out of range.
    """

    def __init__(self, crf: int = 23, preset: str = "veryfast", max_bitrate_kbps: int = 4000):
        if not 0 <= crf <= _MAX_CRF:
            raise ValueError(f"crf must be 0..{_MAX_CRF}, got {crf}")
        if preset not in _PRESETS:
            raise ValueError(f"unknown x264 preset {preset!r}")
        if max_bitrate_kbps < 1:
            raise ValueError(f"max_bitrate_kbps must be positive, got {max_bitrate_kbps}")
        self.crf = crf
        self.preset = preset
        self.max_bitrate_kbps = max_bitrate_kbps

    def encode(self, frames: Frames) -> bytes:
        """Return MP4 bytes of ``frames``.

        Raises:
            ValueError: the frames are not ``(T, H, W, 3)`` uint8 with even ``H`` and ``W``.
        """
        _check_frames(frames)
        return self._encode(frames, self.crf, self.max_bitrate_kbps, (frames.width, frames.height))

    def fit_to_limit(self, frames: Frames, limit_bytes: int) -> bytes:
        """Return MP4 bytes no larger than ``limit_bytes``, lowering quality and then size.

        Raises:
            ValueError: the frames are malformed, or no attempt fits.
        """
        _check_frames(frames)
        duration = frames.count / frames.fps
        payload = limit_bytes - _MUX_OVERHEAD_BYTES - _MUX_OVERHEAD_PER_FRAME * frames.count
        # VBV bounds the stream by maxrate * (duration + buffer); aim 10% under the limit.
        budget_kbps = max(1, int(0.9 * payload * 8 / (duration + _VBV_SECONDS) / 1000))
        size = (frames.width, frames.height)
        for attempt, (extra_crf, share) in enumerate(_FIT_STEPS):
            crf = min(_MAX_CRF, self.crf + extra_crf)
            kbps = (
                self.max_bitrate_kbps if attempt == 0 else min(self.max_bitrate_kbps, budget_kbps)
            )
            size = (_even(frames.width * share), _even(frames.height * share))
            data = self._encode(frames, crf, kbps, size)
            if len(data) <= limit_bytes:
                return data
            logger.info(
                "clip of %d bytes over limit %d at crf %d, %d kbit/s, %dx%d",
                len(data),
                limit_bytes,
                crf,
                kbps,
                *size,
            )
        raise ValueError(f"clip does not fit in {limit_bytes} bytes, even at {size[0]}x{size[1]}")

    def _encode(self, frames: Frames, crf: int, kbps: int, size: tuple[int, int]) -> bytes:
        """Mux the frames, scaled to ``size``, into an MP4 and move its moov box first."""
        import av
        import cv2

        buffer = io.BytesIO()
        with av.open(buffer, mode="w", format="mp4") as container:
            stream = container.add_stream(
                "libx264", rate=frames.fps, options=self._x264_options(crf, kbps, frames.fps)
            )
            _configure(stream.codec_context, frames.fps, size)
            for index, pixels in enumerate(frames.array):
                if (pixels.shape[1], pixels.shape[0]) != size:
                    pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
                # NOTE: OpenCV's I420 conversion is BT.601 limited range (white -> Y 235) and
                # about 4x faster than swscale's from RGB24; _configure tags it as such.
                planes = cv2.cvtColor(pixels, cv2.COLOR_RGB2YUV_I420)
                frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
                frame.pts = index
                frame.time_base = Fraction(1, frames.fps)
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        return move_moov_first(buffer.getvalue())

    def _x264_options(self, crf: int, kbps: int, fps: int) -> dict[str, str]:
        """x264 options: quality, speed, High profile, VBV cap, keyframe interval; no tune."""
        keyint = max(1, round(fps * _KEYFRAME_SECONDS))
        return {
            "crf": str(crf),
            "preset": self.preset,
            "profile": "high",
            "maxrate": f"{kbps}k",
            "bufsize": f"{max(1, round(kbps * _VBV_SECONDS))}k",
            "g": str(keyint),
        }


def _configure(context: Any, fps: int, size: tuple[int, int]) -> None:
    """Set size, pixel format, time base, colour tags and threads on an encoder context."""
    context.width, context.height = size
    context.pix_fmt = "yuv420p"
    context.time_base = Fraction(1, fps)
    context.framerate = Fraction(fps, 1)
    # Say how the frames were converted, or players guess the matrix by frame size: sRGB
    # pixels (BT.709 primaries and, near enough, transfer) through the BT.601 matrix.
    context.color_primaries = context.color_trc = 1  # AVCOL_PRI_BT709, AVCOL_TRC_BT709
    context.colorspace = 6  # AVCOL_SPC_SMPTE170M (BT.601)
    context.color_range = 1  # AVCOL_RANGE_MPEG (limited)
    # PyAV defaults to sliced threads; x264's own default, frame threads, compresses better.
    context.thread_type = "FRAME"
    context.thread_count = _THREADS


def _check_frames(frames: Frames) -> None:
    """Raise ValueError unless the frames can be encoded as yuv420p."""
    array = frames.array
    if array.ndim != 4 or array.shape[3] != 3 or array.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {array.shape} {array.dtype}")
    if array.shape[0] < 1 or frames.fps < 1:
        raise ValueError(
            f"need at least one frame and fps >= 1, got {array.shape[0]} at {frames.fps}"
        )
    if frames.width % 2 or frames.height % 2 or frames.width < 2 or frames.height < 2:
        raise ValueError(f"frame size must be even for yuv420p, got {frames.width}x{frames.height}")


def _even(value: float) -> int:
    """Round down to an even number, at least 2."""
    return max(2, int(value) // 2 * 2)


def _boxes(data: bytes | bytearray, start: int, end: int) -> Iterator[tuple[bytes, int, int, int]]:
    """Yield ``(type, start, body_start, end)`` of the ISO BMFF boxes in ``data[start:end]``."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise ValueError("truncated MP4 box header")
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise ValueError("malformed MP4 box")
        yield kind, pos, pos + header, pos + size
        pos += size


def _shift_chunk_offsets(box: bytearray, start: int, end: int, delta: int) -> None:
    """Add ``delta`` to every ``stco``/``co64`` entry inside ``box[start:end]``."""
    for kind, _, body, stop in _boxes(box, start, end):
        if kind in _OFFSET_PARENTS:
            _shift_chunk_offsets(box, body, stop, delta)
        elif kind in (b"stco", b"co64"):
            (count,) = struct.unpack_from(">I", box, body + 4)  # after version and flags
            layout = f">{count}{'Q' if kind == b'co64' else 'I'}"
            if body + 8 + struct.calcsize(layout) > stop:
                raise ValueError("malformed chunk offset table")
            offsets = [offset + delta for offset in struct.unpack_from(layout, box, body + 8)]
            if kind == b"stco" and max(offsets, default=0) > 0xFFFFFFFF:
                raise ValueError("clip too large for 32-bit chunk offsets")
            struct.pack_into(layout, box, body + 8, *offsets)


def move_moov_first(data: bytes) -> bytes:
    """Return the MP4 with its ``moov`` box before ``mdat`` (progressive playback).

    Raises:
        ValueError: the file has no ``moov`` or ``mdat`` box, or its boxes are malformed.
    """
    top = {kind: (start, end) for kind, start, _, end in _boxes(data, 0, len(data))}
    if b"moov" not in top or b"mdat" not in top:
        raise ValueError("MP4 has no moov or mdat box")
    (moov_start, moov_end), mdat_start = top[b"moov"], top[b"mdat"][0]
    if moov_start < mdat_start:
        return data
    moov = bytearray(data[moov_start:moov_end])
    _shift_chunk_offsets(moov, 0, len(moov), len(moov))
    return b"".join((data[:mdat_start], moov, data[mdat_start:moov_start], data[moov_end:]))


def decode(data: bytes, max_frames: int | None = None) -> Frames:
    """Decode a video from bytes into RGB frames, within limits safe for files from strangers.

    Only MP4/MOV, Matroska/WebM and GIF containers and common video codecs are read. Decoding
    stops at ``max_frames``, at 1000 frames, or at 256 Mpx in all; odd sizes are cropped to even.

    Args:
        data: the file's bytes.
        max_frames: decode at most this many frames (``None``: up to the built-in cap).

    Returns:
        The frames and the stream's frame rate, rounded to whole frames per second.

    Raises:
        ValueError: the bytes are not a decodable video (plain message, no FFmpeg internals).
    """
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    if not data:
        raise ValueError("no video data")
    if len(data) > _MAX_INPUT_BYTES:
        raise ValueError(f"video larger than {_MAX_INPUT_BYTES} bytes")
    limit = _MAX_FRAMES if max_frames is None else min(max_frames, _MAX_FRAMES)
    container = _open_video(bytes(data))
    try:
        return _decode_frames(container, limit)
    finally:
        container.close()


def video_size(data: bytes) -> tuple[int, int]:
    """Return the width and height of the first video stream of an encoded clip.

    Raises:
        ValueError: ``data`` is not a video this module can open.
    """
    container = _open_video(bytes(data))
    try:
        context = container.streams.video[0].codec_context
        return int(context.width), int(context.height)
    finally:
        container.close()


def _open_video(data: bytes) -> Any:
    """Open ``data`` with the first allowed demuxer that accepts it and has a video stream."""
    import av

    for demuxer in _DEMUXERS:
        try:
            container = av.open(io.BytesIO(data), format=demuxer, metadata_errors="replace")
        except (av.FFmpegError, OSError, ValueError, EOFError):
            continue
        if container.streams.video:
            return container
        container.close()
    raise ValueError("not a decodable video")


def _decode_frames(container: Any, limit: int) -> Frames:
    """Decode up to ``limit`` frames of the first video stream."""
    import av

    stream = container.streams.video[0]
    context = stream.codec_context
    if context is None:  # a damaged header can name a codec FFmpeg cannot open
        raise ValueError("the video stream has no decoder")
    if context.name not in _VIDEO_CODECS:
        raise ValueError(f"unsupported video codec {context.name!r}")
    width, height = context.width // 2 * 2, context.height // 2 * 2
    if width < 2 or height < 2 or width * height > _MAX_FRAME_PIXELS:
        raise ValueError(f"video frame size {context.width}x{context.height} not supported")
    context.thread_count = _THREADS
    # The decoder itself refuses bigger frames, even if the size changes midway.
    context.options = {"max_pixels": str(_MAX_FRAME_PIXELS)}
    budget = min(limit, _MAX_TOTAL_PIXELS // (width * height))
    frames: list[np.ndarray[Any, Any]] = []
    try:
        for frame in container.decode(stream):
            # A stream may change size midway; scale every frame to the first one's size.
            rgb = frame.to_ndarray(format="rgb24", width=context.width, height=context.height)
            frames.append(rgb[:height, :width])
            if len(frames) >= budget:
                break
    except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
        if not frames:
            raise ValueError("not a decodable video") from exc
        logger.info("video stopped decoding after %d frames: %s", len(frames), type(exc).__name__)
    if not frames:
        raise ValueError("video has no frames")
    return Frames(np.stack(frames), _stream_fps(stream))


def _stream_fps(stream: Any) -> int:
    """The stream's frame rate rounded to a whole number, or 24 when it does not say."""
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and 0 < float(rate) <= 1000:
            return max(1, round(float(rate)))
    logger.debug("video stream has no frame rate; assuming %d fps", _DEFAULT_FPS)
    return _DEFAULT_FPS

"""Steps 2 and 4 of the pipeline: refuse nudity in the photo and in sampled output frames.

The detector is NudeNet 3.4.2's packaged ``320n.onnx`` (a YOLO-style detector). We run it
through our own onnxruntime session rather than ``nudenet.NudeDetector``, because that
constructor takes no session options and we must cap ``intra_op_num_threads``; the
pre-processing mirrors what ``NudeDetector.detect`` does to a file it reads from disk (pad
bottom/right to a square, resize to 320, scale to 0..1, NCHW, channels in B, G, R order,
because its ``cvtColor`` and ``swapRB`` each swap them), and the tests check that both agree.

Scores are read straight from the raw output: each candidate box counts for its best class,
and a class's score is its best box's score. NudeNet's own 0.2 floor and non-maximum
suppression do not change that maximum, so our threshold applies to the same numbers
``NudeDetector.detect`` reports, and a threshold below 0.2 still works.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from core.types import Frames, Image, Stage, Verdict

if TYPE_CHECKING:
    from numpy.typing import NDArray

logger = logging.getLogger(__name__)

# NOTE: class order of 320n.onnx's output rows 4.., copied from nudenet/nudenet.py (3.4.2).
LABELS: Final = (
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)
# NOTE: 320n.onnx's fixed input resolution (NudeDetector's default inference_resolution).
INPUT_SIZE: Final = 320

_sessions: dict[int, Any] = {}
_sessions_lock = threading.Lock()


def _session(threads: int) -> Any:
    """Load the packaged detector once per process (per thread count)."""
    with _sessions_lock:
        if threads not in _sessions:
            import nudenet
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            model = Path(nudenet.__file__).resolve().parent / "320n.onnx"
            _sessions[threads] = onnxruntime.InferenceSession(
                str(model), sess_options=options, providers=["CPUExecutionProvider"]
            )
            logger.info("loaded NudeNet detector with %d thread(s)", threads)
        return _sessions[threads]


def preprocess(rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Turn ``(H, W, 3)`` RGB into the detector's ``(1, 3, 320, 320)`` float input.

    Mirrors nudenet's ``_read_image`` on a file read with ``cv2.imread``: pad bottom and
    right with black to a square, resize to 320 bilinearly, scale to 0..1, channels first
    in B, G, R order (the order the published detector is run with).
    """
    import cv2

    height, width = rgb.shape[:2]
    side = max(height, width)
    square = cv2.copyMakeBorder(
        np.ascontiguousarray(rgb), 0, side - height, 0, side - width, cv2.BORDER_CONSTANT
    )
    resized = cv2.resize(square, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
    blob = resized[:, :, ::-1].astype(np.float32) / np.float32(255.0)
    return np.ascontiguousarray(blob.transpose(2, 0, 1)[None])


class NudityCheck:
    """Refuses a photo when NudeNet scores any listed class at or over its threshold.

    Args:
        classes: NudeNet class names that count as nudity (see :data:`LABELS`), either as a
            list sharing ``threshold`` or as a mapping of class to its own threshold (the
            policy's ``[photo.nudenet]`` table).
        threshold: the score, 0..1, at which a listed class counts when ``classes`` is a list.
        threads: onnxruntime intra-op threads for this process's detector.

    Raises:
        ValueError: when a class name is not one NudeNet knows (a config typo must not
            silently switch a class off).
    """

    name = "nudenet"

    def __init__(
        self, classes: Sequence[str] | Mapping[str, float], threshold: float = 0.5, threads: int = 1
    ) -> None:
        thresholds = (
            dict(classes) if isinstance(classes, Mapping) else dict.fromkeys(classes, threshold)
        )
        unknown = sorted(set(thresholds) - set(LABELS))
        if unknown:
            raise ValueError(f"unknown NudeNet classes: {', '.join(unknown)}")
        self._thresholds = thresholds
        self._session = _session(threads)
        self._input = self._session.get_inputs()[0].name

    def scores(self, rgb: NDArray[np.uint8]) -> dict[str, float]:
        """Return the best box score of every class present in the raw output.

        Args:
            rgb: ``(H, W, 3)`` uint8 RGB pixels.
        """
        output = self._session.run(None, {self._input: preprocess(rgb)})[0]
        rows = np.asarray(output)[0, 4:, :]  # (classes, boxes): class scores per box
        best_class = rows.argmax(axis=0)
        best_score = rows.max(axis=0)
        found: dict[str, float] = {}
        for column in np.unique(best_class):
            found[LABELS[int(column)]] = float(best_score[best_class == column].max())
        return found

    def flagged(self, rgb: NDArray[np.uint8]) -> dict[str, float]:
        """Return the listed classes whose score reaches their threshold, with their scores."""
        found = self.scores(rgb)
        return {
            label: found[label]
            for label, threshold in self._thresholds.items()
            if label in found and found[label] >= threshold
        }

    def check(self, image: Image) -> Verdict:
        """Return a rejection ``nsfw_photo`` with the flagged classes' scores, or allow."""
        flagged = self.flagged(image.pixels)
        if flagged:
            return Verdict.reject("nsfw_photo", Stage.PHOTO, self.name, flagged)
        return Verdict.ok(Stage.PHOTO, self.name)


class NudityFramesCheck:
    """Runs a :class:`NudityCheck` on evenly spaced frames of the animated clip.

    Args:
        detector: the photo check whose classes and threshold apply.
        samples: how many frames to check; frame ``i`` of ``n`` is taken from the middle
            of the ``i``-th of ``n`` equal stretches of the clip.
    """

    name = "nudenet"

    def __init__(self, detector: NudityCheck, samples: int) -> None:
        if samples < 1:
            raise ValueError("samples must be at least 1")
        self._detector = detector
        self._samples = samples

    def indices(self, count: int) -> list[int]:
        """Return the frame indices sampled from a clip of ``count`` frames."""
        n = min(self._samples, count)
        return [int((i + 0.5) * count / n) for i in range(n)]

    def check(self, frames: Frames) -> Verdict:
        """Return a rejection ``nsfw_output`` with the worst scores seen, or allow."""
        worst: dict[str, float] = {}
        for index in self.indices(frames.count):
            for label, score in self._detector.flagged(frames.array[index]).items():
                worst[label] = max(score, worst.get(label, 0.0))
        if worst:
            return Verdict.reject("nsfw_output", Stage.OUTPUT, self.name, worst)
        return Verdict.ok(Stage.OUTPUT, self.name)

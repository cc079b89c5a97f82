"""Step 2 of the pipeline, photo side, last: count the faces, so the chat adapters can ask consent.

MediaPipe 0.10.14's bundled BlazeFace detector (``mediapipe.solutions.face_detection``, its
tflite model inside the wheel, so it runs offline) finds the faces. The check never rejects:
its allowing verdict carries ``faces`` (how many) and ``largest_face`` (the biggest face's
share of the photo's area, 0..1), which the chat adapters read to apply the consent rule.
"""

from __future__ import annotations

import logging
import threading
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from core.frames import fit_within
from core.types import Image, Stage, Verdict

if TYPE_CHECKING:
    from numpy.typing import NDArray

log = logging.getLogger(__name__)

# NOTE: MediaPipe's model_selection: 0 = short range (faces within ~2 m), 1 = full range (~5 m).
MODELS = {"short": 0, "full": 1}
# NOTE: BlazeFace runs at 128 or 192 px whatever the input; a 640 px copy loses nothing it
# can see and keeps large photos cheap to convert.
DETECT_SIDE = 640


class FaceCountCheck:
    """Reports how many faces a photo shows and how large the biggest is; always allows.

    Args:
        model: ``"short"`` (selfies) or ``"full"`` (group photos).
        min_confidence: detection score, 0..1, at which a face counts.
    """

    name = "faces"

    def __init__(self, model: str = "full", min_confidence: float = 0.5) -> None:
        self._model = MODELS[model]
        self._min_confidence = min_confidence
        self._lock = threading.Lock()  # a MediaPipe graph runs one image at a time
        self._detector: Any = None

    def _load(self) -> Any:
        if self._detector is None:
            with warnings.catch_warnings():
                # protobuf 4.25 warns about an API mediapipe 0.10.14 still calls.
                warnings.simplefilter("ignore", UserWarning)
                from mediapipe.python.solutions import face_detection

                self._detector = face_detection.FaceDetection(
                    model_selection=self._model, min_detection_confidence=self._min_confidence
                )
            log.info("loaded MediaPipe face detector")
        return self._detector

    def faces(self, rgb: NDArray[np.uint8]) -> list[float]:
        """Return each face's share of the image area (0..1), largest first."""
        small = fit_within(rgb, DETECT_SIDE)
        with self._lock, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            result = self._load().process(np.ascontiguousarray(small))
        shares = []
        for detection in result.detections or ():
            box = detection.location_data.relative_bounding_box
            w = min(max(box.width, 0.0), 1.0)
            h = min(max(box.height, 0.0), 1.0)
            shares.append(w * h)
        return sorted(shares, reverse=True)

    def check(self, image: Image) -> Verdict:
        """Allow, with ``faces`` and ``largest_face`` in the scores."""
        shares = self.faces(image.pixels)
        return Verdict.ok(
            Stage.PHOTO,
            self.name,
            {"faces": float(len(shares)), "largest_face": round(shares[0], 4) if shares else 0.0},
        )

    def close(self) -> None:
        """Release the MediaPipe graph."""
        if self._detector is not None:
            self._detector.close()
            self._detector = None

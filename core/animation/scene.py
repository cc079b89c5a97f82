"""Scene analysis for the procedural animator: subject, faces, sky, water and depth of a photo.

MediaPipe's bundled selfie segmentation and face mesh find people and their landmarks; sky,
water and vegetation come from colour, texture and position, refined by the subject mask; depth
is a coarse ordering (subject in front, sky far away, ground receding with image height). All
masks are computed on a thumbnail (they are blurred anyway) and returned at the photo's size.
"""

from __future__ import annotations

import functools
import logging
import threading
import warnings
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

F32 = NDArray[np.float32]

# NOTE: MediaPipe's selfie model runs at 256x256 whatever it is given, and masks get blurred, so
# analysing a thumbnail this long loses nothing and keeps a 6000 px photo cheap. Faces in group
# shots need more pixels: the face mesh's detector misses faces under ~40 px.
_THUMB_EDGE = 256
_FACE_EDGE = 640
# NOTE: a segmentation covering less than 2% of the photo is noise; more than 85% means the
# subject fills the frame (a close-up, or a cat the person model half-recognises): no layers.
_SUBJECT_MIN, _SUBJECT_MAX = 0.02, 0.85
_mp_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Scene:
    """What the animator knows about a photo, at the photo's size.

    Attributes:
        subject: 0..1 soft mask of the foreground person (zeros when none was found).
        faces: one ``(468, 2)`` array of face-mesh landmarks in pixels per face.
        sky: 0..1 sky mask.
        water: 0..1 water mask.
        vegetation: 0..1 mask of foliage and grass (green, textured).
        depth: 0 (near) .. 1 (far), smooth.
    """

    subject: F32
    faces: tuple[F32, ...]
    sky: F32
    water: F32
    vegetation: F32
    depth: F32

    @property
    def has_subject(self) -> bool:
        """Whether a separable foreground subject was found."""
        return bool(self.subject.max(initial=0.0) > 0.5)


@functools.cache
def _mediapipe() -> tuple[Any, Any] | None:
    """Load selfie segmentation and face mesh from the mediapipe wheel once, or None if absent."""
    try:
        from mediapipe.python.solutions import face_mesh, selfie_segmentation
    except ImportError:
        logger.warning("mediapipe is not installed; the subject is not separated")
        return None
    segmenter = selfie_segmentation.SelfieSegmentation(model_selection=0)
    mesh = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=6, refine_landmarks=False)
    return segmenter, mesh


def _tiles(h: int, w: int) -> list[tuple[int, int, int]]:
    """Square windows ``(y, x, side)`` covering a photo, half-overlapping along its long side.

    MediaPipe squeezes its input into a square, so a wide group shot would shrink every face
    below what its detector finds; squares keep them at their size.
    """
    side = min(h, w)
    # NOTE: photos up to 4:3 are close enough to square to analyse in one go.
    if max(h, w) <= 1.4 * side:
        return [(0, 0, max(h, w))]
    length = max(h, w)
    starts = [*range(0, length - side, side // 2), length - side]
    return [(s, 0, side) if h > w else (0, s, side) for s in starts]


def _same_face(face: F32, faces: list[F32]) -> bool:
    """Whether ``face`` (seen again in an overlapping tile) is already among ``faces``."""
    width = float(np.linalg.norm(face[454] - face[234]))
    return any(float(np.linalg.norm(other[1] - face[1])) < 0.5 * width for other in faces)


def _people(thumb: NDArray[np.uint8], large: NDArray[np.uint8]) -> tuple[F32, list[F32]]:
    """Return the subject mask of ``thumb`` and face landmarks in ``thumb`` pixels."""
    h, w = thumb.shape[:2]
    models = _mediapipe()
    if models is None:
        return np.zeros((h, w), np.float32), []
    segmenter, mesh = models
    lh, lw = large.shape[:2]
    mask = np.zeros((lh, lw), np.float32)
    faces: list[F32] = []
    # The graphs are not thread-safe; jobs in one process take turns (a few ms each).
    with _mp_lock, warnings.catch_warnings():
        # protobuf 4.25 warns on every face-mesh result; mediapipe 0.10.14 still calls that API.
        warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype")
        for y, x, side in _tiles(lh, lw):
            tile = np.ascontiguousarray(large[y : y + side, x : x + side])
            th, tw = tile.shape[:2]
            part = np.asarray(segmenter.process(tile).segmentation_mask, np.float32)
            np.maximum(mask[y : y + th, x : x + tw], part, out=mask[y : y + th, x : x + tw])
            for found in mesh.process(tile).multi_face_landmarks or []:
                points = [(p.x * tw + x, p.y * th + y) for p in found.landmark]
                face = np.array(points, np.float32) * np.array([w / lw, h / lh], np.float32)
                if not _same_face(face, faces):
                    faces.append(face)
    mask = np.asarray(cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA), np.float32)
    coverage = float((mask > 0.5).mean())
    if coverage > _SUBJECT_MAX or (not faces and coverage < _SUBJECT_MIN):
        mask = np.zeros_like(mask)
    return mask, faces


def _texture(grey: F32) -> F32:
    """Local mean of the absolute Laplacian: high on foliage, buildings and faces."""
    return _f32(cv2.GaussianBlur(np.abs(cv2.Laplacian(grey, cv2.CV_32F)), (0, 0), 2.0))


def _sky_and_water(hsv: NDArray[np.uint8], texture: F32, subject: F32) -> tuple[F32, F32]:
    """Colour, smoothness and position cues for sky (top) and water (below the horizon)."""
    hue, sat, val = (hsv[..., i].astype(np.float32) for i in range(3))
    h = texture.shape[0]
    rows = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    # NOTE: OpenCV hue is 0..180; 90..135 spans cyan to blue skies; bright and unsaturated
    # covers overcast sky, white clouds and black-and-white skies.
    blue = (hue >= 90) & (hue <= 135) & (sat > 35) & (val > 80)
    pale = (val > 170) & (sat < 60)
    # NOTE: a mean |Laplacian| of 12 grey levels is foliage or buildings, not sky.
    smooth = np.clip(1.0 - texture / 12.0, 0.0, 1.0)
    upper = np.clip((0.7 - rows) / 0.3, 0.0, 1.0)
    sky = (blue | pale).astype(np.float32) * smooth * upper * (1.0 - subject)
    # Sky is connected to the top: keep only what a flood from the top rows reaches.
    seeds = (sky > 0.4).astype(np.uint8)
    count, labels = cv2.connectedComponents(seeds)
    top = set(np.unique(labels[: max(1, h // 8)]).tolist()) - {0}
    sky *= np.isin(labels, list(top)).astype(np.float32) if count > 1 else 0.0
    horizon = _horizon(sky)
    lower = np.clip((rows - horizon) / 0.08, 0.0, 1.0)
    # NOTE: water is blue-ish or mirrors the sky; it is calmer than grass (texture < 20).
    calm = np.clip(1.0 - texture / 20.0, 0.0, 1.0)
    watery = ((hue >= 85) & (hue <= 130) & (sat > 25)) | ((val > 150) & (sat < 50))
    water = watery.astype(np.float32) * calm * lower * (1.0 - subject)
    water = _f32(cv2.morphologyEx(water, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8)))
    return sky, water


def _horizon(sky: F32) -> float:
    """Return the horizon height (0 top .. 1 bottom): below the lowest row that is mostly sky."""
    rows = sky.mean(axis=1)
    mostly = np.nonzero(rows > 0.3)[0]
    # NOTE: without sky, assume the horizon at 0.45 of the height (eye level, slight high angle).
    return float(mostly[-1] + 1) / len(rows) if len(mostly) else 0.45


def _depth(sky: F32, subject: F32) -> F32:
    """Coarse depth: ground from 0.3 (bottom) to 0.9 (horizon), sky 1, subject 0.15."""
    h, w = sky.shape
    horizon = _horizon(sky)
    rows = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    ground = 0.3 + 0.6 * np.clip((1.0 - rows) / max(1e-3, 1.0 - horizon), 0.0, 1.0)
    depth = np.broadcast_to(ground, (h, w)).astype(np.float32)
    depth = depth * (1.0 - sky) + sky
    depth = depth * (1.0 - subject) + 0.15 * subject
    return _f32(cv2.GaussianBlur(depth, (0, 0), 0.02 * max(h, w)))


def analyse_scene(photo: NDArray[np.uint8]) -> Scene:
    """Find subject, faces, sky, water, vegetation and depth of an RGB photo.

    Args:
        photo: ``(H, W, 3)`` uint8 RGB at the clip's size.

    Returns:
        The scene with masks at ``(H, W)`` and landmarks in the photo's pixels.
    """
    h, w = photo.shape[:2]
    scale = min(1.0, _THUMB_EDGE / max(h, w))
    size = (max(16, round(w * scale)), max(16, round(h * scale)))
    thumb = np.ascontiguousarray(cv2.resize(photo, size, interpolation=cv2.INTER_AREA), np.uint8)
    face_scale = min(1.0, _FACE_EDGE / max(h, w))
    large = thumb
    if face_scale > scale:
        face_size = (round(w * face_scale), round(h * face_scale))
        large = np.asarray(cv2.resize(photo, face_size, interpolation=cv2.INTER_AREA), np.uint8)
    subject, faces = _people(thumb, np.ascontiguousarray(large, np.uint8))
    hsv = np.asarray(cv2.cvtColor(thumb, cv2.COLOR_RGB2HSV), np.uint8)
    texture = _texture(cv2.cvtColor(thumb, cv2.COLOR_RGB2GRAY).astype(np.float32))
    sky, water = _sky_and_water(hsv, texture, subject)
    green = (hsv[..., 0] >= 30) & (hsv[..., 0] <= 90) & (hsv[..., 1] > 40)
    vegetation = green.astype(np.float32) * np.clip(texture / 8.0, 0.0, 1.0)
    vegetation *= (1.0 - subject) * (1.0 - sky) * (1.0 - water)
    blur = 0.02 * max(size)
    sky, water, vegetation = (
        _f32(cv2.GaussianBlur(m, (0, 0), blur)) for m in (sky, water, vegetation)
    )
    depth = _depth(sky, subject)
    fx, fy = w / size[0], h / size[1]
    return Scene(
        subject=_upsize(subject, h, w),
        faces=tuple((face * np.array([fx, fy], np.float32)).astype(np.float32) for face in faces),
        sky=_upsize(sky, h, w),
        water=_upsize(water, h, w),
        vegetation=_upsize(vegetation, h, w),
        depth=_upsize(depth, h, w),
    )


def _f32(array: Any) -> F32:
    """Return an OpenCV result as a float32 array (the stubs type it loosely)."""
    return np.asarray(array, np.float32)


def _upsize(mask: F32, h: int, w: int) -> F32:
    """Resize a thumbnail mask to the photo's size."""
    return np.asarray(cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR), np.float32)

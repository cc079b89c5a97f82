"""Prompt to motion plan for the procedural animator: nearest described presets, then options.

A free prompt is embedded with the packaged MiniLM and compared with one sentence per preset;
the nearest presets (and any close runner-up) are merged. Explicit options from the clip spec
(motion strength, camera, loop) always win; no prompt gives a subtle "come alive" default.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from core.types import Camera, ClipSpec

logger = logging.getLogger(__name__)

# NOTE: cosine similarities of MiniLM; unrelated prompts score below ~0.25 against every
# preset, and two presets within 0.07 of the best both describe the prompt (measured on the
# prompts in tests/animation/test_plan.py).
_MIN_SIMILARITY = 0.3
_RUNNER_UP = 0.07


@dataclass(frozen=True, slots=True)
class MotionPlan:
    """What moves in a clip and how much; gains are relative to a subtle 1.0.

    Attributes:
        camera: the resolved camera move (never ``AUTO``).
        strength: overall amplitude, ``motion / 2`` times the preset's scale (0 = still).
        loop: whether the clip must loop seamlessly.
        sky: cloud drift gain.
        water: ripple and shimmer gain.
        sway: vegetation and hair sway gain.
        face: smile and blink gain.
        breath: breathing gain.
        light: glow and flicker gain (0 = none).
        parallax: how much subject and background separate under the camera move.
        presets: names of the presets the prompt matched (``("alive",)`` by default).
    """

    camera: Camera
    strength: float
    loop: bool = True
    sky: float = 1.0
    water: float = 1.0
    sway: float = 1.0
    face: float = 1.0
    breath: float = 1.0
    light: float = 0.0
    parallax: float = 1.0
    presets: tuple[str, ...] = ("alive",)


@dataclass(frozen=True, slots=True)
class Preset:
    """A described motion preset: the sentence MiniLM compares prompts with, and its gains."""

    name: str
    description: str
    camera: Camera = Camera.AUTO
    scale: float = 1.0
    gains: tuple[tuple[str, float], ...] = ()


PRESETS: tuple[Preset, ...] = (
    Preset("alive", "make this photo come alive with subtle natural motion", Camera.ZOOM_IN),
    Preset(
        "clouds", "clouds drifting across the sky, a windy sky timelapse", gains=(("sky", 2.0),)
    ),
    Preset(
        "water",
        "waves rolling on the sea, rippling water, a shimmering lake, a flowing river",
        gains=(("water", 2.0),),
    ),
    Preset(
        "wind",
        "wind blowing through the trees, grass and hair swaying in a breeze",
        gains=(("sway", 2.2),),
    ),
    Preset(
        "portrait",
        "the person smiles and blinks and breathes, a friendly face comes to life",
        gains=(("face", 1.8), ("breath", 1.5)),
    ),
    Preset(
        "orbit",
        "cinematic 3D parallax, the camera orbits and circles around the person",
        Camera.ORBIT,
        gains=(("parallax", 1.6),),
    ),
    Preset("zoom_in", "slow zoom in, the camera pushes in closer", Camera.ZOOM_IN),
    Preset("zoom_out", "zoom out, the camera pulls back to reveal the scene", Camera.ZOOM_OUT),
    Preset("pan_left", "the camera pans to the left", Camera.PAN_LEFT),
    Preset("pan_right", "the camera pans to the right", Camera.PAN_RIGHT),
    Preset("pan_up", "the camera tilts up towards the sky", Camera.PAN_UP),
    Preset("pan_down", "the camera tilts down towards the ground", Camera.PAN_DOWN),
    Preset("still", "keep it still and calm, almost no motion", Camera.NONE, scale=0.4),
    Preset(
        "light",
        "glowing lights, flickering candle and fire light, neon signs, sparkles",
        gains=(("light", 1.5),),
    ),
    Preset("dramatic", "dramatic, epic, intense and strong motion", scale=1.5),
)
_DEFAULT = PRESETS[0]


@functools.cache
def _preset_vectors() -> NDArray[np.float32]:
    """Embed every preset description once per process."""
    from core.models import embed_texts

    return embed_texts([p.description for p in PRESETS])


def match_presets(prompt: str) -> list[tuple[Preset, float]]:
    """Return the presets that describe ``prompt``, best first, with their similarities.

    An empty or unrelated prompt matches nothing.
    """
    text = prompt.strip()
    if not text:
        return []
    from core.models import embed_texts

    scores = _preset_vectors() @ embed_texts([text])[0]
    best = float(scores.max())
    if best < _MIN_SIMILARITY:
        return []
    order = np.argsort(-scores)
    return [
        (PRESETS[i], float(scores[i]))
        for i in order
        if scores[i] >= max(_MIN_SIMILARITY, best - _RUNNER_UP)
    ]


def plan_motion(spec: ClipSpec) -> MotionPlan:
    """Turn a clip spec into a motion plan: prompt presets first, explicit options on top.

    Args:
        spec: the clip spec; ``spec.camera`` other than ``AUTO``, ``spec.motion`` and
            ``spec.loop`` override whatever the prompt suggests.

    Returns:
        The plan; ``strength`` is 0 when ``spec.motion`` is 0.
    """
    matched = [p for p, _ in match_presets(spec.prompt)] or [_DEFAULT]
    plan = MotionPlan(camera=Camera.ZOOM_IN, strength=1.0, loop=spec.loop)
    gains: dict[str, float] = {}
    for preset in matched:
        for key, value in preset.gains:
            gains[key] = max(gains.get(key, 1.0), value)
    scale = float(np.prod([p.scale for p in matched]))
    camera = next((p.camera for p in matched if p.camera is not Camera.AUTO), Camera.ZOOM_IN)
    if spec.camera is not Camera.AUTO:
        camera = spec.camera
    strength = max(0.0, min(4.0, float(spec.motion))) / 2.0 * scale
    plan = replace(plan, camera=camera, strength=strength, presets=tuple(p.name for p in matched))
    return replace(plan, **gains)  # type: ignore[arg-type]

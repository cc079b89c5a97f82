"""Plain-data forms of requests and outcomes, for the job table and queues (never pickles)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from core.types import Camera, ChatRef, Clip, ClipSpec, Outcome, Stage, Verdict


def spec_to_dict(spec: ClipSpec) -> dict[str, Any]:
    """Return the spec as JSON-ready data."""
    return asdict(spec)


def spec_from_dict(data: dict[str, Any]) -> ClipSpec:
    """Rebuild a spec."""
    return ClipSpec(**{**data, "camera": Camera(data["camera"])})


def chat_from_dict(data: dict[str, Any] | None) -> ChatRef | None:
    """Rebuild a chat reference."""
    return ChatRef(**data) if data else None


def outcome_to_json(outcome: Outcome) -> str:
    """Serialise an outcome without the clip's bytes (they are stored as a file)."""
    clip = asdict(outcome.clip) if outcome.clip else None
    if clip:
        clip.pop("data")
        clip.pop("poster")
    return json.dumps(
        {
            "verdict": asdict(outcome.verdict),
            "clip": clip,
            "note": outcome.note,
            "timings": dict(outcome.timings),
        }
    )


def outcome_from_json(text: str, clip_data: bytes, poster: bytes = b"") -> Outcome:
    """Rebuild an outcome; ``clip_data`` is the stored clip file (``b""`` when gone)."""
    data = json.loads(text)
    verdict = Verdict(**{**data["verdict"], "stage": Stage(data["verdict"]["stage"])})
    clip = Clip(**data["clip"], data=clip_data, poster=poster) if data["clip"] else None
    return Outcome(verdict, clip, data["note"], data["timings"])

from __future__ import annotations

import pytest

from core.animation.plan import PRESETS, match_presets, plan_motion
from core.types import Camera, ClipSpec


def test_no_prompt_is_the_subtle_default() -> None:
    plan = plan_motion(ClipSpec())

    assert plan.presets == ("alive",)
    assert plan.camera is Camera.ZOOM_IN
    assert plan.strength == 1.0
    assert plan.light == 0.0
    assert match_presets("   ") == []


@pytest.mark.parametrize(
    ("prompt", "preset"),
    [
        ("drifting clouds", "clouds"),
        ("waves on the lake", "water"),
        ("make her smile", "portrait"),
        ("the wind in her hair", "wind"),
        ("zoom out", "zoom_out"),
        ("slow zoom please", "zoom_in"),
        ("pan left across the hills", "pan_left"),
        ("orbit around him", "orbit"),
        ("keep it still", "still"),
        ("candle light flickering", "light"),
        ("epic", "dramatic"),
    ],
)
def test_prompts_find_their_nearest_preset(prompt: str, preset: str) -> None:
    assert match_presets(prompt)[0][0].name == preset


def test_unrelated_prompt_falls_back_to_the_default() -> None:
    assert plan_motion(ClipSpec(prompt="a cat")).presets == ("alive",)


def test_gains_follow_the_prompt() -> None:
    plain = plan_motion(ClipSpec())
    sky = plan_motion(ClipSpec(prompt="drifting clouds"))
    water = plan_motion(ClipSpec(prompt="waves on the lake"))
    still = plan_motion(ClipSpec(prompt="keep it still"))
    both = plan_motion(ClipSpec(prompt="clouds move and she smiles"))

    assert sky.sky > plain.sky
    assert water.water > plain.water
    assert still.strength < plain.strength
    assert still.camera is Camera.NONE
    assert set(both.presets) == {"clouds", "portrait"}
    assert both.sky > plain.sky
    assert both.face > plain.face


def test_explicit_options_override_the_prompt() -> None:
    plan = plan_motion(ClipSpec(prompt="zoom out", camera=Camera.ORBIT, motion=4, loop=False))

    assert plan.camera is Camera.ORBIT
    assert plan.strength == 2.0
    assert not plan.loop
    assert plan_motion(ClipSpec(prompt="epic", motion=0)).strength == 0.0


def test_preset_names_are_unique() -> None:
    names = [p.name for p in PRESETS]
    assert len(names) == len(set(names))

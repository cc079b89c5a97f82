from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers")

import torch

from bots.cli import main as alive
from core import pipeline
from core.animation.diffusers_base import (
    DiffusersAnimator,
    frame_count,
    load_animator,
    pick_bucket,
    retime,
    to_frames,
)
from core.errors import BackendError, BackendUnavailable, JobCancelled
from core.provenance.verify import verify
from core.services import Services
from core.settings import Animation, Diffusers, Settings
from core.types import (
    ClipSpec,
    CredentialState,
    Image,
    JobRequest,
    Photo,
    Progress,
)
from tests.animation.tiny_pipelines import save_tiny
from tests.conftest import jpeg_bytes, scene

pytestmark = [
    # torch's Tensor.__array__ lacks numpy 2's copy keyword; schedulers call np.array(tensor).
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]

KINDS = ["ltx", "ltx-i2v", "svd", "wan"]
SPEC = ClipSpec(seconds=1.0, fps=8, size=128, seed=3)


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every tiny family written once with save_pretrained."""
    root = tmp_path_factory.mktemp("tiny")
    return {kind: save_tiny(kind, root / kind) for kind in KINDS}


def on_cpu(settings: Settings, model: Path, **options: object) -> Settings:
    base: dict[str, object] = {
        "model": str(model),
        "dtype": "fp32",
        "device": "cpu",
        "steps": 2,
        "fps": 8,
        "buckets": ["64x32", "32x64", "32x32"],
        "warm_up": False,
    }
    base.update(options)
    return settings.model_copy(
        update={
            "animation": Animation(backend="diffusers"),
            "diffusers": Diffusers.model_validate(base),
        }
    )


def image(width: int = 96, height: int = 64) -> Image:
    return Image(scene(width, height), "PNG", "image/png", "0" * 64)


@pytest.mark.parametrize("kind", KINDS)
def test_each_family_makes_a_signed_clip_that_names_its_model(
    kind: str, tiny: dict[str, Path], services: Services
) -> None:
    animator = load_animator(on_cpu(services.settings, tiny[kind]))
    assert animator.family.name == kind.split("-")[0]
    assert kind in animator.model
    s = dataclasses.replace(services, animator=animator)
    start = time.perf_counter()
    outcome = pipeline.run(JobRequest(Photo(jpeg_bytes(scene(96, 64))), SPEC), s)
    print(f"{kind}: whole pipeline {time.perf_counter() - start:.2f} s")
    assert outcome.ok, outcome.verdict
    clip = outcome.clip
    assert clip is not None
    assert (clip.width, clip.height, clip.fps, clip.frame_count) == (128, 64, 8, 8)
    report = verify(clip.data, s)
    assert report.credentials.state is CredentialState.TRUSTED
    assert report.ledger is not None
    assert (report.ledger.backend, report.ledger.model) == ("diffusers", animator.model)


def test_ltx_loops_through_a_pinned_last_keyframe(tiny: dict[str, Path], settings: Settings):
    animator = load_animator(on_cpu(settings, tiny["ltx"]))
    plan = animator.plan(image(), SPEC)
    assert (plan.loop, plan.frames, plan.width, plan.height) == ("keyframe", 9, 64, 32)
    frames = animator.animate(image(), SPEC)
    again = animator.animate(image(), SPEC)
    assert frames.array.shape == (8, 64, 128, 3)
    assert frames.array.dtype == np.uint8
    np.testing.assert_array_equal(frames.array, again.array)  # a seed gives the same clip
    other = animator.animate(image(), dataclasses.replace(SPEC, seed=4))
    assert not np.array_equal(frames.array, other.array)


def test_open_clips_and_ping_pong_loops(tiny: dict[str, Path], settings: Settings) -> None:
    i2v = load_animator(on_cpu(settings, tiny["ltx-i2v"]))
    assert i2v.plan(image(), SPEC).loop == "pingpong"
    ltx = load_animator(on_cpu(settings, tiny["ltx"]))
    open_clip = dataclasses.replace(SPEC, loop=False)
    assert ltx.plan(image(), open_clip).loop == "none"
    assert ltx.animate(image(), open_clip).count == SPEC.frame_count
    portrait = ltx.plan(image(64, 96), SPEC)
    assert (portrait.width, portrait.height) == (32, 64)


def test_progress_each_denoising_step_and_cancel_between_steps(
    tiny: dict[str, Path], services: Services
) -> None:
    s = dataclasses.replace(
        services, animator=load_animator(on_cpu(services.settings, tiny["ltx"], steps=3))
    )
    request = JobRequest(Photo(jpeg_bytes(scene(96, 64))), SPEC)
    seen: list[Progress] = []
    assert pipeline.run(request, s, seen.append).ok
    inside = [p.fraction for p in seen if p.step == "animate"]
    assert len(inside) == 1 + 3  # the step's start, then one event per denoising step
    assert inside == sorted(inside)
    assert pipeline.STEP_START["animate"] < inside[-1] < pipeline.STEP_START["moderate_output"]

    steps: list[float] = []

    def cancel_after_first(event: Progress) -> None:
        if event.step == "animate" and event.fraction > pipeline.STEP_START["animate"]:
            steps.append(event.fraction)
            raise JobCancelled("job-1")

    with pytest.raises(JobCancelled):
        pipeline.run(request, s, cancel_after_first)
    assert len(steps) == 1


def test_out_of_memory_retries_once_smaller_then_reports(
    tiny: dict[str, Path], settings: Settings
) -> None:
    animator = load_animator(on_cpu(settings, tiny["ltx"], buckets=["64x64"]))
    sizes: list[int] = []

    def oom_from(limit: int | None):
        """Fail every transformer call with at least ``limit`` tokens (default: the first's)."""

        def hook(module: object, args: tuple[object, ...], kwargs: dict[str, object]) -> None:
            tokens = int(kwargs["hidden_states"].shape[1])  # type: ignore[attr-defined]
            sizes.append(tokens)
            if tokens >= (limit if limit is not None else sizes[0]):
                raise torch.OutOfMemoryError("CUDA out of memory (injected)")

        return animator.pipe.transformer.register_forward_pre_hook(hook, with_kwargs=True)

    handle = oom_from(None)  # the first size fails, the smaller retry fits
    try:
        frames = animator.animate(image(64, 64), SPEC)
    finally:
        handle.remove()
    assert frames.count == SPEC.frame_count
    assert sizes[0] > sizes[-1]

    handle = oom_from(0)
    try:
        with pytest.raises(BackendError, match="out of GPU memory"):
            animator.animate(image(64, 64), SPEC)
    finally:
        handle.remove()


def test_cache_acceleration_runs_on_transformer_families(
    tiny: dict[str, Path], settings: Settings
) -> None:
    for kind in ("ltx", "wan"):
        animator = load_animator(on_cpu(settings, tiny[kind], cache="first_block"))
        assert animator.animate(image(), SPEC).count == SPEC.frame_count
    svd = load_animator(on_cpu(settings, tiny["svd"], cache="first_block"))  # ignored: a UNet
    assert svd.animate(image(), SPEC).count == SPEC.frame_count


def test_warm_up_and_explicit_family(tiny: dict[str, Path], settings: Settings) -> None:
    animator = load_animator(on_cpu(settings, tiny["wan"], family="wan", warm_up=True))
    assert isinstance(animator, DiffusersAnimator)
    assert animator.plan(image(), SPEC).frames == 5  # ping-pong: half of 8, as 4k+1


def test_missing_model_and_impossible_offload(tmp_path: Path, tiny: dict[str, Path], settings):
    with pytest.raises(BackendUnavailable):
        load_animator(on_cpu(settings, tmp_path / "nothing"))
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="cpu_offload"):
        load_animator(on_cpu(settings, tiny["ltx"], cpu_offload="model"))


def test_alive_animate_with_the_diffusers_backend(
    tiny: dict[str, Path], settings: Settings, dev_keys: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("ALIVE_DATA_DIR", str(settings.data_dir))
    for key, value in {
        "DTYPE": "fp32",
        "DEVICE": "cpu",
        "STEPS": "2",
        "FPS": "8",
        "BUCKETS": '["64x32"]',
        "WARM_UP": "false",
    }.items():
        monkeypatch.setenv(f"ALIVE_DIFFUSERS__{key}", value)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(jpeg_bytes(scene(96, 64)))
    out = tmp_path / "clip.mp4"
    argv = [
        "animate", str(photo), "-o", str(out), "--seconds", "1", "--size", "128",
        "--backend", "diffusers", "--model", str(tiny["svd"]),
    ]  # fmt: skip
    assert alive(argv) == 0
    assert out.stat().st_size > 0
    assert alive([*argv[:-4], "--backend", "procedural", "--model", str(tiny["svd"])]) == 2


def test_frame_and_size_rules() -> None:
    assert frame_count(3.0, 24, "keyframe", 8) == 73  # 72 frames + the pinned one: 8 * 9 + 1
    assert frame_count(3.0, 24, "none", 8) == 73
    assert frame_count(3.0, 16, "pingpong", 4) == 25
    assert frame_count(1.0, 7, "none", 1) == 7
    assert frame_count(1.0, 7, "none", 8, fixed=25) == 25
    assert pick_bucket([(768, 512), (512, 768), (640, 640)], 4000, 3000) == (768, 512)
    assert pick_bucket([(768, 512), (512, 768), (640, 640)], 1000, 1100) == (640, 640)
    assert retime(4, 8, loop=True).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert retime(5, 3, loop=False).tolist() == [0, 2, 4]


def test_frames_are_even_uint8_at_the_clip_rate() -> None:
    video = np.linspace(0, 1, 5 * 30 * 45 * 3, dtype=np.float32).reshape(5, 30, 45, 3)
    frames = to_frames(video, ClipSpec(seconds=1.0, fps=12, size=100), "pingpong")
    assert (frames.count, frames.height, frames.width, frames.fps) == (12, 66, 100, 12)
    assert frames.array.dtype == np.uint8
    np.testing.assert_array_equal(frames.array[0], frames.array[0])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize(("dtype", "offload"), [("bf16", "none"), ("fp16", "model")])
def test_tiny_ltx_on_cuda(tiny: dict[str, Path], settings: Settings, dtype: str, offload: str):
    animator = load_animator(
        on_cpu(settings, tiny["ltx"], dtype=dtype, device="cuda", cpu_offload=offload)
    )
    torch.cuda.reset_peak_memory_stats()
    frames = animator.animate(image(), SPEC)
    assert frames.count == SPEC.frame_count
    assert torch.cuda.max_memory_allocated() > 0

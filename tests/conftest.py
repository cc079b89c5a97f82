"""Shared fixtures: isolated settings, a development signing identity, photos made in code."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import numpy as np
import pytest
from PIL import Image as PILImage

from core.settings import CONFIG_DIR, Settings, load_settings
from tests.redis_server import redis_server, redis_url  # noqa: F401  (fixtures, marker redis)

# Fuzz tests draw the same examples on every run, so a failure is reproducible and CI is stable;
# run with HYPOTHESIS_PROFILE=explore to search new inputs.
hypothesis.settings.register_profile("repeatable", derandomize=True, database=None)
hypothesis.settings.register_profile("explore", derandomize=False)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings from config/test.toml with a private data dir, ignoring the caller's ALIVE_*."""
    for name in list(os.environ):
        if name.startswith("ALIVE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ALIVE_CONFIG", str(CONFIG_DIR / "test.toml"))
    return load_settings(data_dir=tmp_path / "data")


@pytest.fixture
def dev_keys(settings: Settings) -> Path:
    """A development signing identity under the settings' data dir."""
    from core.provenance.keys import init_dev_identity

    keys_dir = settings.data_dir / "keys"
    init_dev_identity(keys_dir)
    return keys_dir


@pytest.fixture
def services(settings: Settings, dev_keys: Path) -> Iterator[object]:
    """The real production services on the test settings."""
    from core.services import build_services

    built = build_services(settings)
    yield built
    built.close()


def scene(width: int = 320, height: int = 240, seed: int = 0) -> np.ndarray:
    """A natural-looking test photo: sky gradient, textured ground, a round subject."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.zeros((height, width, 3), np.float32)
    sky = y < height * 0.5
    img[sky] = np.stack([120 + 60 * y / height, 170 + 40 * y / height, 235 + 0 * y], -1)[sky]
    ground = ~sky
    img[ground] = np.stack([70 + 30 * np.sin(x / 7), 120 + 20 * np.cos(y / 5), 60 + 0 * x], -1)[
        ground
    ]
    subject = (x - width / 2) ** 2 + (y - height * 0.55) ** 2 < (min(width, height) * 0.18) ** 2
    img[subject] = [200, 150, 120]
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def jpeg_bytes(pixels: np.ndarray, quality: int = 90) -> bytes:
    """Encode pixels as a JPEG."""
    out = io.BytesIO()
    PILImage.fromarray(pixels).save(out, format="JPEG", quality=quality)
    return out.getvalue()


@pytest.fixture
def photo_jpeg() -> bytes:
    """A 320x240 JPEG of the test scene."""
    return jpeg_bytes(scene())

"""Time verify on a ~5 MB clip of ours: credentials intact, and stripped (the fallback path).

Run: ``.venv/bin/python bench/verify.py``. The clip is 1024x768, 4 s at 24 fps, labelled,
watermarked and fingerprinted like a real one, encoded at high quality to reach about 5 MB,
signed and recorded in a fresh ledger. "Stripped" is the same clip remuxed without its
manifest, so verify must decode it, read the watermark and look up the fingerprint.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.photos import landscape
from core.encode import H264Encoder
from core.provenance.keys import init_dev_identity
from core.provenance.verify import verify
from core.services import Services, build_services
from core.settings import load_settings
from core.testing import remux
from core.types import Claim, Frames, LedgerEntry, Photo

RUNS = 7


def _clip(s: Services) -> bytes:
    """A ~5 MB signed clip, recorded in the ledger like the pipeline records one."""
    photo = landscape(1024, 768)
    image = s.decode(Photo(photo), s.settings.limits)
    rng = np.random.default_rng(0)
    base = image.pixels.astype(np.int16)
    frames = np.stack(
        [
            np.clip(np.roll(base, i * 3, axis=1) + rng.integers(-6, 7, base.shape), 0, 255)
            for i in range(96)
        ]
    ).astype(np.uint8)
    clip = Frames(frames, fps=24)
    ledger_id = s.ledger.new_id()
    for step in s.frame_steps:
        clip = step.apply(clip, ledger_id)
    video = H264Encoder(crf=18, max_bitrate_kbps=20_000).encode(clip)
    claim = Claim(
        ledger_id, "clip.mp4", s.software, "procedural", "procedural-1", photo, "image/jpeg"
    )
    signed, label = s.signer.sign(video, claim)
    s.ledger.record(
        LedgerEntry(
            ledger_id,
            time.time(),
            "",
            "",
            "procedural",
            "procedural-1",
            s.fingerprinter.fingerprint(clip),
            label,
            "",
        )
    )
    return signed


def _time(data: bytes, s: Services) -> tuple[float, str]:
    times, kind = [], ""
    for _ in range(RUNS):
        start = time.perf_counter()
        report = verify(data, s)
        times.append(time.perf_counter() - start)
        kind = report.verdict.kind.value
    return statistics.median(times) * 1000, kind


def main() -> None:
    os.environ.pop("ALIVE_CONFIG", None)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp))
        init_dev_identity(Path(tmp) / "keys")
        s = build_services(settings)
        try:
            signed = _clip(s)
            print("case | bytes | median ms | verdict")
            for name, data in (("intact", signed), ("stripped", remux(signed))):
                ms, kind = _time(data, s)
                print(f"{name} | {len(data):,} | {ms:.0f} | {kind}", flush=True)
        finally:
            s.close()


if __name__ == "__main__":
    main()

"""Time every pipeline step for a 512x512 and a 1024x768 photo, 3 s at 24 fps.

Run: ``.venv/bin/python bench/pipeline.py`` (or ``alive bench``); ``--quick`` for a smoke run.
Models are loaded before timing; each figure is the median of the timed runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.photos import landscape
from core import pipeline
from core.provenance.keys import init_dev_identity
from core.services import build_services
from core.settings import load_settings
from core.types import ClipSpec, JobRequest, Photo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1 run, 1 s clips (smoke test)")
    args = parser.parse_args()
    runs, seconds = (1, 1.0) if args.quick else (args.runs, 3.0)
    sizes = [(512, 512), (1024, 768)]
    os.environ.pop("ALIVE_CONFIG", None)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp))
        init_dev_identity(Path(tmp) / "keys")
        start = time.perf_counter()
        services = build_services(settings)
        load_s = time.perf_counter() - start
        columns = {}
        for width, height in sizes:
            request = JobRequest(
                Photo(landscape(width, height)),
                ClipSpec(seconds=seconds, fps=24, size=max(width, height)),
            )
            pipeline.run(request, services)  # warm-up
            timings = [pipeline.run(request, services).timings for _ in range(runs)]
            columns[f"{width}x{height}"] = {
                step: statistics.median(t[step] for t in timings) for step in timings[0]
            }
        services.close()
    print(
        f"alive pipeline, {seconds:g} s at 24 fps, median of {runs} run(s); "
        f"{os.cpu_count()} CPU cores; services loaded in {load_s:.2f} s\n"
    )
    header = f"{'step':<18}" + "".join(f"{name:>14}" for name in columns)
    print(header)
    print("-" * len(header))
    steps = list(next(iter(columns.values())))
    for step in steps:
        print(f"{step:<18}" + "".join(f"{col[step]:>13.3f}s" for col in columns.values()))
    print("-" * len(header))
    print(f"{'total':<18}" + "".join(f"{sum(col.values()):>13.3f}s" for col in columns.values()))


if __name__ == "__main__":
    main()

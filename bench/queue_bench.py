"""Queue benchmark: enqueue -> start overhead, and throughput with 1 and 2 workers (procedural).

Starts its own redis-server on a free loopback port and ``alive worker`` processes on the test
settings (small clips), then prints a table.
Usage: ``.venv/bin/python bench/queue_bench.py [--jobs N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from arq.jobs import Job  # noqa: E402

from core.clips import ClipStore  # noqa: E402
from core.jobs import ArqRunner  # noqa: E402
from core.settings import CONFIG_DIR, load_settings  # noqa: E402
from core.types import ClipSpec, JobRequest, Photo  # noqa: E402
from tests.conftest import jpeg_bytes, scene  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(directory: Path, port: int) -> subprocess.Popen[bytes]:
    server = shutil.which("redis-server")
    if server is None:
        sys.exit("redis-server is not installed")
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "yes", "--appendfsync", "always", "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(0.3)
    return proc


def start_workers(n: int, env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            [sys.executable, "-m", "bots.cli", "worker"],
            cwd=REPO,
            env=env,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(n)
    ]


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(30)


async def run_jobs(runner: ArqRunner, tag: str, count: int, photo: bytes) -> list[str]:
    spec = ClipSpec(seconds=1.0, fps=12, size=256)
    handles = [
        await runner.submit(JobRequest(Photo(photo), spec, None, f"bench:{tag}:{i}"))
        for i in range(count)
    ]
    await asyncio.gather(*(h.result() for h in handles))
    return [h.id for h in handles]


async def overheads(runner: ArqRunner, photo: bytes, count: int) -> list[float]:
    """One job at a time on an idle worker: seconds from enqueue to the job function starting."""
    waits = []
    for i in range(count):
        (job_id,) = await run_jobs(runner, f"overhead-{i}", 1, photo)
        info = None
        while info is None:  # arq stores its record just after our outcome
            info = await Job(job_id, runner.redis).result_info()
            await asyncio.sleep(0.01)
        waits.append((info.start_time - info.enqueue_time).total_seconds())
    return waits


async def throughput(runner: ArqRunner, photo: bytes, tag: str, count: int) -> float:
    await run_jobs(runner, f"{tag}-warm", 2, photo)  # every worker has loaded its models
    start = time.perf_counter()
    await run_jobs(runner, tag, count, photo)
    return count / (time.perf_counter() - start)


async def main(jobs: int, samples: int) -> None:
    photo = jpeg_bytes(scene())
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        redis = start_redis(Path(tmp), port)
        url = f"redis://127.0.0.1:{port}/0"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALIVE_")}
        env.update(
            ALIVE_CONFIG=str(CONFIG_DIR / "test.toml"),
            ALIVE_DATA_DIR=str(Path(tmp) / "data"),
            ALIVE_REDIS_URL=url,
        )
        os.environ.update(env)
        settings = load_settings()
        from core.provenance.keys import init_dev_identity

        init_dev_identity(settings.data_dir / "keys")
        runner = ArqRunner(settings, ClipStore(settings.data_dir / "clips"))
        await runner.start()
        rates: dict[int, float] = {}
        try:
            for n in (1, 2):
                workers = start_workers(n, env)
                try:
                    rates[n] = await throughput(runner, photo, f"w{n}", jobs)
                    if n == 1:
                        waits = await overheads(runner, photo, samples)
                finally:
                    stop(workers)
        finally:
            await runner.close()
            redis.kill()
    ms = sorted(w * 1000 for w in waits)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    print(f"cores: {os.cpu_count()}  poll_delay_s: {settings.queue.poll_delay_s}")
    print(f"clip: 1 s, 12 fps, 256 px (config/test.toml); {jobs} jobs per throughput run")
    print()
    print("| measure                      | value        |")
    print("|------------------------------|--------------|")
    print(f"| enqueue -> start p50 (n={samples:<3}) | {statistics.median(ms):8.1f} ms  |")
    print(f"| enqueue -> start p99          | {p99:8.1f} ms  |")
    print(f"| throughput, 1 worker         | {rates[1]:8.2f} j/s |")
    print(f"| throughput, 2 workers        | {rates[2]:8.2f} j/s |")
    print(f"| scaling ratio (2 vs 1)       | {rates[2] / rates[1]:8.2f}     |")
    print()
    print("goal: ratio >= 0.9 x workers, as far as the cores allow")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(main(args.jobs, args.samples))

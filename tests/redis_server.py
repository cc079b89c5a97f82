"""A real redis-server on a free loopback port, with AOF on, that a test can kill and restart."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REDIS_SERVER = shutil.which("redis-server")
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One redis-server process; its data (the AOF) survives ``kill`` + ``start``."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        """kill -9: nothing is flushed beyond what AOF (fsync always) already wrote."""
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def flush(self) -> None:
        import redis

        client = redis.Redis.from_url(self.url)
        client.flushall()
        client.close()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server for this test module (skipped when Debian's redis-server is missing)."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.kill()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of an empty Redis (flushed before the test)."""
    if redis_server.proc is None:
        redis_server.start()
    redis_server.flush()
    return redis_server.url


class WorkerProcesses:
    """`alive worker` processes for a test: started on demand, stopped with their logs shown."""

    def __init__(self, data_dir: Path, redis_url: str, lease_s: float, log_dir: Path) -> None:
        import os

        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ALIVE_")}
        self.env.update(
            ALIVE_CONFIG=str(REPO / "config" / "test.toml"),
            ALIVE_DATA_DIR=str(data_dir),
            ALIVE_REDIS_URL=redis_url,
            ALIVE_QUEUE__LEASE_S=str(lease_s),
        )
        self.log_dir = log_dir
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        """Start one more worker process."""
        with open(self.log_dir / f"worker-{len(self.started)}.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bots.cli", "worker"], cwd=REPO, env=self.env, stderr=log
            )
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        """Stop every worker still running and print their logs (shown when a test fails)."""
        for proc in self.started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
        for log in sorted(self.log_dir.glob("worker-*.log")):
            print(log.name, log.read_text(errors="replace")[-3000:])

"""The deployment files parse and say what distributed mode needs (no Docker engine runs here)."""

from __future__ import annotations

import re

import yaml

from tests.conftest import REPO

CONTRACT = {  # DESIGN.md section 3: the environment every process understands
    "ALIVE_TELEGRAM_TOKEN", "ALIVE_TELEGRAM_API_URL", "ALIVE_DISCORD_TOKEN",
    "ALIVE_DISCORD_API_URL", "ALIVE_REDIS_URL", "ALIVE_DATA_DIR", "ALIVE_WEB_HOST",
    "ALIVE_WEB_PORT", "ALIVE_SIGNING_CERT", "ALIVE_SIGNING_KEY", "ALIVE_TRUST_ANCHORS",
}  # fmt: skip


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_one_process_per_service_from_one_image() -> None:
    services = compose()["services"]
    assert set(services) == {"redis", "worker", "telegram", "discord", "web"}
    alive = [s for name, s in services.items() if name != "redis"]
    assert {s["build"] for s in alive} == {"."}
    assert services["worker"]["command"] == ["alive", "worker"]
    for name in ("telegram", "discord", "web"):
        assert services[name]["command"] == ["alive", "serve"]  # never --with-worker
        assert services[name]["environment"]["ALIVE_REDIS_URL"] == "redis://redis:6379/0"
    assert "ALIVE_TELEGRAM_TOKEN" in services["telegram"]["environment"]
    assert "ALIVE_TELEGRAM_TOKEN" not in services["discord"]["environment"]
    assert (REPO / "Dockerfile").read_text().count("FROM ") == 1


def test_redis_keeps_what_it_accepted() -> None:
    spec = compose()
    redis = spec["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "--appendfsync always" in command
    assert "redis-data:/data" in redis["volumes"]
    assert {"redis-data", "alive-data", "model-cache"} <= set(spec["volumes"])


def test_worker_reserves_a_gpu_and_caches_models() -> None:
    worker = compose()["services"]["worker"]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"]
    assert device["count"] == 1
    assert any(v.startswith("model-cache:") for v in worker["volumes"])


def test_environment_names_follow_the_contract() -> None:
    example = (REPO / ".env.example").read_text()
    names = set(re.findall(r"^(ALIVE_[A-Z_]+)=", example, re.M))
    assert names == CONTRACT
    used = set(re.findall(r"\b(ALIVE_[A-Z_]+)\b", (REPO / "docker-compose.yml").read_text()))
    assert used <= CONTRACT

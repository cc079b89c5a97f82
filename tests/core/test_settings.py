from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import CONFIG_DIR, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("ALIVE_"):
            monkeypatch.delenv(name)


def test_defaults_come_from_default_toml() -> None:
    settings = load_settings()
    assert settings.web_port == 8080
    assert settings.data_dir == Path("./data")
    assert settings.embedded
    assert settings.telegram_api_url == "https://api.telegram.org"


def test_documented_environment_variables_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIVE_WEB_PORT", "9123")
    monkeypatch.setenv("ALIVE_DATA_DIR", "/tmp/x")
    monkeypatch.setenv("ALIVE_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("ALIVE_DISCORD_API_URL", "http://127.0.0.1:9/api/v10")
    monkeypatch.setenv("ALIVE_LIMITS__MAX_BYTES", "1000")
    settings = load_settings()
    assert settings.web_port == 9123
    assert settings.data_dir == Path("/tmp/x")
    assert not settings.embedded
    assert settings.discord_api_url == "http://127.0.0.1:9/api/v10"
    assert settings.limits.max_bytes == 1000
    assert settings.limits.max_pixels == 40_000_000  # the rest of the section is kept


def test_extra_toml_layers_over_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIVE_CONFIG", str(CONFIG_DIR / "test.toml"))
    settings = load_settings()
    assert settings.clip.size == 256
    assert settings.clip.max_size == 1024


def test_tokens_never_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIVE_TELEGRAM_TOKEN", "123456:SECRET-TOKEN-VALUE")
    settings = load_settings()
    assert "SECRET-TOKEN-VALUE" not in repr(settings)
    assert "SECRET-TOKEN-VALUE" not in str(settings)
    assert settings.telegram_token is not None
    assert settings.telegram_token.get_secret_value() == "123456:SECRET-TOKEN-VALUE"


def test_invalid_value_names_the_setting_not_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIVE_WEB_PORT", "SECRET-NOT-A-PORT")
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert "web_port" in str(error.value)
    assert "SECRET-NOT-A-PORT" not in str(error.value)


def test_missing_extra_config_fails_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIVE_CONFIG", "/nonexistent/alive.toml")
    with pytest.raises(ConfigError, match="ALIVE_CONFIG"):
        load_settings()


def test_unknown_setting_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = tmp_path / "extra.toml"
    extra.write_text("[limits]\nmax_bytez = 5\n")
    monkeypatch.setenv("ALIVE_CONFIG", str(extra))
    with pytest.raises(ConfigError, match="max_bytez"):
        load_settings()

"""Settings: defaults from config/default.toml, an extra TOML file, then the environment.

``config/default.toml`` is overridden by an optional extra TOML file (``ALIVE_CONFIG``), which is
overridden by ``ALIVE_*`` environment variables. Only entry points call
:func:`load_settings`; the result is passed down as an argument.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from core.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
DEFAULT_CONFIG = CONFIG_DIR / "default.toml"


class _Section(BaseModel):
    """A settings section: a misspelt key fails at start-up instead of being ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Limits(_Section):
    """Decoding limits applied before anything else touches a photo."""

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_side: int = 12_000
    min_side: int = 32
    decode_timeout_s: float = 10.0


class ClipDefaults(_Section):
    """What a clip looks like when the request does not say, and the most it may ask for."""

    seconds: float = 3.0
    max_seconds: float = 6.0
    fps: int = 24
    size: int = 512
    max_size: int = 1024
    motion: int = 2


class Animation(_Section):
    """Which animator backend runs."""

    backend: Literal["procedural", "diffusers"] = "procedural"


class Diffusers(_Section):
    """The GPU animator: an image-to-video diffusers pipeline, loaded once per worker process.

    Zero (or an empty list) means "the model family's default" for ``steps``, ``guidance``,
    ``frames``, ``fps`` and ``buckets``.
    """

    model: str = "Lightricks/LTX-Video-0.9.7-distilled"
    family: Literal["auto", "ltx", "svd", "wan"] = "auto"
    local_files_only: bool = True
    dtype: Literal["bf16", "fp16", "fp32"] = "bf16"
    device: str = "cuda"
    cpu_offload: Literal["none", "model", "sequential"] = "none"
    vae_tiling: bool = False
    steps: int = Field(default=0, ge=0)
    guidance: float = Field(default=0.0, ge=0.0)
    frames: int = Field(default=0, ge=0)
    fps: int = Field(default=0, ge=0)
    buckets: list[Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]*x[1-9][0-9]*$")]] = []
    compile: bool = False
    cache: Literal["none", "first_block"] = "none"
    warm_up: bool = True


class Encode(_Section):
    """H.264 encoding parameters."""

    crf: int = 23
    preset: str = "veryfast"
    max_bitrate_kbps: int = 4000
    upload_limit_bytes: int = 10 * 1024 * 1024


class Moderation(_Section):
    """Moderation switches and thresholds (the full policy lives in ``config/policy.toml``)."""

    nsfw_enabled: bool = True
    nsfw_threshold: float = 0.5
    nsfw_classes: list[str] = Field(
        default_factory=lambda: [
            "FEMALE_GENITALIA_EXPOSED",
            "MALE_GENITALIA_EXPOSED",
            "FEMALE_BREAST_EXPOSED",
            "ANUS_EXPOSED",
            "BUTTOCKS_EXPOSED",
        ]
    )
    output_sample_frames: int = 4
    prompt_max_chars: int = 300
    # The moderation policy (classes, thresholds, lexicon, exemplars, hash list); a relative
    # path is relative to the project directory (the parent of config/).
    policy_file: Path = CONFIG_DIR / "policy.toml"

    @property
    def policy_path(self) -> Path:
        """The policy file as an absolute path."""
        path = self.policy_file
        return path if path.is_absolute() else CONFIG_DIR.parent / path


class Provenance(_Section):
    """Content Credentials, watermark and fingerprint settings."""

    claim_generator: str = "alive"
    timestamp_url: str = ""
    watermark_strength: float = 6.0
    watermark_block: int = 8
    fingerprint_max_distance: int = 31
    source_thumbnail: bool = False


class Retention(_Section):
    """How long things are kept."""

    clip_days: int = 30


class Jobs(_Section):
    """The embedded runner."""

    concurrency: int = 1
    threads_per_job: int = 1


class Queue(_Section):
    """Distributed mode (``redis_url`` set): the arq queue and its workers."""

    poll_delay_s: float = 0.02
    lease_s: float = 30.0
    job_timeout_s: float = 600.0
    backend_timeout_s: dict[str, float] = Field(default_factory=dict)
    max_tries: int = 3
    retry_defer_s: float = 5.0
    result_ttl_s: int = 86400


class Web(_Section):
    """The web page's limits."""

    max_upload_bytes: int = 20 * 1024 * 1024
    requests_per_minute: int = 10


class Settings(BaseSettings):
    """Every setting, read once per process.

    The top-level names are the documented environment contract (``ALIVE_DATA_DIR`` ...);
    nested ones are reachable as ``ALIVE_SECTION__NAME``.
    """

    model_config = SettingsConfigDict(
        env_prefix="ALIVE_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    data_dir: Path = Path("./data")
    redis_url: str = ""
    web_host: str = "127.0.0.1"
    web_port: int = 8080
    telegram_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    discord_token: SecretStr | None = None
    discord_api_url: str = "https://discord.com/api/v10"
    signing_cert: Path | None = None
    signing_key: Path | None = None
    trust_anchors: Path | None = None

    limits: Limits = Limits()
    clip: ClipDefaults = ClipDefaults()
    animation: Animation = Animation()
    diffusers: Diffusers = Diffusers()
    encode: Encode = Encode()
    moderation: Moderation = Moderation()
    provenance: Provenance = Provenance()
    retention: Retention = Retention()
    jobs: Jobs = Jobs()
    queue: Queue = Queue()
    web: Web = Web()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Order: explicit arguments, environment, extra TOML, default TOML."""
        files = [DEFAULT_CONFIG]
        extra = os.environ.get("ALIVE_CONFIG")
        if extra:
            files.append(Path(extra))
        toml = TomlConfigSettingsSource(settings_cls, toml_file=files, deep_merge=True)
        return (init_settings, env_settings, toml)

    @property
    def embedded(self) -> bool:
        """Whether jobs and state stay in this process (no Redis configured)."""
        return not self.redis_url


def load_settings(**overrides: object) -> Settings:
    """Build the settings for an entry point; raise ``ConfigError`` naming the bad value."""
    extra = os.environ.get("ALIVE_CONFIG")
    if extra and not Path(extra).is_file():
        raise ConfigError(f"ALIVE_CONFIG points to {extra!r}, which is not a file")
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        # Name the setting and the problem, never the value: it may be a token.
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
        )
        raise ConfigError(f"invalid settings: {problems}") from None
    except ValueError as exc:  # a malformed TOML file
        raise ConfigError(f"invalid settings file: {exc}") from None

"""Configuration: one TOML file of provider instances, overridable by environment variables.

    # crm-gateway.toml
    max_page_size = 100

    [[providers]]
    name = "revyops-prod"
    kind = "revyops"
    base_url = "https://api.revyops.com"
    credentials_env = { client_id = "REVYOPS_CLIENT_ID" }

Secrets stay out of the file: `credentials_env` names the environment
variables that hold them (`credentials` takes literal values, for demos and
tests). Top-level keys can be overridden as `CRM_GATEWAY_<KEY>`. A bad file
fails at start-up with a message naming the key.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ProviderKind = Literal["revyops", "attio", "haste", "redivis", "basicsos"]

_config_file: ContextVar[Path | None] = ContextVar("config_file", default=None)


class ConfigError(Exception):
    """The configuration cannot be used; the message names the offending key."""


class ProviderSettings(BaseModel):
    """One configured provider instance."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    kind: ProviderKind
    base_url: str = Field(pattern=r"^https?://[^\s/]+(/\S*)?$")
    credentials: dict[str, SecretStr] = Field(default_factory=dict)
    credentials_env: dict[str, str] = Field(default_factory=dict)
    options: dict[str, str] = Field(
        default_factory=dict,
        description="Kind-specific settings that are not secrets (Redivis: `dataset`).",
    )
    connect_timeout: float = Field(5.0, gt=0, le=120)
    read_timeout: float = Field(15.0, gt=0, le=600)
    max_connections: int = Field(20, ge=1, le=1000)
    max_request_size: int | None = Field(
        None, ge=1, le=1000, description="Largest page asked of the API; the kind's default."
    )
    rate_limit: bool = Field(True, description="Keep under the provider's documented limits.")
    rate_limits: list[tuple[int, float]] | None = Field(
        None, description="[requests, seconds] windows replacing the kind's documented ones."
    )
    max_retries: int = Field(2, ge=0, le=10, description="Retries of an idempotent request.")
    request_deadline: float = Field(
        30.0, gt=0, le=600, description="Seconds one upstream call may take, retries included."
    )
    breaker_threshold: int = Field(5, ge=1, le=1000, description="Failures in a row that open it.")
    breaker_cooldown: float = Field(10.0, gt=0, le=3600, description="Seconds before a probe.")
    cache_ttl: float = Field(30.0, gt=0, le=86_400, description="Seconds a read stays cached.")
    cache_size: int = Field(5000, ge=1, le=1_000_000, description="Cached reads kept at most.")
    max_concurrency: int = Field(
        8, ge=1, le=100, description="Concurrent single-record fetches when ids cannot batch."
    )
    max_pages_per_read: int = Field(
        50,
        ge=1,
        le=10_000,
        description="Pages one read of a whole list (a parent's children, a batch of ids) "
        "may take; a longer list fails with UPSTREAM_BAD_RESPONSE instead of reading on.",
    )

    def resolved_credentials(self) -> dict[str, str]:
        """Literal credentials plus those read from the environment."""
        values = {k: v.get_secret_value() for k, v in self.credentials.items()}
        for key, variable in self.credentials_env.items():
            value = os.environ.get(variable)
            if not value:
                raise ConfigError(
                    f"providers.{self.name}.credentials_env.{key}: environment variable "
                    f"{variable} is not set"
                )
            values[key] = value
        return values


class Settings(BaseSettings):
    """Everything the gateway needs to start."""

    model_config = SettingsConfigDict(
        env_prefix="CRM_GATEWAY_", env_nested_delimiter="__", extra="forbid"
    )

    providers: list[ProviderSettings] = Field(default_factory=list)
    default_page_size: int = Field(20, ge=1, le=1000)
    batching: bool = Field(True, description="Batch lookups with dataloaders (off: naive mode).")
    cache: bool = Field(True, description="Cache upstream reads across requests.")
    max_page_size: int = Field(100, ge=1, le=1000)
    cursor_secret: SecretStr | None = Field(
        None,
        description="Signs cursors; replicas must share it. Random per process when unset.",
    )
    graphiql: bool = True
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _check(self) -> Settings:
        names = [p.name for p in self.providers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"provider names must be unique; repeated: {', '.join(duplicates)}")
        if self.default_page_size > self.max_page_size:
            raise ValueError("default_page_size must not exceed max_page_size")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = _config_file.get()
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        if path is not None:
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=path),)
        return sources


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        where = re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", where)
        lines.append(f"{where}: {item['msg']}")
    return "; ".join(lines)


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Settings from `path` (TOML) and the environment; ConfigError names what is wrong."""
    if path is not None and not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    token = _config_file.set(path)
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise ConfigError(f"invalid configuration: {_describe(error)}") from None
    except ValueError as error:  # TOML syntax errors
        raise ConfigError(f"invalid configuration file {path}: {error}") from None
    finally:
        _config_file.reset(token)

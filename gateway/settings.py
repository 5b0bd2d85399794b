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

# Secrets copied from examples; a cursor signed with one of them can be forged by anyone.
PLACEHOLDER_SECRETS = frozenset(
    {
        "change-me-in-production",
        "changeme-in-production",
        "change_me_in_production",
        "replace-me-in-production",
        "your-secret-here",
        "insecure-cursor-secret",
    }
)
# Shorter ones ("", "secret", "change-me", ...) are caught by the length.
MIN_SECRET_LENGTH = 16

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
    remote_data: bool = Field(
        False,
        description="Serve `remoteData`, the provider's raw record (internal ids and all); "
        "off: the field is null.",
    )
    connect_timeout: float = Field(5.0, gt=0, le=120)
    read_timeout: float = Field(15.0, gt=0, le=600)
    max_connections: int = Field(20, ge=1, le=1000)
    max_request_size: int | None = Field(
        None, ge=1, le=1000, description="Largest page asked of the API; the kind's default."
    )
    block_size: int | None = Field(
        None,
        ge=1,
        le=1000,
        description="Records per block a list is read and cached in (at most "
        "`max_request_size`); the kind's default: the API's largest page, at most 100.",
    )
    rate_limit: bool = Field(True, description="Keep under the provider's documented limits.")
    rate_limits: list[tuple[int, float]] | None = Field(
        None, description="[requests, seconds] windows replacing the kind's documented ones."
    )
    max_retries: int = Field(2, ge=0, le=10, description="Retries of an idempotent request.")
    request_deadline: float = Field(
        30.0, gt=0, le=600, description="Seconds one upstream call may take, retries included."
    )
    breaker_failure_ratio: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Share of failed requests (5xx, timeouts, unreachable) in `breaker_window` "
        "that opens the circuit breaker; 4xx and 429 answers count neither way.",
    )
    breaker_min_requests: int = Field(
        10, ge=1, le=10_000, description="Requests in `breaker_window` before the ratio counts."
    )
    breaker_window: float = Field(
        30.0, gt=0, le=3600, description="Seconds of recent requests the breaker looks at."
    )
    breaker_cooldown: float = Field(
        10.0, gt=0, le=3600, description="Seconds an open breaker waits before one probe."
    )
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
    blocks: bool = Field(
        True,
        description="Read lists in aligned blocks cached as records (off: each window is "
        "fetched with the exact page that fits it).",
    )
    max_page_size: int = Field(100, ge=1, le=1000)
    # Bounds of what a client may send, arguments and variables alike (5,000 tokens only
    # bound the document: one variable could otherwise carry 20,000 values).
    max_list_length: int = Field(
        100, ge=1, le=100_000, description="Most items in one input list or JSON object."
    )
    max_string_length: int = Field(
        1024, ge=1, le=10_000_000, description="Most characters in one input string."
    )
    max_input_depth: int = Field(
        10, ge=2, le=100, description="Deepest nesting of lists and objects in one argument."
    )
    max_input_values: int = Field(
        5000, ge=1, le=1_000_000, description="Most input values (items, fields) per operation."
    )
    max_bulk_operations: int = Field(
        100, ge=1, le=10_000, description="Most items of one bulk write (hasteCRM: 100 a call)."
    )
    max_merge_contacts: int = Field(
        10, ge=1, le=1000, description="Most contacts one mergeContacts folds into the winner."
    )
    operation_deadline: float = Field(
        30.0,
        gt=0,
        le=600,
        description="Seconds an operation may take; unfinished fields then fail UPSTREAM_TIMEOUT.",
    )
    cursor_secret: SecretStr | None = Field(
        None,
        description="Signs cursors; replicas must share it. Random per process when unset; "
        "a placeholder or anything shorter than 16 characters is refused.",
    )
    graphiql: bool = Field(False, description="Serve GraphiQL at GET /graphql.")
    log_level: str = "INFO"
    max_request_size: int = Field(
        1_048_576,
        ge=1024,
        le=1_073_741_824,
        description="Largest HTTP request body /graphql accepts, in bytes (413 above). "
        "Not the providers' `max_request_size`, which is a page size.",
    )
    introspection: bool = Field(False, description="Answer introspection (`__schema`, `__type`).")
    field_suggestions: bool = Field(
        False, description='Keep "Did you mean ..." guesses in validation errors.'
    )
    openapi: bool = Field(False, description="Serve /openapi.json, /docs and /redoc.")

    @model_validator(mode="after")
    def _check_secret(self) -> Settings:
        if self.cursor_secret is None:
            return self
        value = self.cursor_secret.get_secret_value()
        if value.strip().lower() in PLACEHOLDER_SECRETS or len(value) < MIN_SECRET_LENGTH:
            raise ValueError(
                "cursor_secret (CRM_GATEWAY_CURSOR_SECRET) is a placeholder or shorter than "
                f"{MIN_SECRET_LENGTH} characters: set a random one, e.g. the output of "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        return self

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

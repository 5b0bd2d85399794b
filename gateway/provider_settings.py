"""One configured provider instance: its API, credentials, limits, caches and retries.

`kind` and the kind-specific parts (`options`, the credentials' names) are checked against
the kind's data source, found through the provider registry (`gateway.providers`).
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gateway.configerrors import describe
from gateway.configsecrets import read_secret_file, read_variable
from gateway.providers import KINDS, provider


class ProviderSettings(BaseModel):
    """One configured provider instance."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    kind: str = Field(description=f"Which API it speaks: {', '.join(KINDS)}.")
    base_url: str = Field(pattern=r"^https?://[^\s/]+(/\S*)?$")
    credentials: dict[str, SecretStr] = Field(default_factory=dict)
    credentials_env: dict[str, str] = Field(default_factory=dict)
    """Credentials read from environment variables (or the files their `_FILE` variables name):
    credential name -> variable."""
    credentials_file: dict[str, str] = Field(default_factory=dict)
    """Credentials read from files, such as Docker's and Kubernetes' secrets: credential name ->
    path (one trailing newline is dropped)."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Kind-specific settings that are not secrets, checked against the kind's own model (Redivis:
    `dataset`; BasicsOS: `token_role`)."""
    remote_data: bool = False
    """Serve `remoteData`, the provider's raw record (internal ids and all); off: the field is
    null."""
    connect_timeout: float = Field(5.0, gt=0, le=120)
    read_timeout: float = Field(15.0, gt=0, le=600)
    max_connections: int = Field(20, ge=1, le=1000)
    max_request_size: int | None = Field(None, ge=1, le=1000)
    """Largest page asked of the API; the kind's default."""
    block_size: int | None = Field(None, ge=1, le=1000)
    """Records per block a list is read and cached in (at most `max_request_size`); the kind's
    default: the API's largest page, at most 100."""
    rate_limit: bool = True
    """Keep under the provider's documented limits."""
    rate_limits: list[tuple[int, float]] | None = None
    """[requests, seconds] windows replacing the kind's documented ones."""
    reserve: float = Field(0.2, ge=0, lt=1)
    """Part of each rate window no one client may take, kept for a client that comes later in
    it (an open gateway's one anonymous client is never held back)."""
    max_retries: int = Field(2, ge=0, le=10)
    """Retries of an idempotent request."""
    request_deadline: float = Field(30.0, gt=0, le=600)
    """Seconds one upstream call may take, retries included."""
    breaker_failure_ratio: float = Field(0.5, gt=0, le=1)
    """Share of failed requests (5xx, timeouts, unreachable) in `breaker_window` that opens the
    circuit breaker; 4xx and 429 answers count neither way."""
    breaker_min_requests: int = Field(10, ge=1, le=10_000)
    """Requests in `breaker_window` before the ratio counts."""
    breaker_window: float = Field(30.0, gt=0, le=3600)
    """Seconds of recent requests the breaker looks at."""
    breaker_cooldown: float = Field(10.0, gt=0, le=3600)
    """Seconds an open breaker waits before one probe."""
    cache_ttl: float = Field(30.0, gt=0, le=86_400)
    """Seconds a read stays cached."""
    stale_ttl: float = Field(600.0, ge=0, le=86_400)
    """Seconds past `cache_ttl` a cached read may still be served, marked in `extensions.stale`,
    when the provider's rate limit leaves no slot or it answers 429; 0: never."""
    cache_size: int = Field(5000, ge=1, le=1_000_000)
    """Cached reads kept at most."""
    cache_max_bytes: int = Field(64 * 2**20, ge=2**16, le=2**40)
    """Bytes this provider's cached reads may take in memory, all together (64 MiB); a single
    read above an eighth of its cache's share is not cached, locally or in Redis."""
    max_concurrency: int = Field(8, ge=1, le=100)
    """Concurrent single-record fetches when ids cannot batch."""
    max_pages_per_read: int = Field(50, ge=1, le=10_000)
    """Pages one read of a whole list (a parent's children, a batch of ids) may take; a longer list
    fails with UPSTREAM_BAD_RESPONSE instead of reading on."""
    webhooks: bool = False
    """Register the gateway's webhook with the provider at start-up (needs the top-level
    `public_url`, and a kind that has webhooks: Attio, hasteCRM); its deliveries evict the
    cache and feed subscriptions."""
    poll_interval: float | None = Field(None, ge=1, le=86_400)
    """Seconds between reads of what changed, for a provider without `webhooks`; unset: no
    polling."""
    poll_share: float = Field(0.1, gt=0, le=1)
    """Most of each of the provider's rate windows the poller may spend."""

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        provider(kind)  # ValueError naming the known kinds
        return kind

    @field_validator("poll_interval")
    @classmethod
    def _poll_or_webhooks(cls, interval: float | None, info: ValidationInfo) -> float | None:
        if interval is not None and info.data.get("webhooks"):
            # Both would spend the budget twice on the same news, and publish it twice.
            raise ValueError(
                f"provider {info.data.get('name')!r} has `webhooks = true`, which already say "
                "what changed: set one or the other"
            )
        return interval

    @field_validator("options")
    @classmethod
    def _check_options(cls, options: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        kind = info.data.get("kind")
        if kind is not None:  # else the kind's own error says what is wrong
            model = provider(kind).source_class().options_model
            try:
                model.model_validate(options)
            except ValidationError as error:
                problems = "; ".join(describe(error, model))
                raise ValueError(f"for kind {kind!r}: {problems}") from None
        return options

    @field_validator("webhooks")
    @classmethod
    def _has_webhooks(cls, webhooks: bool, info: ValidationInfo) -> bool:
        kind = info.data.get("kind")
        if webhooks and kind is not None and provider(kind).source_class().webhooks is None:
            name = info.data.get("name", "?")
            raise ValueError(
                f"provider {name!r}: kind {kind!r} has no webhooks (set `poll_interval` to "
                "read its changes instead)"
            )
        return webhooks

    @field_validator("credentials", "credentials_env", "credentials_file")
    @classmethod
    def _check_credential_names(cls, names: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # Names only: a missing one is reported when the gateway builds, once the
        # environment's values are read (settings without credentials still load).
        kind = info.data.get("kind")
        if kind is None:  # the kind's own error says what is wrong
            return names
        fields = list(provider(kind).source_class().credentials_model.model_fields)
        for name in names:
            if name not in fields:
                close = difflib.get_close_matches(name, fields, n=1)
                hint = f"did you mean `{close[0]}`?" if close else f"it takes {', '.join(fields)}"
                raise ValueError(f"`{name}` is not a credential of kind {kind!r}; {hint}")
        return names

    @model_validator(mode="after")
    def _one_source_each(self) -> ProviderSettings:
        given = [*self.credentials, *self.credentials_env, *self.credentials_file]
        twice = sorted({key for key in given if given.count(key) > 1})
        if twice:
            raise ValueError(
                f"credentials given more than once (in credentials, credentials_env or "
                f"credentials_file): {', '.join(twice)}"
            )
        return self

    def resolved_credentials(self) -> dict[str, str]:
        """Literal credentials plus those read from the environment and from files."""
        values = {k: v.get_secret_value() for k, v in self.credentials.items()}
        for key, variable in self.credentials_env.items():
            where = f"providers.{self.name}.credentials_env.{key}"
            values[key] = read_variable(where, variable)
        for key, path in self.credentials_file.items():
            where = f"providers.{self.name}.credentials_file.{key}"
            values[key] = read_secret_file(where, path)
        return values

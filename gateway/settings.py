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
fails at start-up with one line per problem naming the file, line and key
(`gateway.configerrors`).

The parts have their own modules: a provider instance (`gateway.provider_settings`), the
clients and JWTs let in (`gateway.client_settings`), the HTTP server (`gateway.serving`).
"""

from __future__ import annotations

import logging
import re
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from gateway.client_settings import AuthSettings, ClientSettings, JwtSettings
from gateway.configerrors import ConfigError, describe
from gateway.configsecrets import RANDOM_EXAMPLE, file_variables, inline_secrets, weak_secret
from gateway.provider_settings import ProviderSettings
from gateway.serving import ServerSettings

# The settings and their parts, as the rest of the gateway imports them.
__all__ = [
    "AuthSettings",
    "ClientSettings",
    "ConfigError",
    "JwtSettings",
    "ProviderSettings",
    "Settings",
    "load_settings",
]

# scheme://host[:port] with the port a number or `*`; a browser's Origin has no path.
_ORIGIN = re.compile(r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:(\d{1,5}|\*))?")
# What browser clients add to a GraphQL request: credentials, Apollo's CSRF and client headers,
# Sentry's and W3C's trace context, the caller's request id.
CORS_ALLOW_HEADERS = (
    "Content-Type",
    "Accept",
    "Authorization",
    "X-API-Key",
    "X-Request-Id",
    "apollo-require-preflight",
    "x-apollo-operation-name",
    "apollographql-client-name",
    "apollographql-client-version",
    "traceparent",
    "tracestate",
    "sentry-trace",
    "baggage",
)
# An HTTP token: what a header name may be.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

log = logging.getLogger("gateway.config")

_config_file: ContextVar[Path | None] = ContextVar("config_file", default=None)


class Settings(BaseSettings):
    """Everything the gateway needs to start."""

    model_config = SettingsConfigDict(
        env_prefix="CRM_GATEWAY_",
        env_nested_delimiter="__",
        extra="forbid",
        use_attribute_docstrings=True,
    )

    providers: list[ProviderSettings] = Field(default_factory=list)
    default_page_size: int = Field(20, ge=1, le=1000)
    batching: bool = True
    """Batch lookups with dataloaders (off: naive mode)."""
    cache: bool = True
    """Cache upstream reads across requests."""
    blocks: bool = True
    """Read lists in aligned blocks cached as records (off: each window is fetched with the exact
    page that fits it)."""
    max_page_size: int = Field(100, ge=1, le=1000)
    # Bounds of what a client may send, arguments and variables alike (5,000 tokens only
    # bound the document: one variable could otherwise carry 20,000 values).
    max_list_length: int = Field(100, ge=1, le=100_000)
    """Most items in one input list or JSON object."""
    max_string_length: int = Field(1024, ge=1, le=10_000_000)
    """Most characters in one input string."""
    max_input_depth: int = Field(10, ge=2, le=100)
    """Deepest nesting of lists and objects in one argument."""
    max_input_values: int = Field(5000, ge=1, le=1_000_000)
    """Most input values (items, fields) per operation."""
    max_bulk_operations: int = Field(100, ge=1, le=10_000)
    """Most items of one bulk write (hasteCRM: 100 a call)."""
    max_operation_cost: int = Field(50, ge=1, le=1_000_000)
    """Most upstream requests an operation is estimated to send before it is refused with
    OPERATION_TOO_COSTLY (nothing sent)."""
    merge_whole_max: int = Field(2000, ge=0, le=100_000)
    """Most records of one provider's list that a list across providers reads whole and
    sorts itself, where that provider cannot sort by the order asked; above, UNSUPPORTED."""
    max_merge_contacts: int = Field(10, ge=1, le=1000)
    """Most contacts one mergeContacts folds into the winner."""
    operation_deadline: float = Field(30.0, gt=0, le=600)
    """Seconds an operation may take; unfinished fields then fail UPSTREAM_TIMEOUT."""
    cursor_secret: SecretStr | None = None
    """Signs cursors; replicas must share it. Random per process when unset; anything shorter
    than 16 characters or easy to guess (words, patterns, examples) is refused. Also
    `CRM_GATEWAY_CURSOR_SECRET_FILE`: a file holding it."""
    redis_url: SecretStr | None = None
    """Redis shared by the gateway's replicas for their read caches, e.g. `redis://redis:6379/0`
    (requires `cursor_secret`). Unset: each process caches alone."""
    redis_timeout: float = Field(0.5, gt=0, le=30)
    """Seconds each Redis call may take before Redis counts as away (the replicas then cache
    alone and keep to their share of each budget until it answers again)."""
    replicas_hint: int = Field(2, ge=1, le=1000)
    """How many replicas may run: while Redis is unreachable each keeps to this share of every
    provider's rate limit (the limit divided by it)."""
    graphiql: bool = False
    """Serve GraphiQL at GET /graphql."""
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    """`json`: one JSON object per line. Both log settings are the command line's: an app
    that embeds the gateway keeps its own logging."""
    max_request_size: int = Field(1_048_576, ge=1024, le=1_073_741_824)
    """Largest HTTP request body /graphql accepts, in bytes (413 above). Not the providers'
    `max_request_size`, which is a page size."""
    max_batch: int = Field(10, ge=0, le=1000)
    """Most operations in one batched request (a JSON array body); 0 refuses arrays."""
    apq: bool = True
    """Automatic persisted queries (Apollo's protocol): a client may send a query's SHA-256
    alone once it has sent the text with it."""
    apq_cache_size: int = Field(2000, ge=1, le=1_000_000)
    """Most query texts the APQ store keeps in each process."""
    apq_cache_bytes: int = Field(16 * 2**20, ge=1024, le=2**34)
    """Most bytes of query texts the APQ store keeps in each process."""
    persisted_documents: Path | None = None
    """A manifest of trusted documents (Apollo's persisted query manifest, or graphql-codegen's
    persisted-documents.json), read and checked at start-up; clients run them by id."""
    persisted_only: bool = False
    """Run only the manifest's documents, except for clients with the `ad_hoc` scope (and the
    anonymous client of an open gateway while GraphiQL is on). Needs `persisted_documents`."""
    introspection: bool = False
    """Answer introspection (`__schema`, `__type`)."""
    field_suggestions: bool = False
    """Keep "Did you mean ..." guesses in validation errors."""
    openapi: bool = False
    """Serve /openapi.json, /docs and /redoc."""
    cors_origins: list[str] = Field(default_factory=list)
    """Browser origins allowed to call the gateway (CORS), e.g. `https://app.example.com`; a `*`
    port (`http://localhost:*`) allows any port, a lone `*` any origin. None by default."""

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"{origin!r} is not an origin: scheme://host[:port], the port a number "
                    "or `*`, no path"
                )
        return origins

    cors_allow_headers: list[str] = Field(default_factory=lambda: list(CORS_ALLOW_HEADERS))
    """Request headers browsers at `cors_origins` may send; the default covers API keys,
    tokens, Apollo Client's and the usual tracing headers. Setting it replaces the list."""
    cors_allow_credentials: bool = False
    """Let those browsers send cookies and HTTP authentication (needs explicit `cors_origins`,
    no `*`)."""

    @field_validator("cors_allow_headers")
    @classmethod
    def _check_header_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a header name (one name per list item)")
        return names

    public_url: str | None = Field(None, pattern=r"^https?://[^\s/]+(/\S*)?$")
    """Where providers reach this gateway, e.g. `https://crm.example.com` (no trailing slash):
    webhooks are registered at `<public_url>/webhooks/<provider>`."""
    subscriptions: bool = False
    """Serve GraphQL subscriptions (`recordChanged`) over WebSocket (graphql-transport-ws) and
    multipart HTTP; off: WebSocket upgrades are refused."""
    max_subscriptions_per_client: int = Field(20, ge=1, le=10_000)
    """Subscriptions one client may hold open at once, across its connections."""
    metrics_token: SecretStr | None = None
    """Bearer token /metrics requires, and /readyz to list the providers (at least 16
    characters, hard to guess). Unset: both are open."""
    clients: list[ClientSettings] = Field(default_factory=list)
    """Clients allowed in; with none (and no [auth.jwt]) the gateway is open."""
    auth: AuthSettings = Field(default_factory=AuthSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    """The HTTP server's timeouts for reading a request and its cap on connections."""

    # (file, keys) of the secrets written into the config file it was loaded from.
    _inline_secrets: tuple[str, list[str]] = PrivateAttr(default=("", []))

    @property
    def auth_required(self) -> bool:
        return bool(self.clients) or self.auth.jwt is not None

    @field_validator("metrics_token")
    @classmethod
    def _check_metrics_token(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None:
            weak = weak_secret(token.get_secret_value())
            if weak is not None:
                raise ValueError(
                    f"metrics_token (CRM_GATEWAY_METRICS_TOKEN) {weak}: set a random one, e.g. "
                    f"the output of {RANDOM_EXAMPLE}"
                )
        return token

    @model_validator(mode="after")
    def _check_secret(self) -> Settings:
        if self.redis_url is not None:
            url = self.redis_url.get_secret_value()
            if not url.startswith(("redis://", "rediss://", "unix://")):
                raise ValueError("redis_url must start with redis://, rediss:// or unix://")
            if self.cursor_secret is None:
                # Behind a load balancer a client's next page may reach another replica.
                raise ValueError(
                    "redis_url needs cursor_secret (CRM_GATEWAY_CURSOR_SECRET), the same on "
                    "every replica, so that each reads the cursors the others wrote"
                )
        if self.cursor_secret is None:
            return self
        weak = weak_secret(self.cursor_secret.get_secret_value())
        if weak is not None:
            # Anyone who guesses it can forge cursors, and with them reach past a filter.
            raise ValueError(
                f"cursor_secret (CRM_GATEWAY_CURSOR_SECRET) {weak}: set a random one, e.g. the "
                f"output of {RANDOM_EXAMPLE}"
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
        if self.persisted_only and self.persisted_documents is None:
            raise ValueError("persisted_only needs persisted_documents, the documents to run")
        if self.cors_allow_credentials and "*" in self.cors_origins:
            # Browsers refuse `*` with credentials; echoing every origin instead would let any
            # site act with its visitors' cookies.
            raise ValueError("cors_allow_credentials needs explicit cors_origins, not `*`")
        self._check_clients(set(names))
        for provider in self.providers:
            if provider.webhooks and self.public_url is None:
                raise ValueError(
                    f"providers.{provider.name}.webhooks = true needs the top-level `public_url`:"
                    " where the provider reaches this gateway, e.g. https://crm.example.com"
                )
        return self

    def _check_clients(self, providers: set[str]) -> None:
        names = [c.name for c in self.clients]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"client names must be unique; repeated: {', '.join(duplicates)}")
        lists = [(f"clients.{c.name}", c.providers) for c in self.clients]
        if self.auth.jwt is not None:
            lists.append(("auth.jwt", self.auth.jwt.providers))
        for where, listed in lists:
            unknown = sorted(set(listed) - providers - {"*"})
            if unknown:
                raise ValueError(f"{where}.providers: not configured: {', '.join(unknown)}")
        for client in self.clients:
            if client.method == "jwt" and not self.auth.jwt:
                raise ValueError(
                    f"client {client.name!r} has no api_key_sha256 or api_key_env, and no "
                    "[auth.jwt] is configured: it could never authenticate"
                )

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
        sources: tuple[PydanticBaseSettingsSource, ...] = (
            init_settings,
            env_settings,
            SecretFiles(settings_cls),
        )
        if path is not None:
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=path),)
        return sources


class SecretFiles(PydanticBaseSettingsSource):
    """`CRM_GATEWAY_<KEY>_FILE` for the secret settings: the value is the file's content."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # all of them come from __call__

    def __call__(self) -> dict[str, Any]:
        return file_variables(str(self.config.get("env_prefix", "")))


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Settings from `path` (TOML) and the environment; ConfigError names what is wrong, at the
    file and line of the key, one problem a line."""
    if path is not None and not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    text = "" if path is None else path.read_text(encoding="utf-8", errors="replace")
    token = _config_file.set(path)
    try:
        settings = Settings(**overrides)
    except ValidationError as error:
        prefix = Settings.model_config.get("env_prefix", "")
        raise ConfigError("\n".join(describe(error, Settings, path, text, prefix))) from None
    except ValueError as error:  # TOML syntax errors
        raise ConfigError(_syntax_error(path, error)) from None
    finally:
        _config_file.reset(token)
    if path is not None:
        settings._inline_secrets = (str(path), inline_secrets(tomllib.loads(text)))
    return settings


def warn_inline_secrets(settings: Settings) -> None:
    """A secret written into the config file ends up in backups, images and version control:
    say so when the gateway starts (once logging is set up), naming the keys."""
    path, keys = settings._inline_secrets
    if keys:
        log.warning(
            "%s holds secrets in the file itself: %s. Name an environment variable "
            "(credentials_env, CRM_GATEWAY_<KEY>) or a file (credentials_file, "
            "CRM_GATEWAY_<KEY>_FILE) instead.",
            path,
            ", ".join(keys),
        )


def _syntax_error(path: Path | None, error: ValueError) -> str:
    # tomllib ends its message with "(at line 3, column 7)".
    message = str(error)
    at = re.search(r"\s*\(at line (\d+), column \d+\)$", message)
    if at is None:
        return f"{path}: {message}"
    return f"{path}:{at[1]}: {message[: at.start()]}"

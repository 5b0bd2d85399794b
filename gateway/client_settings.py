"""Who may use the gateway: clients with API keys, and bearer JWTs from one issuer.

`[[clients]]` name each client, the key it presents (or that it comes with a token), the
providers it may use, its scopes and its weight in each provider's budget; `[auth.jwt]`
says which issuer's tokens are let in and how they are checked.
"""

from __future__ import annotations

import hashlib
import ipaddress
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.configerrors import ConfigError
from gateway.configsecrets import MIN_SECRET_LENGTH, read_variable

Scope = Literal["read", "write", "ad_hoc"]
Algorithm = Literal["RS256", "ES256"]
AuthMethod = Literal["api_key", "jwt"]


def _read_only() -> list[Scope]:
    return ["read"]


def _asymmetric() -> list[Algorithm]:
    return ["RS256", "ES256"]


class ClientSettings(BaseModel):
    """A client of the gateway: who it is, the key it presents, what it may use."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,127}$")
    auth: AuthMethod | None = None
    """How it authenticates: "api_key" (with `api_key_sha256` or `api_key_env`) or "jwt" (a
    token whose client claim is its name). Unset: "api_key" when a key is given, else "jwt"."""
    api_key_sha256: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$")
    """Hex SHA-256 of the client's API key."""
    api_key_env: str | None = None
    """Environment variable holding the key (at least 16 characters)."""
    providers: list[str] = Field(default_factory=lambda: ["*"])
    """Provider instances it may use; ["*"]: all of them (the default)."""
    scopes: list[Scope] = Field(default_factory=_read_only)
    """"read" (the default), "write" (every mutation; implies read) and "ad_hoc" (documents
    outside the persisted documents, where `persisted_only` is set)."""
    weight: float = Field(1.0, gt=0, le=1000)
    """Its share of each provider's budget, relative."""

    @model_validator(mode="after")
    def _one_key(self) -> ClientSettings:
        keyed = self.api_key_sha256 is not None or self.api_key_env is not None
        if self.api_key_sha256 is not None and self.api_key_env is not None:
            raise ValueError(f"client {self.name!r}: give api_key_sha256 or api_key_env, not both")
        if self.auth == "api_key" and not keyed:
            raise ValueError(
                f'client {self.name!r}: auth = "api_key" needs api_key_sha256 or api_key_env'
            )
        if self.auth == "jwt" and keyed:
            # Otherwise the key would work too, and the client would have two ways in.
            raise ValueError(
                f'client {self.name!r}: auth = "jwt" takes no api_key_sha256 or api_key_env'
            )
        return self

    @property
    def method(self) -> AuthMethod:
        """How it authenticates, with the default filled in."""
        if self.auth is not None:
            return self.auth
        keyed = self.api_key_sha256 is not None or self.api_key_env is not None
        return "api_key" if keyed else "jwt"

    def resolved_key_digest(self) -> bytes | None:
        """The SHA-256 digest of the client's key; None for a client known only by JWT."""
        if self.api_key_sha256 is not None:
            return bytes.fromhex(self.api_key_sha256)
        if self.api_key_env is None:
            return None
        value = read_variable(f"clients.{self.name}.api_key_env", self.api_key_env)
        if len(value) < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"clients.{self.name}.api_key_env: the key in {self.api_key_env} is shorter "
                f"than {MIN_SECRET_LENGTH} characters"
            )
        return hashlib.sha256(value.encode()).digest()


class JwtSettings(BaseModel):
    """Bearer JWTs (OIDC access tokens) signed by one issuer, checked against its JWKS."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    issuer: str = Field(min_length=1)
    audience: str = Field(min_length=1)
    jwks_file: Path | None = None
    """A local JWKS file (reread when it changes)."""
    jwks_url: str | None = Field(None, pattern=r"^https?://[^\s/]+(/\S*)?$")
    """The issuer's JWKS endpoint; https unless on loopback."""
    algorithms: list[Algorithm] = Field(default_factory=_asymmetric, min_length=1)
    client_claim: str = Field("azp", min_length=1)
    """The claim naming the client."""
    scopes_claim: str | None = None
    """Claim with the token's scopes ("scope": space-separated; or a list)."""
    providers: list[str] = Field(default_factory=list)
    """Providers of a token client that has no [[clients]] entry of its name: none by default
    (such a token is let in but sees no provider); ["*"] for all of them."""
    scopes: list[Scope] = Field(default_factory=_read_only)
    """Scopes of a token client that has no [[clients]] entry of its name; a scopes claim can only
    narrow them."""
    leeway: float = Field(30.0, ge=0, le=600)
    """Seconds of clock skew allowed."""
    jwks_cache_seconds: float = Field(300.0, gt=0, le=86_400)
    """Seconds fetched keys are used before a refetch."""
    jwks_min_refresh_seconds: float = Field(10.0, ge=0, le=3600)
    """Least seconds between two refetches for a key id it does not know."""
    jwks_timeout: float = Field(5.0, gt=0, le=60)

    @model_validator(mode="after")
    def _one_source(self) -> JwtSettings:
        if (self.jwks_file is None) == (self.jwks_url is None):
            raise ValueError("auth.jwt: give exactly one of jwks_file and jwks_url")
        if self.jwks_url is not None and not self.jwks_url.startswith("https://"):
            host = urlsplit(self.jwks_url).hostname or ""
            if not is_loopback(host):
                raise ValueError("auth.jwt.jwks_url must be https (http only on loopback)")
        return self


class AuthSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    jwt: JwtSettings | None = None


def is_loopback(host: str) -> bool:
    """Whether `host` names only this machine (127.0.0.0/8, ::1, localhost)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False

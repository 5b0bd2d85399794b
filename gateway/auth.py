"""Authentication of the gateway's clients: API keys and OIDC bearer tokens (JWTs).

A request presents `X-API-Key: <key>` or `Authorization: Bearer <key or JWT>`.
Keys are compared by their SHA-256 digests, in constant time, against every
configured client's digest (no early exit, so the timing says nothing about which
client or how much of a key matched). A bearer value that is no client's key and
looks like a JWT is verified against the issuer's JWKS (RS256 or ES256 only; the
algorithm must also be the key's own, so an RSA public key is never taken as an
HMAC secret), then named by `client_claim`.

A refusal never says which check failed: "invalid or missing credentials".
Neither the key nor the token is ever logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import jwt
from fastapi.responses import JSONResponse

from gateway.client_settings import ClientSettings, JwtSettings, is_loopback
from gateway.clients import Client, normalize_scopes, provider_set
from gateway.errors import Forbidden, GatewayError, Unauthenticated
from gateway.settings import Settings

REALM = "crm-gateway"
# Longest client name taken from a token claim (it ends up in logs).
MAX_CLIENT_NAME = 200

log = logging.getLogger("gateway.auth")


def _client(entry: ClientSettings) -> Client:
    return Client(
        name=entry.name,
        providers=provider_set(entry.providers),
        scopes=normalize_scopes(entry.scopes),
        weight=entry.weight,
    )


class JwksKeys:
    """The issuer's public keys by key id, from `jwks_file` or `jwks_url`.

    Fetched keys are kept `jwks_cache_seconds`; a file is reread when its mtime changes.
    A token naming a key id not held triggers one reload (the issuer rotated its keys),
    at most every `jwks_min_refresh_seconds`, so random key ids (or an issuer that is
    down) cannot make the gateway hammer the issuer.
    """

    def __init__(self, settings: JwtSettings, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.clock = clock
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._loaded_at: float | None = None  # clock time of the last successful load
        self._tried_at: float | None = None  # of the last attempt, successful or not
        self._mtime: float | None = None
        self._lock = asyncio.Lock()
        self._reloads = 0  # attempts so far; lets waiters on the lock skip a duplicate

    def _stale(self) -> bool:
        if self._loaded_at is None:
            return self._may_retry()
        if self.settings.jwks_file is not None:
            try:
                return self.settings.jwks_file.stat().st_mtime != self._mtime
            except OSError:
                return False  # keep the keys held; the reload would fail anyway
        age = self.clock() - self._loaded_at
        return age >= self.settings.jwks_cache_seconds and self._may_retry()

    def _may_retry(self) -> bool:
        return (
            self._tried_at is None
            or self.clock() - self._tried_at >= self.settings.jwks_min_refresh_seconds
        )

    async def key(self, kid: str | None) -> jwt.PyJWK | None:
        """The key a token's header names; with no `kid`, the only key if there is one."""
        if self._stale():
            await self._reload()
        found = self._find(kid)
        if found is None and self._may_retry():
            await self._reload()
            found = self._find(kid)
        return found

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid)

    async def _reload(self) -> None:
        seen = self._reloads
        async with self._lock:
            if self._reloads != seen:
                return  # another request reloaded while this one waited
            self._reloads += 1
            self._tried_at = self.clock()
            try:
                data, mtime = await self._fetch()
                keys = jwt.PyJWKSet.from_dict(data).keys
            except (OSError, ValueError, httpx.HTTPError, jwt.PyJWTError) as error:
                log.warning("could not load the JWKS of %s: %s", self._where(), error)
                return
            self._keys = {k.key_id: k for k in keys if k.public_key_use in (None, "sig")}
            self._loaded_at, self._mtime = self._tried_at, mtime
            log.info("loaded %d signing keys from %s", len(self._keys), self._where())

    def _where(self) -> str:
        return str(self.settings.jwks_file or self.settings.jwks_url)

    async def _fetch(self) -> tuple[dict[str, Any], float | None]:
        path = self.settings.jwks_file
        if path is not None:
            mtime = path.stat().st_mtime
            text = await asyncio.to_thread(Path.read_text, path, "utf-8")
            return _object(json.loads(text)), mtime
        assert self.settings.jwks_url is not None
        async with httpx.AsyncClient(timeout=self.settings.jwks_timeout) as http:
            response = await http.get(self.settings.jwks_url)
            response.raise_for_status()
            return _object(response.json()), None


def _object(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("a JWKS is a JSON object")
    return value


class Authenticator:
    """Turns a request's headers into a Client, or raises Unauthenticated (or Forbidden
    for a valid token that grants no scope)."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.keyed = [
            (digest, _client(entry))
            for entry in settings.clients
            if entry.method == "api_key" and (digest := entry.resolved_key_digest()) is not None
        ]
        # Only clients that authenticate by token: a token naming an API-key client must not
        # get that client's providers and scopes without its key.
        self.by_token = {e.name: _client(e) for e in settings.clients if e.method == "jwt"}
        self.key_names = {client.name for _, client in self.keyed}
        self.jwt = settings.auth.jwt
        self.keys = None if self.jwt is None else JwksKeys(self.jwt, clock)

    async def authenticate(self, headers: Mapping[str, str]) -> Client:
        api_key = headers.get("x-api-key")
        bearer = _bearer(headers) if api_key is None else None
        presented = api_key if api_key is not None else bearer
        if not presented:
            raise Unauthenticated(invalid_token=False)
        client = self._by_key(presented)
        if client is not None:
            return client
        if bearer is not None and self.jwt is not None and bearer.count(".") == 2:
            return await self._by_token(bearer, self.jwt)
        log.info("refused a request: unknown API key")
        raise Unauthenticated(invalid_token=True)

    def _by_key(self, key: str) -> Client | None:
        try:
            raw = key.encode("latin-1")  # the header's own bytes (Starlette decodes latin-1)
        except UnicodeEncodeError:
            raw = key.encode()
        digest = hashlib.sha256(raw).digest()
        found = None
        for known, client in self.keyed:
            # Every digest is compared, whatever matched before.
            if hmac.compare_digest(known, digest) and found is None:
                found = client
        return found

    async def _by_token(self, token: str, settings: JwtSettings) -> Client:
        assert self.keys is not None
        try:
            header = jwt.get_unverified_header(token)
            algorithm = header.get("alg")
            if algorithm not in settings.algorithms:
                raise jwt.InvalidAlgorithmError(f"algorithm {algorithm!r} is not accepted")
            kid = header.get("kid")
            key = await self.keys.key(kid if isinstance(kid, str) else None)
            if key is None:
                raise jwt.InvalidKeyError("no key of the issuer has this key id")
            if key.algorithm_name != algorithm:
                raise jwt.InvalidAlgorithmError("the algorithm is not the key's")
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=settings.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as error:
            # The reason is for the operator; the client only learns the token is invalid.
            log.info("refused a bearer token: %s", type(error).__name__)
            raise Unauthenticated(invalid_token=True) from None
        name = claims.get(settings.client_claim)
        if not isinstance(name, str) or not name or len(name) > MAX_CLIENT_NAME:
            log.info("refused a bearer token: no %r claim", settings.client_claim)
            raise Unauthenticated(invalid_token=True)
        if name in self.key_names:
            # Same name, other client: it would share that client's budget and audit lines.
            log.info("refused a bearer token: its client claim names an API-key client")
            raise Unauthenticated(invalid_token=True)
        known = self.by_token.get(name)
        if known is not None:
            client = known
        else:
            client = Client(
                name=name,
                providers=provider_set(settings.providers),
                scopes=normalize_scopes(settings.scopes),
            )
        if settings.scopes_claim is not None:
            granted = claims.get(settings.scopes_claim)
            if isinstance(granted, str):
                granted = granted.split()
            if not isinstance(granted, list):
                granted = []
            scopes = normalize_scopes(s for s in granted if isinstance(s, str))
            client = Client(client.name, client.providers, client.scopes & scopes, client.weight)
        if "read" not in client.scopes:  # ad_hoc alone lets it read nothing
            log.info("refused client %r: its token grants no scope of the gateway", name)
            raise Forbidden("the token grants no scope of this gateway")
        # Accepted until then (`leeway` included): a subscription ends there.
        return replace(client, expires_at=float(claims["exp"]) + settings.leeway)


def _bearer(headers: Mapping[str, str]) -> str | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


class OperatorToken:
    """`metrics_token`: what /metrics and the full /readyz require; None lets anyone in."""

    def __init__(self, token: str | None) -> None:
        self.digest = None if token is None else hashlib.sha256(token.encode()).digest()

    def check(self, headers: Mapping[str, str]) -> Unauthenticated | None:
        """None when the request may see it; else the refusal to answer."""
        if self.digest is None:
            return None
        presented = _bearer(headers)
        if not presented:
            return Unauthenticated(invalid_token=False)
        if hmac.compare_digest(hashlib.sha256(presented.encode()).digest(), self.digest):
            return None
        log.info("refused a request: wrong metrics token")
        return Unauthenticated(invalid_token=True)


def refusal_response(error: GatewayError) -> JSONResponse:
    """The HTTP answer to a request refused before execution: 401 with a Bearer challenge,
    or 403 for a token without any scope of the gateway."""
    challenge = f'Bearer realm="{REALM}"'
    status = 401
    if isinstance(error, Unauthenticated) and error.invalid_token:
        challenge += ', error="invalid_token"'
    elif isinstance(error, Forbidden):
        challenge += ', error="insufficient_scope"'
        status = 403
    return JSONResponse(
        {"errors": [{"message": error.message, "extensions": error.extensions}]},
        status_code=status,
        headers={"WWW-Authenticate": challenge},
    )


def exposed_without_auth(host: str, settings: Settings) -> bool:
    """Whether the gateway listens beyond loopback with no client configured: anyone who
    reaches the port may then read and write every provider."""
    return not settings.auth_required and not is_loopback(host)

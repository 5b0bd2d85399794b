"""Bearer JWTs checked against the issuer's JWKS: each refusal, scopes, and key loading."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from gateway.auth import Authenticator, JwksKeys, refusal_response
from gateway.clients import Client
from gateway.errors import Forbidden, Unauthenticated
from gateway.settings import JwtSettings, Settings

ISSUER, AUDIENCE = "https://issuer.test", "crm-gateway"
EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_EC = ec.generate_private_key(ec.SECP256R1())
KEY_DIGEST = hashlib.sha256(b"key-of-the-admin-client").hexdigest()


def jwks() -> dict[str, Any]:
    return {
        "keys": [
            {**ECAlgorithm.to_jwk(EC_KEY.public_key(), as_dict=True), "kid": "ec", "alg": "ES256"},
            {
                **RSAAlgorithm.to_jwk(RSA_KEY.public_key(), as_dict=True),
                "kid": "rsa",
                "alg": "RS256",
            },
            # An encryption key is never used to check a signature.
            {**ECAlgorithm.to_jwk(OTHER_EC.public_key(), as_dict=True), "kid": "enc", "use": "enc"},
        ]
    }


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def jwks_file(tmp_path: Path) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks()))
    return path


def authenticator(jwks_file: Path, **jwt_settings: Any) -> Authenticator:
    settings = Settings.model_validate(
        {
            "clients": [
                {"name": "admin", "api_key_sha256": KEY_DIGEST, "scopes": ["write"]},
                {"name": "reporting", "auth": "jwt", "scopes": ["write"], "weight": 2},
            ],
            "auth": {
                "jwt": {"issuer": ISSUER, "audience": AUDIENCE, "jwks_file": str(jwks_file)}
                | jwt_settings
            },
        }
    )
    return Authenticator(settings)


def token(
    key: Any = EC_KEY, kid: str | None = "ec", algorithm: str = "ES256", **claims: Any
) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, "iat": now, "azp": "robot"}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    headers = {} if kid is None else {"kid": kid}
    return jwt.encode(body, key, algorithm=algorithm, headers=headers)


def bearer(value: str) -> dict[str, str]:
    return {"authorization": f"Bearer {value}"}


async def test_a_valid_token_names_its_client(jwks_file: Path) -> None:
    gate = authenticator(jwks_file)
    signed = token()
    client = await gate.authenticate(bearer(signed))
    # Accepted until its expiry, leeway included: a subscription ends there.
    expiry = jwt.decode(signed, options={"verify_signature": False})["exp"]
    assert client.expires_at == expiry + JwtSettings.model_fields["leeway"].default
    # [auth.jwt] providers default to none: a token client sees only what it is given.
    assert replace(client, expires_at=None) == Client("robot", frozenset(), frozenset({"read"}))
    rsa_client = await gate.authenticate(bearer(token(RSA_KEY, "rsa", "RS256")))
    assert rsa_client.name == "robot"
    # A token client of the token's name keeps its own providers, scopes and weight.
    reporting = await gate.authenticate(bearer(token(azp="reporting")))
    assert replace(reporting, expires_at=None) == Client(
        "reporting", None, frozenset({"read", "write"}), 2.0
    )
    everything = authenticator(jwks_file, providers=["*"])
    assert (await everything.authenticate(bearer(token()))).providers is None


async def test_a_token_never_becomes_an_api_key_client(jwks_file: Path) -> None:
    gate = authenticator(jwks_file)
    by_key = await gate.authenticate({"x-api-key": "key-of-the-admin-client"})
    assert by_key.can_write
    with pytest.raises(Unauthenticated) as refused:
        await gate.authenticate(bearer(token(azp="admin")))
    assert refused.value.invalid_token
    # Nor does an API-key client's key pass as a token client's.
    with pytest.raises(Unauthenticated):
        await gate.authenticate({"x-api-key": "reporting"})


@pytest.mark.parametrize(
    "make",
    [
        lambda: token(exp=int(time.time()) - 120),  # expired beyond the leeway
        lambda: token(aud="someone-else"),
        lambda: token(iss="https://evil.test"),
        lambda: token(exp=None),  # exp is required
        lambda: token(kid="unknown"),
        lambda: token(kid="enc"),  # not a signing key
        lambda: token(OTHER_EC),  # signed by another key under our kid
        lambda: token(RSA_KEY, "ec", "RS256"),  # the algorithm is not the key's
        lambda: jwt.encode({"iss": ISSUER}, "s" * 32, algorithm="HS256", headers={"kid": "ec"}),
        lambda: token(azp=None),  # no client claim
        lambda: token(azp="x" * 201),
        lambda: "not.a.jwt",
    ],
)
async def test_refused_tokens_are_invalid_tokens(jwks_file: Path, make: Callable[[], str]) -> None:
    with pytest.raises(Unauthenticated) as refused:
        await authenticator(jwks_file).authenticate(bearer(make()))
    assert refused.value.invalid_token
    response = refusal_response(refused.value)
    assert response.status_code == 401
    assert (
        response.headers["WWW-Authenticate"] == 'Bearer realm="crm-gateway", error="invalid_token"'
    )


async def test_no_credentials_is_a_plain_challenge(jwks_file: Path) -> None:
    for headers in ({}, {"authorization": "Basic abc"}, {"authorization": "Bearer "}):
        with pytest.raises(Unauthenticated) as refused:
            await authenticator(jwks_file).authenticate(headers)
        assert not refused.value.invalid_token
        challenge = refusal_response(refused.value).headers["WWW-Authenticate"]
        assert challenge == 'Bearer realm="crm-gateway"'
    with pytest.raises(Unauthenticated) as unknown:
        await authenticator(jwks_file).authenticate({"x-api-key": "not-a-key-é"})
    assert unknown.value.invalid_token


async def test_a_single_key_serves_a_token_without_kid(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"keys": jwks()["keys"][:1]}))
    client = await authenticator(path).authenticate(bearer(token(kid=None)))
    assert client.name == "robot"


@pytest.mark.parametrize(
    ("granted", "scopes"),
    [
        ("read write", {"read", "write"}),
        (["write"], {"read", "write"}),
        ("read", {"read"}),
    ],
)
async def test_a_scopes_claim_narrows_the_clients_scopes(
    jwks_file: Path, granted: Any, scopes: set[str]
) -> None:
    gate = authenticator(jwks_file, scopes_claim="scope", scopes=["write"])
    client = await gate.authenticate(bearer(token(scope=granted)))
    assert client.scopes == scopes


@pytest.mark.parametrize("granted", ["admin", 5, None, []])
async def test_a_token_granting_no_scope_is_forbidden(jwks_file: Path, granted: Any) -> None:
    gate = authenticator(jwks_file, scopes_claim="scope")
    with pytest.raises(Forbidden) as refused:
        await gate.authenticate(bearer(token(scope=granted)))
    response = refusal_response(refused.value)
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert json.loads(bytes(response.body))["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def url_settings(**extra: Any) -> JwtSettings:
    return JwtSettings(
        issuer=ISSUER, audience=AUDIENCE, jwks_url="https://issuer.test/jwks", **extra
    )


def serve_jwks(
    monkeypatch: pytest.MonkeyPatch, answer: Callable[[], httpx.Response]
) -> list[httpx.Request]:
    """The JWKS endpoint as a MockTransport behind every client auth.py opens."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer()

    real = httpx.AsyncClient

    def client(**kwargs: Any) -> httpx.AsyncClient:
        return real(transport=httpx.MockTransport(handler), **kwargs)

    monkeypatch.setattr("gateway.auth.httpx.AsyncClient", client)
    return seen


async def test_fetched_keys_are_cached_then_refetched(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = serve_jwks(monkeypatch, lambda: httpx.Response(200, json=jwks()))
    clock = Clock()
    keys = JwksKeys(url_settings(jwks_cache_seconds=60), clock)
    assert (await keys.key("ec")) is not None
    clock.now += 59
    assert (await keys.key("rsa")) is not None
    assert len(seen) == 1
    assert str(seen[0].url) == "https://issuer.test/jwks"
    clock.now += 1
    assert (await keys.key("ec")) is not None
    assert len(seen) == 2


@pytest.mark.parametrize(
    "answer",
    [
        lambda: httpx.Response(500),
        lambda: httpx.Response(200, json=["not", "an", "object"]),
        lambda: httpx.Response(200, content=b"<html>"),
        lambda: httpx.Response(200, json={"keys": [{"kty": "nope"}]}),
    ],
)
async def test_an_issuer_that_fails_is_retried_no_sooner_than_allowed(
    monkeypatch: pytest.MonkeyPatch, answer: Callable[[], httpx.Response]
) -> None:
    seen = serve_jwks(monkeypatch, answer)
    clock = Clock()
    keys = JwksKeys(url_settings(jwks_min_refresh_seconds=10), clock)
    assert await keys.key("ec") is None
    assert await keys.key("ec") is None
    assert len(seen) == 1
    clock.now += 10
    assert await keys.key("ec") is None
    assert len(seen) == 2


def rotate(path: Path) -> None:
    """The issuer's file holds only its first key now, with a later mtime."""
    path.write_text(json.dumps({"keys": jwks()["keys"][:1]}))
    stat = path.stat()
    os.utime(path, (stat.st_atime, stat.st_mtime + 5))


async def test_a_changed_file_is_reread_and_a_missing_one_keeps_its_keys(
    jwks_file: Path,
) -> None:
    keys = JwksKeys(JwtSettings(issuer=ISSUER, audience=AUDIENCE, jwks_file=jwks_file), Clock())
    assert await keys.key("rsa") is not None
    rotate(jwks_file)
    assert await keys.key("ec") is not None
    assert keys._find("rsa") is None  # the rotated file no longer holds it
    os.remove(jwks_file)
    assert await keys.key("ec") is not None

"""Client configuration, key comparison, JWKS refresh throttling, the open-gateway warning."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from gateway.app import create_app
from gateway.auth import Authenticator, JwksKeys, exposed_without_auth
from gateway.clients import Client
from gateway.errors import Unauthenticated
from gateway.settings import ConfigError, JwtSettings, Settings, load_settings
from tests.support.asgi_websocket import AsgiWebSocket, Closed

PROVIDER = """
[[providers]]
name = "crm"
kind = "revyops"
base_url = "https://api.revyops.com"
credentials = { client_id = "x" }
"""
DIGEST = hashlib.sha256(b"a-key-of-the-first-client").hexdigest()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(PROVIDER + text)
    return path


def test_clients_and_jwt_load_from_toml_with_their_defaults(tmp_path):
    settings = load_settings(
        write(
            tmp_path,
            f"""
[[clients]]
name = "bff"
api_key_sha256 = "{DIGEST}"

[[clients]]
name = "etl"
api_key_sha256 = "{DIGEST.upper()}"
providers = ["crm"]
scopes = ["read", "write"]
weight = 3

[auth.jwt]
issuer = "https://id.example.com/"
audience = "crm-gateway"
jwks_url = "https://id.example.com/.well-known/jwks.json"
scopes_claim = "scp"
""",
        )
    )
    bff, etl = settings.clients
    assert (bff.providers, bff.scopes, bff.weight) == (["*"], ["read"], 1.0)
    assert (bff.auth, bff.method, etl.method) == (None, "api_key", "api_key")
    assert (etl.providers, etl.scopes, etl.weight) == (["crm"], ["read", "write"], 3.0)
    jwt = settings.auth.jwt
    assert jwt is not None
    assert (jwt.client_claim, jwt.scopes_claim, jwt.algorithms) == (
        "azp",
        "scp",
        ["RS256", "ES256"],
    )
    assert (jwt.providers, jwt.scopes) == ([], ["read"])
    assert settings.auth_required


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (
            f'[[clients]]\nname = "a"\napi_key_sha256 = "{DIGEST}"\napi_key_env = "K"\n',
            "not both",
        ),
        ('[[clients]]\nname = "a"\napi_key_sha256 = "abc"\n', "clients[0].api_key_sha256"),
        (f'[[clients]]\nname = "a"\napi_key_sha256 = "{DIGEST}"\nproviders = ["nope"]\n', "nope"),
        (f'[[clients]]\nname = "a"\napi_key_sha256 = "{DIGEST}"\nscopes = ["admin"]\n', "scopes"),
        (f'[[clients]]\nname = "a"\napi_key_sha256 = "{DIGEST}"\nweight = 0\n', "weight"),
        ('[[clients]]\nname = "a"\n', "could never authenticate"),
        ('[[clients]]\nname = "a"\nauth = "jwt"\n', "could never authenticate"),
        ('[[clients]]\nname = "a"\nauth = "api_key"\n', 'auth = "api_key" needs'),
        (f'[[clients]]\nname = "a"\nauth = "jwt"\napi_key_sha256 = "{DIGEST}"\n', "takes no"),
        (f'[[clients]]\nname = "a"\nauth = "oidc"\napi_key_sha256 = "{DIGEST}"\n', "auth"),
        (
            f'[[clients]]\nname = "a"\napi_key_sha256 = "{DIGEST}"\n'
            f'[[clients]]\nname = "a"\napi_key_sha256 = "{DIGEST}"\n',
            "repeated: a",
        ),
        ('[auth.jwt]\nissuer = "i"\naudience = "a"\n', "exactly one of jwks_file and jwks_url"),
        (
            '[auth.jwt]\nissuer = "i"\naudience = "a"\njwks_url = "http://id.example.com/k"\n',
            "must be https",
        ),
        (
            '[auth.jwt]\nissuer = "i"\naudience = "a"\njwks_file = "k.json"\n'
            'algorithms = ["HS256"]\n',
            "algorithms",
        ),
        (
            '[auth.jwt]\nissuer = "i"\naudience = "a"\njwks_file = "k.json"\nproviders = ["x"]\n',
            "auth.jwt.providers",
        ),
    ],
)
def test_bad_client_configuration_fails_naming_it(tmp_path, text, complaint):
    with pytest.raises(ConfigError, match=r"gateway\.toml") as error:
        load_settings(write(tmp_path, text))
    assert complaint in str(error.value)


def test_http_jwks_url_is_fine_on_loopback():
    settings = JwtSettings(issuer="i", audience="a", jwks_url="http://127.0.0.1:9/jwks")
    assert settings.jwks_url == "http://127.0.0.1:9/jwks"


def test_a_key_from_the_environment_must_be_set_and_long(tmp_path, monkeypatch):
    path = write(tmp_path, '[[clients]]\nname = "a"\napi_key_env = "TEST_GATEWAY_CLIENT_KEY"\n')
    monkeypatch.delenv("TEST_GATEWAY_CLIENT_KEY", raising=False)
    with pytest.raises(ConfigError, match="TEST_GATEWAY_CLIENT_KEY is not set"):
        create_app(load_settings(path))
    monkeypatch.setenv("TEST_GATEWAY_CLIENT_KEY", "short")
    with pytest.raises(ConfigError, match="shorter than 16") as error:
        create_app(load_settings(path))
    assert "short" not in str(error.value).replace("shorter", "")


@pytest.mark.parametrize(
    ("host", "clients", "warned"),
    [
        ("0.0.0.0", False, True),
        ("::", False, True),
        ("192.168.1.20", False, True),
        ("gateway.internal", False, True),
        ("127.0.0.1", False, False),
        ("127.0.0.2", False, False),
        ("::1", False, False),
        ("[::1]", False, False),
        ("localhost", False, False),
        ("0.0.0.0", True, False),
    ],
)
def test_the_open_gateway_warning(host, clients, warned):
    entries = [{"name": "a", "api_key_sha256": DIGEST}] if clients else []
    assert exposed_without_auth(host, Settings.model_validate({"clients": entries})) is warned


def _keyed(count: int) -> Settings:
    return Settings.model_validate(
        {
            "clients": [
                {"name": f"c{i}", "api_key_sha256": hashlib.sha256(f"key-{i}".encode()).hexdigest()}
                for i in range(count)
            ]
        }
    )


async def test_every_client_digest_is_compared_whichever_matches(monkeypatch):
    calls: list[bytes] = []
    compare = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(a)
        return compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    authenticator = Authenticator(_keyed(5))
    client = await authenticator.authenticate({"x-api-key": "key-0"})
    assert client == Client(name="c0")
    assert len(calls) == 5
    calls.clear()
    with pytest.raises(Unauthenticated):
        await authenticator.authenticate({"authorization": "Bearer key-9"})
    assert len(calls) == 5


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_unknown_key_ids_reload_the_jwks_at_most_every_min_refresh(tmp_path):
    path = tmp_path / "jwks.json"
    key = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()).public_key(), as_dict=True)
    path.write_text(json.dumps({"keys": [{**key, "kid": "k1"}]}))
    clock = Clock()
    keys = JwksKeys(
        JwtSettings(issuer="i", audience="a", jwks_file=path, jwks_min_refresh_seconds=10), clock
    )
    loads = 0
    fetch = keys._fetch

    async def counted() -> tuple[dict[str, Any], float | None]:
        nonlocal loads
        loads += 1
        return await fetch()

    keys._fetch = counted  # type: ignore[method-assign]
    found = await keys.key("k1")
    assert found is not None
    assert found.algorithm_name == "ES256"
    assert await keys.key(None) is found  # the only key
    for _ in range(5):
        assert await keys.key("random") is None
    assert loads == 1
    clock.now += 10
    assert await keys.key("random") is None
    assert loads == 2
    assert await keys.key("random") is None
    assert loads == 2


async def _handshake(app: Any, headers: dict[str, str]) -> str:
    """The app's first answer to a GraphQL WebSocket handshake (over ASGI, in process)."""
    try:
        async with AsgiWebSocket(app, headers):
            return "websocket.accept"
    except Closed:
        return "websocket.close"


async def test_no_websocket_is_accepted_with_or_without_credentials():
    # With `subscriptions` off (the default) there is no WebSocket route at all. Closing
    # before accepting makes the server answer 403.
    settings = Settings.model_validate(
        {"clients": [{"name": "a", "api_key_sha256": hashlib.sha256(b"key-a").hexdigest()}]}
    )
    for app in (create_app(settings), create_app(Settings())):
        assert await _handshake(app, {}) == "websocket.close"
        assert await _handshake(app, {"x-api-key": "wrong"}) == "websocket.close"
        assert await _handshake(app, {"x-api-key": "key-a"}) == "websocket.close"

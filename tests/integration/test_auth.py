"""Clients of the gateway over real HTTP: API keys, OIDC bearer tokens, providers per
client, the write scope, and the audit line of every write."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from emulators import EmulatorOptions
from gateway.app import create_app
from gateway.providers import create_emulator
from gateway.servers import ServerThread
from gateway.settings import Settings
from tests.support.clients import emulator_requests
from tests.support.ids import raw_id
from tests.support.servers import demo_providers

pytestmark = pytest.mark.integration

ISSUER = "https://id.example.test/"
AUDIENCE = "crm-gateway-test"
READER_KEY = "reader-key-0123456789abcdef"
WRITER_KEY = "writer-key-0123456789abcdef"
WRITER_ENV = "CRM_GATEWAY_TEST_WRITER_KEY"
CHALLENGE = 'Bearer realm="crm-gateway"'
PROVIDERS_QUERY = "{ providers { name } }"
CREATE_CONTACT = """
mutation($input: CreateContactInput!) {
  createContact(input: $input) { contact { id remoteId } userErrors { field message } }
}"""
DELETE_CONTACT = """
mutation($id: ID!) { deleteContact(input: {id: $id}) { deletedId userErrors { message } } }"""


# --- keys and tokens -------------------------------------------------------------------


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_jwk(private: Any, kid: str) -> dict[str, Any]:
    algorithm = RSAAlgorithm if isinstance(private, rsa.RSAPrivateKey) else ECAlgorithm
    jwk: dict[str, Any] = algorithm.to_jwk(private.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "use": "sig"}


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600}
    return {k: v for k, v in {**base, **overrides}.items() if v is not None}


def token(private: Any, kid: str, **overrides: Any) -> str:
    algorithm = "RS256" if isinstance(private, rsa.RSAPrivateKey) else "ES256"
    return jwt.encode(claims(**overrides), private, algorithm=algorithm, headers={"kid": kid})


def _b64(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


def forged(header: dict[str, Any], payload: dict[str, Any], secret: bytes | None) -> str:
    """A token PyJWT would refuse to make: `alg: none`, or HS256 keyed with a public key."""
    signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = b"" if secret is None else hmac.digest(secret, signing.encode(), "sha256")
    return f"{signing}.{_b64(signature)}"


RSA_1, EC_1 = rsa_key(), ec_key()


# --- servers -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, str]]:
    """Fresh emulators: the writes here must not disturb other modules."""
    with (
        ServerThread(create_emulator("revyops", EmulatorOptions(rate_limits=False))) as rev,
        ServerThread(create_emulator("attio", EmulatorOptions(rate_limits=False))) as att,
        ServerThread(create_emulator("haste", EmulatorOptions(rate_limits=False))) as hst,
        ServerThread(create_emulator("basicsos", EmulatorOptions(rate_limits=False))) as bos,
    ):
        yield {"revyops": rev.url, "attio": att.url, "haste": hst.url, "basicsos": bos.url}


def provider_list(upstreams: dict[str, str]) -> list[Any]:
    return demo_providers(upstreams)


@pytest.fixture(scope="module")
def jwks_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps({"keys": [public_jwk(RSA_1, "rsa-1"), public_jwk(EC_1, "ec-1")]}))
    return path


@pytest.fixture(scope="module")
def secured(upstreams: dict[str, str], jwks_file: Path) -> Iterator[str]:
    """A gateway with two API-key clients, one JWT client entry, and JWTs from a file."""
    mp = pytest.MonkeyPatch()
    mp.setenv(WRITER_ENV, WRITER_KEY)
    settings = Settings.model_validate(
        {
            "providers": provider_list(upstreams),
            "graphiql": True,
            "clients": [
                {
                    "name": "reader",
                    "api_key_sha256": hashlib.sha256(READER_KEY.encode()).hexdigest(),
                    "providers": ["haste", "attio"],
                },
                {"name": "writer", "api_key_env": WRITER_ENV, "scopes": ["read", "write"]},
                {
                    "name": "svc-known",
                    "providers": ["haste"],
                    "scopes": ["read", "write"],
                    "weight": 2,
                },
            ],
            "auth": {
                "jwt": {
                    "issuer": ISSUER,
                    "audience": AUDIENCE,
                    "jwks_file": str(jwks_file),
                    "scopes_claim": "scope",
                    "providers": ["revyops"],
                    "scopes": ["read", "write"],
                    "jwks_min_refresh_seconds": 0,
                }
            },
        }
    )
    with ServerThread(create_app(settings)) as server:
        yield server.url
    mp.undo()


def post(
    url: str, query: str, variables: dict[str, Any] | None = None, **headers: str
) -> httpx.Response:
    return httpx.post(
        f"{url}/graphql",
        json={"query": query, "variables": variables or {}},
        headers={k.replace("_", "-"): v for k, v in headers.items()},
        timeout=30,
    )


def names(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return sorted(p["name"] for p in body["data"]["providers"])


def assert_refused(response: httpx.Response, *, invalid_token: bool) -> None:
    assert response.status_code == 401
    expected = CHALLENGE + (', error="invalid_token"' if invalid_token else "")
    assert response.headers["www-authenticate"] == expected
    assert response.json() == {
        "errors": [
            {
                "message": "invalid or missing credentials",
                "extensions": {"code": "UNAUTHENTICATED"},
            }
        ]
    }


# --- API keys --------------------------------------------------------------------------------


def test_no_credentials_is_401_with_a_challenge(secured):
    assert_refused(post(secured, PROVIDERS_QUERY), invalid_token=False)
    assert_refused(
        post(secured, PROVIDERS_QUERY, Authorization="Basic dXNlcjpwdw=="), invalid_token=False
    )
    assert_refused(post(secured, PROVIDERS_QUERY, Authorization="Bearer"), invalid_token=False)


@pytest.mark.parametrize(
    "headers",
    [
        {"X_API_Key": "not-a-key-of-anybody"},
        {"Authorization": "Bearer not-a-key-of-anybody"},
        {"Authorization": f"Bearer {READER_KEY}x"},
        {"X_API_Key": READER_KEY[:-1]},
    ],
)
def test_a_wrong_key_is_401_invalid_token(secured, headers, caplog):
    caplog.set_level(logging.DEBUG)
    assert_refused(post(secured, PROVIDERS_QUERY, **headers), invalid_token=True)
    value = next(iter(headers.values())).removeprefix("Bearer ")
    assert value not in caplog.text


def test_queries_sent_by_get_need_credentials_too(secured):
    refused = httpx.get(f"{secured}/graphql", params={"query": PROVIDERS_QUERY})
    assert_refused(refused, invalid_token=False)
    answered = httpx.get(
        f"{secured}/graphql", params={"query": PROVIDERS_QUERY}, headers={"X-API-Key": READER_KEY}
    )
    assert names(answered) == ["attio", "haste"]


def test_graphiql_page_and_health_stay_open(secured):
    page = httpx.get(f"{secured}/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
    assert httpx.get(f"{secured}/healthz").status_code == 200
    assert httpx.get(f"{secured}/readyz").status_code == 200


def test_both_header_forms_are_accepted(secured, caplog):
    caplog.set_level(logging.DEBUG)
    assert names(post(secured, PROVIDERS_QUERY, X_API_Key=READER_KEY)) == ["attio", "haste"]
    assert names(post(secured, PROVIDERS_QUERY, Authorization=f"Bearer {READER_KEY}")) == [
        "attio",
        "haste",
    ]
    assert names(post(secured, PROVIDERS_QUERY, Authorization=f"bearer {READER_KEY}")) == [
        "attio",
        "haste",
    ]
    assert READER_KEY not in caplog.text


def test_a_key_from_the_environment(secured):
    everything = ["attio", "basicsos", "haste", "revyops"]
    assert names(post(secured, PROVIDERS_QUERY, X_API_Key=WRITER_KEY)) == everything


# --- providers per client ------------------------------------------------------------------


def test_another_provider_is_unknown_to_the_client(secured):
    body = post(
        secured,
        '{ contacts(provider: "revyops", first: 1) { edges { node { id } } } }',
        X_API_Key=READER_KEY,
    ).json()
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "configured providers: attio, haste." in error["message"]
    assert "basicsos" not in error["message"]


def test_a_node_of_another_provider_is_null(secured):
    query = "query($id: ID!) { node(id: $id) { id } }"
    listed = post(
        secured,
        '{ contacts(provider: "revyops", first: 1) { edges { node { id } } } }',
        X_API_Key=WRITER_KEY,
    ).json()
    revyops_id = listed["data"]["contacts"]["edges"][0]["node"]["id"]
    assert post(secured, query, {"id": revyops_id}, X_API_Key=WRITER_KEY).json()["data"] == {
        "node": {"id": revyops_id}
    }
    # As the README promises: null, like an id that names nothing, with no error.
    for value in (revyops_id, raw_id("Contact:nope:1")):
        body = post(secured, query, {"id": value}, X_API_Key=READER_KEY).json()
        assert (body["data"], body.get("errors")) == ({"node": None}, None)
    body = post(
        secured,
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
        {"ids": [revyops_id]},
        X_API_Key=READER_KEY,
    ).json()
    assert (body["data"], body.get("errors")) == ({"nodes": [None]}, None)


# --- the write scope and the audit line -----------------------------------------------------


def test_a_write_without_the_write_scope_is_forbidden_and_not_sent(secured, upstreams, caplog):
    caplog.set_level(logging.INFO, logger="gateway.audit")
    before = emulator_requests(upstreams["haste"])
    body = post(
        secured,
        CREATE_CONTACT,
        {"input": {"provider": "haste", "firstName": "Never", "lastName": "Sent"}},
        X_API_Key=READER_KEY,
    ).json()
    assert body["data"] == {"createContact": None}
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "FORBIDDEN"}
    assert emulator_requests(upstreams["haste"]) == before
    (line,) = [r.audit for r in caplog.records if r.name == "gateway.audit"]
    assert line == {
        "client": "reader",
        "provider": None,
        "operation": "createContact",
        "ids": [],
        "outcome": "FORBIDDEN",
    }


def test_every_write_logs_one_audit_line_without_values(secured, caplog):
    caplog.set_level(logging.INFO, logger="gateway.audit")
    secret_name = "Zebulon-Not-In-Logs"
    created = post(
        secured,
        CREATE_CONTACT,
        {"input": {"provider": "haste", "firstName": secret_name, "email": "z@example.net"}},
        X_API_Key=WRITER_KEY,
    ).json()["data"]["createContact"]
    assert created["userErrors"] == []
    contact = created["contact"]
    deleted = post(secured, DELETE_CONTACT, {"id": contact["id"]}, X_API_Key=WRITER_KEY).json()
    assert deleted["data"]["deleteContact"]["deletedId"] == contact["id"]
    again = post(secured, DELETE_CONTACT, {"id": contact["id"]}, X_API_Key=WRITER_KEY).json()
    assert again["data"]["deleteContact"]["userErrors"]
    lines = [r for r in caplog.records if r.name == "gateway.audit"]
    assert [r.audit for r in lines] == [
        {
            "client": "writer",
            "provider": "haste",
            "operation": "createContact",
            "ids": [contact["remoteId"]],
            "outcome": "ok",
        },
        {
            "client": "writer",
            "provider": "haste",
            "operation": "deleteContact",
            "ids": [contact["remoteId"]],
            "outcome": "ok",
        },
        {
            "client": "writer",
            "provider": "haste",
            "operation": "deleteContact",
            "ids": [contact["remoteId"]],
            "outcome": "userErrors",
        },
    ]
    for record in lines:
        message = record.getMessage()
        assert "\n" not in message
        assert json.loads(message.removeprefix("write ")) == record.audit
        assert secret_name not in message
        assert "z@example.net" not in message
        assert WRITER_KEY not in message


# --- JWT bearer tokens ---------------------------------------------------------------------


def test_rs256_token_of_a_configured_client(secured):
    good = token(RSA_1, "rsa-1", azp="svc-known", scope="openid read write")
    assert names(post(secured, PROVIDERS_QUERY, Authorization=f"Bearer {good}")) == ["haste"]


def test_es256_token_of_an_unlisted_client_gets_the_jwt_defaults(secured):
    good = token(EC_1, "ec-1", azp="svc-other", scope="read")
    assert names(post(secured, PROVIDERS_QUERY, Authorization=f"Bearer {good}")) == ["revyops"]


def test_a_token_claiming_an_api_key_client_is_refused(secured, upstreams):
    # "writer" is an API-key client with the write scope: its name is not a way in.
    claimed = token(RSA_1, "rsa-1", azp="writer", scope="read write")
    before = emulator_requests(upstreams["haste"])
    response = post(
        secured,
        CREATE_CONTACT,
        {"input": {"provider": "haste", "firstName": "Impostor"}},
        Authorization=f"Bearer {claimed}",
    )
    assert_refused(response, invalid_token=True)
    assert emulator_requests(upstreams["haste"]) == before


def test_the_scopes_claim_narrows_what_a_token_may_do(secured, upstreams):
    read_only = token(RSA_1, "rsa-1", azp="svc-known", scope="read")
    before = emulator_requests(upstreams["haste"])
    body = post(
        secured,
        CREATE_CONTACT,
        {"input": {"provider": "haste", "firstName": "No"}},
        Authorization=f"Bearer {read_only}",
    ).json()
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert emulator_requests(upstreams["haste"]) == before
    writer = token(RSA_1, "rsa-1", azp="svc-known", scope="write")
    body = post(
        secured,
        CREATE_CONTACT,
        {"input": {"provider": "haste", "firstName": "Yes"}},
        Authorization=f"Bearer {writer}",
    ).json()
    assert body["data"]["createContact"]["userErrors"] == []


def test_a_token_without_any_scope_of_the_gateway_is_403(secured):
    bare = token(RSA_1, "rsa-1", azp="svc-known", scope="openid profile")
    response = post(secured, PROVIDERS_QUERY, Authorization=f"Bearer {bare}")
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == CHALLENGE + ', error="insufficient_scope"'
    assert response.json()["errors"][0]["extensions"] == {"code": "FORBIDDEN"}


def _public_pem() -> bytes:
    return RSA_1.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda: token(RSA_1, "rsa-1", azp="svc", iss="https://evil.test/"), id="iss"),
        pytest.param(lambda: token(RSA_1, "rsa-1", azp="svc", aud="someone-else"), id="aud"),
        pytest.param(lambda: token(EC_1, "ec-1", azp="svc", exp=int(time.time()) - 3600), id="exp"),
        pytest.param(lambda: token(RSA_1, "rsa-1", azp="svc", exp=None), id="no-exp"),
        pytest.param(lambda: token(RSA_1, "rsa-1", scope="read"), id="no-client-claim"),
        pytest.param(lambda: token(rsa_key(), "rsa-1", azp="svc"), id="other-key"),
        pytest.param(lambda: token(RSA_1, "unknown-kid", azp="svc"), id="unknown-kid"),
        pytest.param(
            lambda: forged({"alg": "none", "kid": "rsa-1"}, claims(azp="svc"), None), id="none"
        ),
        pytest.param(
            lambda: forged({"alg": "HS256", "kid": "rsa-1"}, claims(azp="svc"), _public_pem()),
            id="hs256-with-the-public-key",
        ),
        pytest.param(
            lambda: jwt.encode(
                claims(azp="svc"), RSA_1, algorithm="RS512", headers={"kid": "rsa-1"}
            ),
            id="rs512",
        ),
        pytest.param(
            lambda: jwt.encode(
                claims(azp="svc"), EC_1, algorithm="ES256", headers={"kid": "rsa-1"}
            ),
            id="es256-under-an-rsa-kid",
        ),
    ],
)
def test_an_invalid_token_is_401(secured, bad):
    assert_refused(
        post(secured, PROVIDERS_QUERY, Authorization=f"Bearer {bad()}"), invalid_token=True
    )


def test_a_rotated_key_file_is_reread(secured, jwks_file):
    original = jwks_file.read_text()
    rsa_2 = rsa_key()
    try:
        jwks_file.write_text(json.dumps({"keys": [public_jwk(rsa_2, "rsa-2")]}))
        new = token(rsa_2, "rsa-2", azp="svc-known", scope="read")
        assert names(post(secured, PROVIDERS_QUERY, Authorization=f"Bearer {new}")) == ["haste"]
        old = token(RSA_1, "rsa-1", azp="svc-known", scope="read")
        assert_refused(
            post(secured, PROVIDERS_QUERY, Authorization=f"Bearer {old}"), invalid_token=True
        )
    finally:
        jwks_file.write_text(original)


class JwksServer:
    """The issuer's JWKS endpoint, counting fetches."""

    def __init__(self) -> None:
        self.jwks: dict[str, Any] = {"keys": []}
        self.fetches = 0
        self.app = FastAPI()
        self.app.get("/.well-known/jwks.json")(self.serve)

    async def serve(self) -> dict[str, Any]:
        self.fetches += 1
        return self.jwks


def test_keys_from_a_jwks_url_are_cached_and_refreshed_on_rotation(upstreams):
    issuer = JwksServer()
    key_a, key_b = rsa_key(), ec_key()
    issuer.jwks = {"keys": [public_jwk(key_a, "a")]}
    with ServerThread(issuer.app) as jwks_server:
        settings = Settings.model_validate(
            {
                "providers": provider_list(upstreams),
                "auth": {
                    "jwt": {
                        "issuer": ISSUER,
                        "audience": AUDIENCE,
                        "jwks_url": f"{jwks_server.url}/.well-known/jwks.json",
                        "client_claim": "client_id",
                        "scopes_claim": "scp",
                        "providers": ["attio"],
                        "jwks_min_refresh_seconds": 0,
                    }
                },
            }
        )
        with ServerThread(create_app(settings)) as server:
            first = token(key_a, "a", client_id="bff", scp=["read"])
            for _ in range(3):
                assert names(
                    post(server.url, PROVIDERS_QUERY, Authorization=f"Bearer {first}")
                ) == ["attio"]
            assert issuer.fetches == 1
            # `azp` is not the configured client claim here.
            wrong_claim = token(key_a, "a", azp="bff", scp=["read"])
            assert_refused(
                post(server.url, PROVIDERS_QUERY, Authorization=f"Bearer {wrong_claim}"),
                invalid_token=True,
            )
            # A list-valued scopes claim without a gateway scope.
            no_scope = token(key_a, "a", client_id="bff", scp=["admin"])
            assert (
                post(server.url, PROVIDERS_QUERY, Authorization=f"Bearer {no_scope}").status_code
                == 403
            )

            issuer.jwks = {"keys": [public_jwk(key_b, "b")]}
            rotated = token(key_b, "b", client_id="bff", scp=["read"])
            assert names(post(server.url, PROVIDERS_QUERY, Authorization=f"Bearer {rotated}")) == [
                "attio"
            ]
            assert_refused(
                post(server.url, PROVIDERS_QUERY, Authorization=f"Bearer {first}"),
                invalid_token=True,
            )
            # An API key never matches when no [[clients]] are configured.
            assert_refused(
                post(server.url, PROVIDERS_QUERY, X_API_Key=READER_KEY), invalid_token=True
            )


# --- an open gateway ---------------------------------------------------------------------


def test_without_clients_the_gateway_stays_open(upstreams, caplog):
    caplog.set_level(logging.INFO, logger="gateway.audit")
    with ServerThread(create_app(Settings(providers=provider_list(upstreams)))) as server:
        assert len(names(post(server.url, PROVIDERS_QUERY))) == 4
        body = post(
            server.url, CREATE_CONTACT, {"input": {"provider": "haste", "firstName": "Open"}}
        ).json()
        assert body["data"]["createContact"]["userErrors"] == []
    (line,) = [r.audit for r in caplog.records if r.name == "gateway.audit"]
    assert line["client"] is None
    assert line["outcome"] == "ok"

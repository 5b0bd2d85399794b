"""Subscriptions over real sockets: graphql-transport-ws and multipart HTTP. Changes are the
gateway's own writes (sent through it over HTTP): each reaches the subscribers with its
global id, kind, source and record; filters, clients' providers, the per-client cap,
origins, message size, cost and token expiry hold."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from websockets.exceptions import ConnectionClosed, InvalidStatus

from gateway.app import create_app
from gateway.servers import ServerThread, emulator_servers
from gateway.settings import Settings
from tests.support.clients import GraphQLClient
from tests.support.servers import demo_providers
from tests.support.subscribing import multipart, open_subscriptions, socket, wait_open

pytestmark = pytest.mark.integration

WRITER = "writer-key-0123456789abcdef"
HASTE_ONLY = "haste-only-key-0123456789abcdef"
ISSUER, AUDIENCE = "https://id.example.test/", "crm-gateway-test"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CAP = 3
EVENT = """subscription($providers: [String!], $types: [RecordType!]) {
  recordChanged(providers: $providers, types: $types) {
    provider kind id type source at
    record { ... on Contact { id lastName } ... on Company { id name } }
  }
}"""
UPDATE_CONTACT = """mutation($id: ID!, $name: String!) {
  updateContact(input: {id: $id, lastName: $name}) { userErrors { message } }
}"""


def keyed(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


class Clock:
    """POSIX time, moved by the tests that need a token to expire soon."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


CLOCK = Clock()


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    jwks = tmp_path_factory.mktemp("jwks") / "jwks.json"
    public = RSAAlgorithm.to_jwk(KEY.public_key(), as_dict=True)
    jwks.write_text(json.dumps({"keys": [{**public, "kid": "k", "use": "sig"}]}))
    with ExitStack() as exits:
        urls = emulator_servers(exits, ["attio", "haste"])
        settings = Settings.model_validate(
            {
                "providers": demo_providers(urls),
                "subscriptions": True,
                "max_subscriptions_per_client": CAP,
                "cors_origins": ["http://allowed.test"],
                "clients": [
                    client("writer", WRITER, ["*"], ["read", "write"]),
                    client("haste-only", HASTE_ONLY, ["haste"], ["read"]),
                ],
                "auth": {"jwt": jwt_settings(jwks)},
            }
        )
        server = exits.enter_context(ServerThread(create_app(settings, clock=CLOCK)))
        yield server.url


def client(name: str, key: str, providers: list[str], scopes: list[str]) -> dict[str, Any]:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return {"name": name, "api_key_sha256": digest, "providers": providers, "scopes": scopes}


def jwt_settings(jwks: Path) -> dict[str, Any]:
    return {
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "jwks_file": str(jwks),
        "providers": ["haste"],
        "leeway": 0,
    }


def token(seconds: int) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + seconds, "azp": "svc"}
    return jwt.encode(claims, KEY, algorithm="RS256", headers={"kid": "k"})


def as_writer(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """The answer to `query`, sent over HTTP by the client that may write."""
    http = GraphQLClient(url)
    http.http.headers.update(keyed(WRITER))
    with http.http:
        return http.post(query, variables)


def written(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    body = as_writer(url, query, variables)
    assert "errors" not in body, body["errors"]
    data: dict[str, Any] = body["data"]
    return data


def first_id(url: str, plural: str, provider: str) -> str:
    data = written(
        url, f'{{ {plural}(provider: "{provider}", first: 1) {{ edges {{ node {{ id }} }} }} }}'
    )
    value: str = data[plural]["edges"][0]["node"]["id"]
    return value


def rename_contact(url: str, global_id: str, name: str) -> None:
    data = written(url, UPDATE_CONTACT, {"id": global_id, "name": name})
    assert data["updateContact"]["userErrors"] == []


async def test_a_write_reaches_the_subscriber_with_its_record(url: str) -> None:
    contact = first_id(url, "contacts", "attio")
    async with socket(url, keyed(WRITER)) as ws:
        operation = await ws.subscribe(EVENT)
        wait_open(url, 1)
        rename_contact(url, contact, "Subscribed")
        event = await ws.event(operation)
        assert event["id"] == contact
        assert (event["provider"], event["kind"], event["type"]) == ("attio", "UPDATED", "CONTACT")
        assert event["source"] == "GATEWAY"
        assert event["record"] == {"id": contact, "lastName": "Subscribed"}
        await ws.complete(operation)
    wait_open(url, 0)


async def test_a_created_then_deleted_contact(url: str) -> None:
    create = """mutation { createContact(input: {provider: "haste", firstName: "Live",
        lastName: "Wire", email: "live.wire@example.com"}) { contact { id } } }"""
    async with socket(url, keyed(WRITER)) as ws:
        operation = await ws.subscribe(EVENT, {"types": ["CONTACT"]})
        wait_open(url, 1)
        created = written(url, create)["createContact"]["contact"]["id"]
        event = await ws.event(operation)
        assert (event["id"], event["kind"], event["record"]["lastName"]) == (
            created,
            "CREATED",
            "Wire",
        )
        deleted = written(
            url,
            "mutation($id: ID!) { deleteContact(input: {id: $id}) { deletedId } }",
            {"id": created},
        )
        assert deleted["deleteContact"]["deletedId"] == created
        event = await ws.event(operation)
        assert (event["id"], event["kind"], event["record"]) == (created, "DELETED", None)


async def test_filters_by_provider_and_type(url: str) -> None:
    attio_contact = first_id(url, "contacts", "attio")
    haste_contact = first_id(url, "contacts", "haste")
    async with socket(url, keyed(WRITER)) as ws:
        by_provider = await ws.subscribe(EVENT, {"providers": ["haste"]})
        by_type = await ws.subscribe(EVENT, {"types": ["COMPANY"]})
        wait_open(url, 2)
        rename_contact(url, attio_contact, "Unheard")
        rename_contact(url, haste_contact, "Heard")
        assert (await ws.event(by_provider))["id"] == haste_contact
        company = first_id(url, "companies", "haste")
        renamed = written(
            url,
            'mutation($id: ID!) { updateCompany(input: {id: $id, name: "Filtered"}) { company { name } } }',
            {"id": company},
        )
        assert renamed["updateCompany"]["company"]["name"] == "Filtered"
        event = await ws.event(by_type)
        assert (event["id"], event["record"]["name"]) == (company, "Filtered")


async def test_a_client_hears_only_its_own_providers(url: str) -> None:
    async with socket(url, keyed(HASTE_ONLY)) as ws:
        refused = await ws.message(await ws.subscribe(EVENT, {"providers": ["attio"]}))
        assert refused["type"] == "error"
        assert refused["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        operation = await ws.subscribe(EVENT)
        wait_open(url, 1)
        rename_contact(url, first_id(url, "contacts", "attio"), "Elsewhere")
        haste_contact = first_id(url, "contacts", "haste")
        rename_contact(url, haste_contact, "Here")
        assert (await ws.event(operation))["id"] == haste_contact


async def test_the_cap_counts_a_clients_subscriptions_across_connections(url: str) -> None:
    async with socket(url, keyed(HASTE_ONLY)) as one, socket(url, keyed(HASTE_ONLY)) as two:
        held = [await one.subscribe(EVENT) for _ in range(CAP - 1)]
        await two.subscribe(EVENT)
        wait_open(url, CAP)
        refused = await one.message(await one.subscribe(EVENT))
        assert refused["type"] == "error"
        assert refused["payload"][0]["extensions"] == {
            "code": "TOO_MANY_SUBSCRIPTIONS",
            "limit": CAP,
        }
        async with socket(url, keyed(WRITER)) as other:  # another client is not counted
            await other.subscribe(EVENT)
            wait_open(url, CAP + 1)
        await one.complete(held[0])
        wait_open(url, CAP - 1)
        await one.subscribe(EVENT)
        wait_open(url, CAP)
    wait_open(url, 0)


async def test_credentials_from_connection_init_or_refused(url: str) -> None:
    async with socket(url, {"authorization": f"Bearer {WRITER}"}) as ws:
        operation = await ws.subscribe(EVENT)
        wait_open(url, 1)
        await ws.complete(operation)
    with pytest.raises(ConnectionClosed) as closed:
        async with socket(url, {"X-API-Key": "not-a-key"}):
            pass
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403


async def test_an_expired_token_ends_the_subscription(url: str) -> None:
    # The token's 600 s seem to leave five: room for a busy machine between making the token
    # and the gateway reading its expiry, which must still be ahead then.
    CLOCK.offset = 600 - 5.0
    try:
        async with socket(url, {"Authorization": f"Bearer {token(600)}"}) as ws:
            operation = await ws.subscribe(EVENT)
            ended = await ws.message(operation)
            assert ended["type"] == "next"
            assert ended["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
            assert "expired" in ended["payload"]["errors"][0]["message"]
            assert (await ws.message(operation))["type"] == "complete"
    finally:
        CLOCK.offset = 0
    wait_open(url, 0)


@pytest.mark.parametrize(
    ("origin", "accepted"),
    [("http://allowed.test", True), ("http://evil.test", False), (None, True)],
)
async def test_a_browser_origin_must_be_allowed(
    url: str, origin: str | None, accepted: bool
) -> None:
    if accepted:
        async with socket(url, keyed(WRITER), origin=origin):
            return
    with pytest.raises(InvalidStatus) as refused:
        async with socket(url, keyed(WRITER), origin=origin):
            pass
    assert refused.value.response.status_code == 403


async def test_a_message_larger_than_a_body_closes_the_connection(url: str) -> None:
    async with socket(url, keyed(WRITER)) as ws:
        await ws.subscribe(EVENT, {"padding": "x" * 1_100_000})
        with pytest.raises(ConnectionClosed) as closed:
            await ws.message("1")
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009


async def test_a_costly_selection_is_refused_per_event(url: str) -> None:
    costly = """subscription { recordChanged { record { ... on Company {
        contacts(first: 100) { edges { node { deals(first: 100) { totalCount } } } } } } } }"""
    async with socket(url, keyed(WRITER)) as ws:
        refused = await ws.message(await ws.subscribe(costly))
    assert refused["type"] == "error"
    assert refused["payload"][0]["extensions"]["code"] == "OPERATION_TOO_COSTLY"
    wait_open(url, 0)


async def test_a_multipart_subscription_over_http(url: str) -> None:
    contact = first_id(url, "contacts", "haste")
    async with multipart(url, EVENT, keyed(WRITER)) as stream:
        assert stream.response.headers["content-type"].startswith("multipart/mixed")
        wait_open(url, 1)
        rename_contact(url, contact, "Streamed")
        event = (await stream.payload())["data"]["recordChanged"]
        assert (event["id"], event["source"], event["record"]["lastName"]) == (
            contact,
            "GATEWAY",
            "Streamed",
        )
    wait_open(url, 0)


def test_a_subscription_over_plain_http_says_how_to_send_it(url: str) -> None:
    body = as_writer(url, EVENT)
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert "graphql-transport-ws" in body["errors"][0]["message"]
    assert open_subscriptions(url) == 0

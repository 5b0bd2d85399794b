"""Persisted documents over real HTTP: Apollo's automatic persisted queries as Apollo
Client's persisted-queries link speaks them, and trusted documents from a manifest with
`persisted_only`."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.cli import main
from gateway.configerrors import ConfigError
from gateway.endpoint import GRAPHQL_RESPONSE_JSON as GQL
from gateway.endpoint import JSON_MEDIA as JSON
from gateway.servers import RedisProcess, ServerThread
from gateway.settings import Settings
from tests.support.clients import GraphQLClient, answer
from tests.support.servers import demo_providers, serving

pytestmark = pytest.mark.integration

# What Apollo Client 3 (`*/*`) and 4 send as Accept.
ACCEPTS = {"apollo3": "*/*", "apollo4": f"{GQL},{JSON};q=0.9"}
NOT_FOUND = [
    {"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}
]
LIST = """query ListContacts($first: Int!) {
  contacts(provider: "haste", first: $first) { edges { node { remoteId } } }
}"""
DELETE = 'mutation DeleteOne { deleteContact(input: {id: "Q29udGFjdDpoYXN0ZTp4"}) { deletedId } }'
WEB_KEY = "web-key-0123456789abcdef"
TOOLS_KEY = "tools-key-0123456789abcdef"
serial = itertools.count()


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def extensions(text: str, version: object = 1) -> dict[str, Any]:
    return {"persistedQuery": {"version": version, "sha256Hash": sha256(text)}}


def fresh_list() -> tuple[str, str]:
    """A list query no test has sent yet (the store is the session gateway's), and its name."""
    name = f"ListContacts{next(serial)}"
    return LIST.replace("ListContacts", name), name


def send(
    url: str, method: str, body: dict[str, Any], accept: str = JSON, **headers: str
) -> httpx.Response:
    """`body` as Apollo's HttpLink sends it: JSON in a POST, or each parameter in the URL
    (`variables` and `extensions` as JSON) for a GET."""
    headers = {"Accept": accept, **headers}
    if method == "POST":
        return httpx.post(f"{url}/graphql", json=body, headers=headers, timeout=30)
    params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
    return httpx.get(f"{url}/graphql", params=params, headers=headers, timeout=30)


def error_codes(response: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json()["errors"]]


@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize("client", list(ACCEPTS))
def test_the_apq_round_trip_as_apollo_clients_link_sends_it(
    gateway: GraphQLClient, method: str, client: str
) -> None:
    query, name = fresh_list()
    accept = ACCEPTS[client]
    hashed = {"operationName": name, "variables": {"first": 2}, "extensions": extensions(query)}
    first = send(gateway.url, method, hashed, accept)
    # 200 under either media type, as Apollo Server answers: no client's error handling hides it.
    assert first.status_code == 200, first.text
    assert first.json() == {"errors": NOT_FOUND}
    # The link sends the text with its hash, always by POST.
    registered = send(gateway.url, "POST", {**hashed, "query": query}, accept)
    assert registered.status_code == 200, registered.text
    data = registered.json()["data"]
    assert len(data["contacts"]["edges"]) == 2
    again = send(gateway.url, method, hashed, accept)
    assert again.status_code == 200, again.text
    assert answer(again.json()) == {"data": data}


def test_the_apq_round_trip_as_urqls_persisted_exchange_sends_it(gateway: GraphQLClient) -> None:
    # preferGetForPersistedQueries: GETs throughout, the retry marked `miss` with the text.
    query, name = fresh_list()
    accept = f"{GQL}, application/graphql+json, {JSON}, text/event-stream, multipart/mixed"
    hashed = {"operationName": name, "variables": {"first": 1}, "extensions": extensions(query)}
    assert send(gateway.url, "GET", hashed, accept).json() == {"errors": NOT_FOUND}
    missed = extensions(query)
    missed["persistedQuery"]["miss"] = True
    retry = send(gateway.url, "GET", {**hashed, "query": query, "extensions": missed}, accept)
    assert retry.status_code == 200, retry.text
    assert "errors" not in retry.json()
    again = send(gateway.url, "GET", hashed, accept)
    assert answer(again.json()) == answer(retry.json())


@pytest.mark.parametrize("accept", [GQL, JSON])
def test_a_hash_that_is_not_the_texts_is_refused_and_nothing_is_kept(
    gateway: GraphQLClient, accept: str
) -> None:
    query, _ = fresh_list()
    other, _ = fresh_list()
    body = {"query": query, "variables": {"first": 1}, "extensions": extensions(other)}
    response = send(gateway.url, "POST", body, accept)
    assert response.status_code == 400
    assert error_codes(response) == ["PERSISTED_QUERY_HASH_MISMATCH"]
    for text in (query, other):
        hashed = {"variables": {"first": 1}, "extensions": extensions(text)}
        assert send(gateway.url, "POST", hashed).json() == {"errors": NOT_FOUND}


def test_an_unknown_protocol_version_is_refused(gateway: GraphQLClient) -> None:
    query, _ = fresh_list()
    body = {"query": query, "variables": {"first": 1}, "extensions": extensions(query, 2)}
    response = send(gateway.url, "POST", body)
    assert response.status_code == 400
    assert error_codes(response) == ["BAD_REQUEST"]
    assert "version" in response.json()["errors"][0]["message"]


def test_a_document_that_did_not_validate_is_not_kept(gateway: GraphQLClient) -> None:
    invalid = f"query Invalid{next(serial)} {{ noSuchField }}"
    body = {"query": invalid, "extensions": extensions(invalid)}
    assert error_codes(send(gateway.url, "POST", body)) == ["GRAPHQL_VALIDATION_FAILED"]
    assert send(gateway.url, "POST", {"extensions": extensions(invalid)}).json() == {
        "errors": NOT_FOUND
    }


def test_a_mutation_by_its_hash_over_get_is_still_405(gateway: GraphQLClient) -> None:
    mutation = DELETE.replace("DeleteOne", f"DeleteOne{next(serial)}")
    ran = send(gateway.url, "POST", {"query": mutation, "extensions": extensions(mutation)})
    assert error_codes(ran) == ["BAD_USER_INPUT"]  # an impossible id: nothing sent upstream
    response = send(gateway.url, "GET", {"extensions": extensions(mutation)})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert error_codes(response) == ["METHOD_NOT_ALLOWED"]


# Trusted documents, persisted_only.


def manifest() -> dict[str, Any]:
    operations = [
        {"id": sha256(LIST), "name": "ListContacts", "type": "query", "body": LIST},
        {"id": sha256(DELETE), "name": "DeleteOne", "type": "mutation", "body": DELETE},
    ]
    return {"format": "apollo-persisted-query-manifest", "version": 1, "operations": operations}


@pytest.fixture(scope="module")
def trusted(emulators: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("manifest") / "persisted-query-manifest.json"
    path.write_text(json.dumps(manifest()))
    clients = [
        {"name": "web", "api_key_sha256": sha256(WEB_KEY)},
        {"name": "tools", "api_key_sha256": sha256(TOOLS_KEY), "scopes": ["read", "ad_hoc"]},
    ]
    settings = Settings(
        providers=demo_providers({"haste": emulators["haste"]}),
        clients=clients,
        persisted_documents=path,
        persisted_only=True,
        graphiql=True,
    )
    with ServerThread(create_app(settings)) as server:
        yield server.url


def web(key: str = WEB_KEY) -> dict[str, str]:
    return {"X-API-Key": key}


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("POST", {"documentId": f"sha256:{sha256(LIST)}"}),
        ("GET", {"documentId": f"sha256:{sha256(LIST)}"}),
        ("POST", {"extensions": extensions(LIST)}),
        ("GET", {"extensions": extensions(LIST)}),
        ("POST", {"query": LIST}),  # the manifest's own text
    ],
    ids=["post-id", "get-id", "post-hash", "get-hash", "post-text"],
)
def test_a_client_runs_the_manifests_documents(trusted: str, method: str, body: Any) -> None:
    # `*/*`, as Apollo Client 3 sends it: with GraphiQL on, still an operation, not the page.
    response = send(trusted, method, {**body, "variables": {"first": 1}}, "*/*", **web())
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]["contacts"]["edges"]) == 1


def test_persisted_only_refuses_any_other_document(trusted: str) -> None:
    ad_hoc = '{ contacts(provider: "haste", first: 1) { totalCount } }'
    for body in ({"query": ad_hoc}, {"query": ad_hoc, "extensions": extensions(ad_hoc)}):
        response = send(trusted, "POST", body, GQL, **web())
        assert response.status_code == 403
        assert error_codes(response) == ["PERSISTED_QUERY_NOT_IN_LIST"]
    # Registered by nobody it may trust: the hash is unknown to it.
    assert send(trusted, "POST", {"extensions": extensions(ad_hoc)}, **web()).json() == {
        "errors": NOT_FOUND
    }


def test_a_client_with_the_ad_hoc_scope_sends_any_document(trusted: str) -> None:
    query, _ = fresh_list()
    body = {"query": query, "variables": {"first": 1}, "extensions": extensions(query)}
    assert "data" in send(trusted, "POST", body, **web(TOOLS_KEY)).json()
    hashed = {"variables": {"first": 1}, "extensions": extensions(query)}
    assert "data" in send(trusted, "GET", hashed, **web(TOOLS_KEY)).json()
    # What it registered is no trusted document for the others.
    assert send(trusted, "GET", hashed, **web()).json() == {"errors": NOT_FOUND}


def test_the_manifests_mutation_over_get_is_405(trusted: str) -> None:
    response = send(trusted, "GET", {"documentId": sha256(DELETE)}, **web())
    assert response.status_code == 405
    assert error_codes(response) == ["METHOD_NOT_ALLOWED"]


def test_graphiql_is_still_served_and_its_queries_still_need_a_key(trusted: str) -> None:
    page = httpx.get(f"{trusted}/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
    response = send(trusted, "POST", {"query": "{ __typename }"})
    assert response.status_code == 401


def test_operation_names_in_metrics_come_from_the_manifest(trusted: str) -> None:
    send(trusted, "POST", {"documentId": sha256(LIST), "variables": {"first": 1}}, **web())
    made_up = "query MadeUpName { __typename }"
    assert "data" in send(trusted, "POST", {"query": made_up}, **web(TOOLS_KEY)).json()
    metrics = httpx.get(f"{trusted}/metrics").text
    assert 'operation="ListContacts"' in metrics
    assert 'operation="other"' in metrics
    assert "MadeUpName" not in metrics


def test_a_bad_manifest_stops_start_up_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ops.json"
    path.write_text(json.dumps({"0" * 64: "{ __typename }"}))
    with pytest.raises(ConfigError, match=r"ops\.json: document '0{64}': the id is not"):
        create_app(Settings(persisted_documents=path))
    # `crm-gateway check` says so before anything is probed.
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'persisted_documents = "{path}"\n[[providers]]\nname = "crm"\nkind = "basicsos"\n'
        'base_url = "http://127.0.0.1:9"\ncredentials = { token = "bos_crm_x" }\n'
    )
    assert main(["check", "--config", str(config)]) == 2
    assert "ops.json: document" in capsys.readouterr().err
    with pytest.raises(ValueError, match="persisted_only needs persisted_documents"):
        Settings(persisted_only=True)


def test_replicas_share_registrations_through_redis(
    emulators: dict[str, str], redis_server: RedisProcess
) -> None:
    settings = Settings(
        providers=demo_providers({"haste": emulators["haste"]}),
        cursor_secret="test-cursor-secret-kQ3vX8wZ",
        redis_url=redis_server.url,
        redis_timeout=5.0,  # a busy machine must not make Redis look away
    )
    query, _ = fresh_list()
    hashed = {"variables": {"first": 1}, "extensions": extensions(query)}
    with serving(settings) as one, serving(settings) as two:
        assert "data" in send(one.url, "POST", {**hashed, "query": query}).json()
        assert "data" in send(two.url, "GET", hashed).json()

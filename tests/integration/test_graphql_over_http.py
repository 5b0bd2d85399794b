"""GraphQL over HTTP (the draft at graphql.github.io/graphql-over-http): media types,
status codes, and GraphQL-shaped refusals of requests that are not well-formed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gateway.endpoint import GRAPHQL_RESPONSE_JSON as GQL
from gateway.endpoint import JSON_MEDIA as JSON
from tests.support.clients import GraphQLClient, answer

pytestmark = pytest.mark.integration

VALID = "{ __typename }"
PARSE_ERROR = "{"
VALIDATION_ERROR = "{ noSuchField }"
COERCION = 'query Q($n: Int!) { contacts(provider: "revyops", first: $n) { totalCount } }'
# `contacts` of an unknown provider is a field error: the rest of the data survives.
PARTIAL = '{ __typename contacts(provider: "nope", first: 1) { totalCount } }'
MUTATION = 'mutation { deleteContact(id: "Q29udGFjdDpiYXNpY3NvczoxMjM0NQ==") { deletedId } }'


def post(url: str, body: Any, accept: str | None, **headers: str) -> httpx.Response:
    sent = {"Content-Type": "application/json", **headers}
    if accept is not None:
        sent["Accept"] = accept
    with httpx.Client(timeout=30) as client:
        request = client.build_request("POST", f"{url}/graphql", json=body, headers=sent)
        if accept is None:
            del request.headers["Accept"]
        return client.send(request)


def media(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0]


def refusal(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].endswith("charset=utf-8")
    body: dict[str, Any] = response.json()
    assert "data" not in body
    assert [e["extensions"]["code"] for e in body["errors"]] == [code]
    return body


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (GQL, GQL),
        (JSON, JSON),
        ("*/*", JSON),
        (None, GQL),
        (f"{GQL}, {JSON}", GQL),
        (f"{GQL};q=0.5, {JSON}", JSON),
    ],
)
def test_the_response_media_type_follows_accept(
    gateway: GraphQLClient, accept: str | None, expected: str
) -> None:
    response = post(gateway.url, {"query": VALID}, accept)
    assert response.status_code == 200
    assert response.headers["content-type"] == f"{expected}; charset=utf-8"
    assert answer(response.json()) == {"data": {"__typename": "Query"}}


def test_an_accept_header_naming_neither_type_is_406(gateway: GraphQLClient) -> None:
    refusal(post(gateway.url, {"query": VALID}, "text/plain"), 406, "NOT_ACCEPTABLE")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"query": PARSE_ERROR}, "GRAPHQL_PARSE_FAILED"),
        ({"query": VALIDATION_ERROR}, "GRAPHQL_VALIDATION_FAILED"),
        ({"query": COERCION, "variables": {"n": None}}, "BAD_USER_INPUT"),
        ({"query": COERCION, "variables": {"n": "three"}}, "BAD_USER_INPUT"),
        ({"query": VALID, "operationName": "Missing"}, "OPERATION_RESOLUTION_FAILURE"),
        # Refused before it runs by the gateway's own limits.
        (
            {"query": "{ " + " ".join(f"a{i}: __typename" for i in range(60)) + " }"},
            "GRAPHQL_VALIDATION_FAILED",
        ),
    ],
    ids=["parse", "validation", "null-variable", "wrong-variable", "unknown-operation", "aliases"],
)
def test_request_errors_are_400_without_data_as_graphql_response_json(
    gateway: GraphQLClient, body: dict[str, Any], code: str
) -> None:
    response = post(gateway.url, body, GQL)
    assert media(response) == GQL
    refusal(response, 400, code)


@pytest.mark.parametrize(
    "body",
    [
        {"query": PARSE_ERROR},
        {"query": VALIDATION_ERROR},
        {"query": COERCION, "variables": {"n": None}},
        {"query": VALID, "operationName": "Missing"},
    ],
    ids=["parse", "validation", "null-variable", "unknown-operation"],
)
@pytest.mark.parametrize("accept", [JSON, "*/*"])
def test_request_errors_stay_200_as_application_json(
    gateway: GraphQLClient, body: dict[str, Any], accept: str
) -> None:
    response = post(gateway.url, body, accept)
    assert response.status_code == 200
    assert media(response) == JSON
    result = response.json()
    assert result["data"] is None
    assert result["errors"][0]["extensions"]["code"]


@pytest.mark.parametrize("accept", [GQL, JSON])
def test_field_errors_keep_200_and_the_partial_data(gateway: GraphQLClient, accept: str) -> None:
    response = post(gateway.url, {"query": PARTIAL}, accept)
    assert response.status_code == 200
    assert media(response) == accept
    body = response.json()
    assert body["data"] == {"__typename": "Query", "contacts": None}
    assert body["errors"][0]["path"] == ["contacts"]
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize("parameter", ["variables", "operationName", "extensions"])
@pytest.mark.parametrize("accept", [GQL, JSON])
def test_null_optional_parameters_are_as_good_as_absent(
    gateway: GraphQLClient, parameter: str, accept: str
) -> None:
    response = post(gateway.url, {"query": VALID, parameter: None}, accept)
    assert response.status_code == 200
    assert answer(response.json()) == {"data": {"__typename": "Query"}}


def test_an_empty_operation_name_is_as_good_as_none(gateway: GraphQLClient) -> None:
    response = post(gateway.url, {"query": VALID, "operationName": ""}, GQL)
    assert answer(response.json()) == {"data": {"__typename": "Query"}}


def test_a_named_operation_is_picked(gateway: GraphQLClient) -> None:
    body = {"query": "query A { a: __typename } query B { b: __typename }", "operationName": "B"}
    assert answer(post(gateway.url, body, GQL).json()) == {"data": {"b": "Query"}}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"qeury": VALID}, "`query`"),
        ({"query": {"obj": "ect"}}, "`query`"),
        ({"query": 0}, "`query`"),
        ({"query": False}, "`query`"),
        ({"query": ["array"]}, "`query`"),
        ({"query": VALID, "variables": "string"}, "`variables`"),
        ({"query": VALID, "variables": [7]}, "`variables`"),
        ({"query": VALID, "operationName": 0}, "`operationName`"),
        ({"query": VALID, "operationName": {"obj": "ect"}}, "`operationName`"),
        ({"query": VALID, "operationName": ["array"]}, "`operationName`"),
        ({"query": VALID, "extensions": "string"}, "`extensions`"),
    ],
)
@pytest.mark.parametrize("accept", [GQL, JSON])
def test_a_request_that_is_not_well_formed_is_a_graphql_shaped_400(
    gateway: GraphQLClient, body: dict[str, Any], words: str, accept: str
) -> None:
    response = post(gateway.url, body, accept)
    assert media(response) == accept
    message = refusal(response, 400, "BAD_REQUEST")["errors"][0]["message"]
    assert words in message


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"", "empty"), (b"NONSENSE", "not valid JSON"), (b'{"query":', "not valid JSON")],
)
def test_an_empty_or_malformed_body_is_a_graphql_shaped_400(
    gateway: GraphQLClient, content: bytes, words: str
) -> None:
    response = httpx.post(
        f"{gateway.url}/graphql",
        content=content,
        headers={"Content-Type": "application/json", "Accept": GQL},
    )
    assert words in refusal(response, 400, "BAD_REQUEST")["errors"][0]["message"]


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/graphql"]
)
def test_a_post_that_is_not_application_json_is_415(
    gateway: GraphQLClient, content_type: str | None
) -> None:
    headers = {"Accept": GQL} | ({"Content-Type": content_type} if content_type else {})
    response = httpx.post(f"{gateway.url}/graphql", content=b"{ __typename }", headers=headers)
    refusal(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_a_content_type_with_a_charset_is_accepted(gateway: GraphQLClient) -> None:
    response = post(
        gateway.url, {"query": VALID}, GQL, **{"Content-Type": "application/json; charset=utf-8"}
    )
    assert answer(response.json()) == {"data": {"__typename": "Query"}}


def test_queries_over_get_take_url_encoded_variables(gateway: GraphQLClient) -> None:
    query = (
        'query Q($n: Int!) { contacts(provider: "revyops", first: $n) { edges { node { id } } } }'
    )
    response = httpx.get(
        f"{gateway.url}/graphql",
        params={"query": query, "variables": '{"n": 2}'},
        headers={"Accept": GQL},
    )
    assert response.status_code == 200
    assert media(response) == GQL
    assert len(response.json()["data"]["contacts"]["edges"]) == 2


@pytest.mark.parametrize("accept", [GQL, JSON])
def test_a_mutation_over_get_is_405_and_not_executed(
    gateway: GraphQLClient, emulator_stats, accept: str
) -> None:
    before = emulator_stats("basicsos")
    response = httpx.get(
        f"{gateway.url}/graphql", params={"query": MUTATION}, headers={"Accept": accept}
    )
    refusal(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "POST"
    assert emulator_stats("basicsos") == before


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_other_methods_are_a_graphql_shaped_405(gateway: GraphQLClient, method: str) -> None:
    response = httpx.request(method, f"{gateway.url}/graphql", json={"query": VALID})
    refusal(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "GET, POST"


def test_utf8_is_assumed_and_answered(gateway: GraphQLClient) -> None:
    query = '{ contacts(provider: "Run🏃Swim🏊", first: 1) { totalCount } }'
    response = post(gateway.url, {"query": query}, GQL)
    assert response.status_code == 200
    assert "Run🏃Swim🏊" in response.json()["errors"][0]["message"]

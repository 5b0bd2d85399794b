"""Batched requests over real HTTP: an array body answered with an array, each item on its
own, within `max_batch`; writes in the order sent."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from gateway.endpoint import GRAPHQL_RESPONSE_JSON as GQL
from gateway.endpoint import JSON_MEDIA as JSON
from gateway.servers import emulator_servers
from tests.support.clients import GraphQLClient, answer
from tests.support.servers import client_on

pytestmark = pytest.mark.integration

LIST = """query List($first: Int!) {
  contacts(provider: "haste", first: $first) { edges { node { id lastName } } }
}"""
UPDATE = """mutation Rename($input: UpdateContactInput!) {
  updateContact(input: $input) { contact { lastName } userErrors { message } }
}"""
NODE = "query Read($id: ID!) { node(id: $id) { ... on Contact { lastName } } }"
# hasteCRM reads deals and notes per contact: 200 requests, over the default limit of 50.
TOO_COSTLY = """{ contacts(provider: "haste", first: 100) { edges { node {
  deals(first: 10) { edges { node { id } } } notes(first: 10) { edges { node { id } } }
} } } }"""


def post(url: str, body: Any, accept: str = JSON) -> httpx.Response:
    return httpx.post(f"{url}/graphql", json=body, headers={"Accept": accept}, timeout=30)


def codes(item: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in item.get("errors", [])]


@pytest.mark.parametrize("accept", [GQL, JSON])
def test_each_item_is_answered_in_its_place(gateway: GraphQLClient, accept: str) -> None:
    batch = [
        {"query": LIST, "variables": {"first": 2}},
        {"query": "{ noSuchField }"},
        {"query": 5},
        {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "f" * 64}}},
        {"query": TOO_COSTLY},
        {"query": "{ __typename }", "operationName": ""},
    ]
    response = post(gateway.url, batch, accept)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == f"{accept}; charset=utf-8"
    items = response.json()
    assert len(items) == len(batch)
    assert len(items[0]["data"]["contacts"]["edges"]) == 2
    assert [codes(item) for item in items[1:5]] == [
        ["GRAPHQL_VALIDATION_FAILED"],
        ["BAD_REQUEST"],
        ["PERSISTED_QUERY_NOT_FOUND"],
        ["OPERATION_TOO_COSTLY"],
    ]
    assert answer(items[5]) == {"data": {"__typename": "Query"}}
    # A request error has no data under graphql-response+json, null data under json.
    assert all(("data" in item) == (accept == JSON) for item in items[1:5])


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ([{"query": "{ __typename }"}] * 11, "1 to 10 JSON objects; this one has 11"),
        ([], "this one has 0"),
        ([{"query": "{ __typename }"}, "{ __typename }"], "must be a JSON object"),
    ],
    ids=["over-max-batch", "empty", "not-an-object"],
)
def test_a_batch_the_gateway_does_not_take_is_refused_whole(
    gateway: GraphQLClient, body: list[Any], says: str
) -> None:
    response = post(gateway.url, body)
    assert response.status_code == 400
    assert codes(response.json()) == ["BAD_REQUEST"]
    assert says in response.json()["errors"][0]["message"]


def test_each_item_counts_as_an_operation(gateway: GraphQLClient) -> None:
    def counted() -> float:
        metrics = httpx.get(f"{gateway.url}/metrics").text
        found = re.findall(r'operations_total\{operation="Counted",outcome="ok"\} (\S+)', metrics)
        return float(found[0]) if found else 0.0

    before = counted()
    assert post(gateway.url, [{"query": "query Counted { __typename }"}] * 3).status_code == 200
    assert counted() == before + 3


@pytest.fixture(scope="module")
def haste() -> Iterator[dict[str, Any]]:
    """A hasteCRM emulator of this module's own (it is written to), with a gateway of the
    default `max_batch` and one of `max_batch = 0`."""
    with ExitStack() as stack:
        urls = emulator_servers(stack, ("haste",))
        batching = stack.enter_context(client_on(urls))
        refusing = stack.enter_context(client_on(urls, max_batch=0))
        yield {"batching": batching.url, "refusing": refusing.url}


def test_writes_run_in_the_order_sent_and_later_items_read_them(haste: dict[str, Any]) -> None:
    url = haste["batching"]
    first = post(url, {"query": LIST, "variables": {"first": 1}}).json()
    contact = first["data"]["contacts"]["edges"][0]["node"]
    read = {"query": NODE, "variables": {"id": contact["id"]}}

    def rename(name: str) -> dict[str, Any]:
        return {"query": UPDATE, "variables": {"input": {"id": contact["id"], "lastName": name}}}

    items = post(url, [read, rename("Lovelace"), read, rename("Hopper"), read]).json()
    names = [item["data"]["node"]["lastName"] for item in items[0::2]]
    assert names == [contact["lastName"], "Lovelace", "Hopper"]
    assert [item["data"]["updateContact"]["userErrors"] for item in items[1::2]] == [[], []]


def test_max_batch_0_refuses_arrays_and_serves_objects(haste: dict[str, Any]) -> None:
    response = post(haste["refusing"], [{"query": "{ __typename }"}])
    assert response.status_code == 400
    assert "max_batch = 0" in response.json()["errors"][0]["message"]
    single = post(haste["refusing"], {"query": "{ __typename }"})
    assert answer(single.json()) == {"data": {"__typename": "Query"}}

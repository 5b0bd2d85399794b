"""Operation cost over HTTP: estimated before anything is sent, never below what is sent.

Every response carries `extensions.cost {estimated, actual}`; `actual` is checked against
the emulators' own request counters, and the estimate against `actual` over a corpus of
queries, cold and warm. An operation estimated above `max_operation_cost` is refused with
OPERATION_TOO_COSTLY and sends nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from gateway.servers import emulator_servers
from gateway.settings import Settings
from tests.support.clients import GraphQLClient
from tests.support.kinds import ALL_KINDS, WRITABLE_KINDS
from tests.support.servers import demo_providers, serving

pytestmark = pytest.mark.integration

KINDS = ALL_KINDS
LISTS = {
    "contacts": "Contact",
    "companies": "Company",
    "deals": "Deal",
    "notes": "Note",
}


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[dict[str, str], ExitStack]]:
    with ExitStack() as exits:
        urls = emulator_servers(exits, KINDS)
        yield urls, exits


def start(stack: tuple[dict[str, str], ExitStack], **settings: Any) -> GraphQLClient:
    urls, exits = stack
    config = Settings(
        providers=demo_providers(urls, cache_ttl=600),
        cursor_secret="test-cursor-secret-kQ3vX8wZ",
        **settings,
    )
    return exits.enter_context(serving(config))


STATS = httpx.Client(timeout=30)  # kept alive: the corpus reads the counters ~2,000 times


def teardown_module() -> None:
    STATS.close()


def sent(urls: dict[str, str]) -> int:
    return sum(STATS.get(f"{u}/_emulator/stats").json()["requests"] for u in urls.values())


def run(client: GraphQLClient, urls: dict[str, str], query: str, variables: Any = None) -> Any:
    before = sent(urls)
    body = client.post(query, variables)
    cost = body["extensions"]["cost"]
    assert cost["actual"] == sent(urls) - before, (query, variables, cost)
    return body, cost


def corpus(client: GraphQLClient, urls: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """Queries over every provider and entity: windows, nested links, nodes, filters."""
    items: list[tuple[str, dict[str, Any]]] = []
    for kind in KINDS:
        caps = client.data("{ providers { name capabilities { entities canPageBackward } } }")
        entry = next(p for p in caps["providers"] if p["name"] == kind)
        entities = entry["capabilities"]["entities"]
        for field, type_name in LISTS.items():
            if type_name.upper() not in entities:
                continue
            plain = f"query($p: String!, $f: Int, $l: Int, $a: String, $b: String) {{ {field}("
            plain += "provider: $p, first: $f, last: $l, after: $a, before: $b) {"
            plain += " edges { cursor node { id } } pageInfo { endCursor } } }"
            items += [
                (plain, {"p": kind, "f": 5}),
                (plain, {"p": kind, "f": 60}),
            ]
            if entry["capabilities"]["canPageBackward"]:
                items.append((plain, {"p": kind, "l": 7}))
            first = client.data(plain, {"p": kind, "f": 40})[field]
            edges = first["edges"]
            if len(edges) > 20:
                items.append((plain, {"p": kind, "f": 12, "a": edges[20]["cursor"]}))
                if entry["capabilities"]["canPageBackward"]:
                    items.append((plain, {"p": kind, "l": 9, "b": edges[20]["cursor"]}))
            counted = f"query($p: String!) {{ {field}(provider: $p, first: 3) {{ totalCount }} }}"
            items.append((counted, {"p": kind}))
            ids = [e["node"]["id"] for e in edges[:25]]
            items.append(
                (
                    "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Contact { name } } }",
                    {"ids": ids},
                )
            )
        nested = {
            "contacts": "name company { name domain } deals(first: 2) { edges { node { id } } }"
            " notes(first: 2) { edges { node { id } } }",
            "deals": "name company { name } contacts(first: 3) { edges { node { id } } }",
            "companies": "name contacts(first: 3) { edges { node { id company { id } } } }"
            " deals(first: 2) { edges { node { id } } }",
            "notes": "body target { id ... on Contact { name } ... on Deal { name } }",
        }
        for field, selection in nested.items():
            if LISTS[field].upper() not in entities:
                continue
            query = (
                f"query($p: String!, $f: Int) {{ {field}(provider: $p, first: $f) "
                f"{{ edges {{ node {{ id {selection} }} }} }} }}"
            )
            items += [(query, {"p": kind, "f": 4}), (query, {"p": kind, "f": 12})]
        inline = (
            "query($p: String!) { contacts(provider: $p, first: 20) "
            "{ edges { node { company { id name } } } } }"
        )
        items.append((inline, {"p": kind}))
        filtered = (
            "query($p: String!) { contacts(provider: $p, first: 10, "
            'filter: { name: { contains: "a" } }) { totalCount edges { node { id } } } }'
        )
        items.append((filtered, {"p": kind}))
    return items


def test_estimate_never_below_actual_cold_and_warm(
    stack: tuple[dict[str, str], ExitStack],
) -> None:
    urls, _ = stack
    client = start(stack, max_operation_cost=1_000_000)
    queries = corpus(client, urls)
    # A fresh gateway for the measured runs: the corpus building warmed the first one.
    client = start(stack, max_operation_cost=1_000_000)
    totals = {"estimated": 0, "actual": 0}
    for rounds in ("cold", "warm"):
        for query, variables in queries:
            body, cost = run(client, urls, query, variables)
            codes = [e["extensions"]["code"] for e in body.get("errors", [])]
            assert cost["estimated"] >= cost["actual"], (rounds, query, variables, cost, codes)
            totals["estimated"] += cost["estimated"]
            totals["actual"] += cost["actual"]
    assert totals["actual"] > 0
    ratio = totals["estimated"] / totals["actual"]
    print(f"cost corpus: {len(queries)} queries x2, {totals}, estimated/actual {ratio:.2f}")


def test_write_costs(stack: tuple[dict[str, str], ExitStack]) -> None:
    urls, _ = stack
    client = start(stack)
    for kind in KINDS:
        body, cost = run(
            client,
            urls,
            "mutation($p: String!) { createCompany(input: "
            '{ provider: $p, name: "Cost Co", domain: "cost.example" }) '
            "{ company { id name } userErrors { message } } }",
            {"p": kind},
        )
        assert cost["estimated"] >= cost["actual"], (kind, body, cost)
        if kind not in WRITABLE_KINDS:  # read-only: refused before anything is sent
            assert body["errors"][0]["extensions"]["code"] == "UNSUPPORTED"
            assert cost["actual"] == 0
            continue
        company = body["data"]["createCompany"]["company"]
        assert company is not None, (kind, body)
        body, cost = run(
            client,
            urls,
            'mutation($id: ID!) { updateCompany(input: { id: $id, name: "Cost Co 2" }) '
            "{ company { id name } } }",
            {"id": company["id"]},
        )
        assert cost["estimated"] >= cost["actual"] >= 1, (kind, body, cost)
        body, cost = run(
            client,
            urls,
            "mutation($id: ID!) { deleteCompany(input: { id: $id }) { deletedId } }",
            {"id": company["id"]},
        )
        assert cost["estimated"] >= cost["actual"] >= 1, (kind, body, cost)


def test_too_costly_is_refused_and_sends_nothing(
    stack: tuple[dict[str, str], ExitStack],
) -> None:
    urls, _ = stack
    client = start(stack, max_operation_cost=10)
    query = (
        '{ contacts(provider: "haste", first: 100) '
        "{ edges { node { name deals(first: 1) { edges { node { id } } } } } } }"
    )
    before = sent(urls)
    body = client.post(query)
    assert sent(urls) == before
    assert body["data"] is None
    error = body["errors"][0]
    assert error["extensions"]["code"] == "OPERATION_TOO_COSTLY"
    assert error["extensions"]["limit"] == 10
    assert error["extensions"]["estimated"] > 10
    assert body["extensions"]["cost"] == {
        "estimated": error["extensions"]["estimated"],
        "actual": 0,
    }
    # Within the limit, the same gateway answers, and says what it cost.
    small, cost = run(
        client, urls, '{ contacts(provider: "haste", first: 3) { edges { node { id } } } }'
    )
    assert "errors" not in small
    assert 1 <= cost["actual"] <= cost["estimated"] <= 10


def test_the_ways_past_the_limit_are_refused_over_http(
    stack: tuple[dict[str, str], ExitStack],
) -> None:
    # Nested lists behind an abstract fragment, with `first` a float variable: the plain
    # form is refused at the default limit, and so is this one, before anything is sent.
    urls, _ = stack
    client = start(stack)
    nested = "deals(first: 10) { edges { node { id } } } notes(first: 10) { edges { node { id } } }"
    query = (
        'query($f: Int) { contacts(provider: "haste", first: $f) { edges { node { ...Linked } } } }'
        f" fragment Linked on Record {{ ... on Contact {{ {nested} }} }}"
    )
    before = sent(urls)
    body = client.post(query, {"f": 100.0})
    assert sent(urls) == before
    [error] = body["errors"]
    assert error["extensions"]["code"] == "OPERATION_TOO_COSTLY"
    assert error["extensions"]["estimated"] > error["extensions"]["limit"] == 50


def test_every_response_carries_cost(stack: tuple[dict[str, str], ExitStack]) -> None:
    urls, _ = stack
    client = start(stack)
    for query in (
        "{ providers { name } }",
        "{ nope }",
        '{ contacts(provider: "x") { totalCount } }',
    ):
        _body, cost = run(client, urls, query)
        assert cost["actual"] == 0

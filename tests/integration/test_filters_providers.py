"""Filters on every provider that has them: the filtered walk equals the unfiltered walk
with the same predicate applied to the records themselves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.clients import GraphQLClient
from tests.support.walk import walk_field

pytestmark = pytest.mark.integration

LIST = """
query($p: String!, $filter: ContactFilter, $order: [ContactOrder!], $after: String) {
  contacts(provider: $p, first: 100, after: $after, filter: $filter, orderBy: $order) {
    edges { node { id remoteId firstName lastName createdAt company { id } } }
    pageInfo { hasNextPage endCursor }
  }
}"""
_everything: dict[str, list[dict[str, Any]]] = {}


def listed(
    client: GraphQLClient, provider: str, filter: Any = None, order: Any = None
) -> list[dict[str, Any]]:
    variables = {"p": provider, "filter": filter, "order": order}
    return walk_field(client, LIST, "contacts", variables).nodes


def everything(client: GraphQLClient, provider: str) -> list[dict[str, Any]]:
    if provider not in _everything:
        _everything[provider] = listed(client, provider)
    return _everything[provider]


Case = tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]
TEXT_CASES: list[Case] = [
    ({"lastName": {"neq": "Turing"}}, lambda n: n["lastName"] != "Turing"),
    ({"lastName": {"gt": "Stroustrup"}}, lambda n: n["lastName"] > "Stroustrup"),
    ({"lastName": {"lt": "Borg"}}, lambda n: n["lastName"] < "Borg"),
    ({"lastName": {"lte": "Allen"}}, lambda n: n["lastName"] <= "Allen"),
    ({"companyId": {"isNull": True}}, lambda n: n["company"] is None),
    ({"companyId": {"isNull": False}}, lambda n: n["company"] is not None),
    (
        {"createdAt": {"lt": "2024-01-03T00:00:00Z"}},
        lambda n: n["createdAt"] < "2024-01-03T00:00:00",
    ),
    ({"lastName": {"eq": "Turing"}}, lambda n: n["lastName"] == "Turing"),
    ({"lastName": {"startsWith": "ho"}}, lambda n: n["lastName"].lower().startswith("ho")),
    ({"firstName": {"contains": "RAC"}}, lambda n: "rac" in n["firstName"].lower()),
    ({"lastName": {"in": ["Knuth", "Liskov"]}}, lambda n: n["lastName"] in ("Knuth", "Liskov")),
    (
        {"or": [{"lastName": {"eq": "Knuth"}}, {"firstName": {"eq": "Ada"}}]},
        lambda n: n["lastName"] == "Knuth" or n["firstName"] == "Ada",
    ),
    (
        {
            "and": [
                {"lastName": {"gte": "T"}},
                {"or": [{"firstName": {"eq": "Ada"}}, {"firstName": {"eq": "Alan"}}]},
            ]
        },
        lambda n: n["lastName"] >= "T" and n["firstName"] in ("Ada", "Alan"),
    ),
]


@pytest.mark.parametrize("provider", ["attio", "redivis"])
@pytest.mark.parametrize(
    ("filter", "keep"), TEXT_CASES, ids=[str(i) for i in range(len(TEXT_CASES))]
)
def test_rich_filters(gateway, provider, filter, keep):
    expected = [n["remoteId"] for n in everything(gateway, provider) if keep(n)]
    assert expected
    assert [n["remoteId"] for n in listed(gateway, provider, filter)] == expected


def test_revyops_equality_ignores_case(gateway):
    expected = [
        n["remoteId"] for n in everything(gateway, "revyops") if n["lastName"].lower() == "turing"
    ]
    assert [
        n["remoteId"] for n in listed(gateway, "revyops", {"lastName": {"eq": "TURING"}})
    ] == expected


def test_haste_filters_and_orders(gateway):
    nodes = everything(gateway, "haste")
    company = next(n["company"]["id"] for n in nodes if n["company"])
    expected = [n["remoteId"] for n in nodes if (n["company"] or {}).get("id") == company]
    assert [
        n["remoteId"] for n in listed(gateway, "haste", {"companyId": {"eq": company}})
    ] == expected
    middle = sorted(n["createdAt"] for n in nodes)[len(nodes) // 2]
    later = [n["remoteId"] for n in nodes if n["createdAt"] >= middle]
    assert [
        n["remoteId"] for n in listed(gateway, "haste", {"createdAt": {"gte": middle}})
    ] == later
    ordered = listed(gateway, "haste", None, [{"field": "LAST_NAME", "direction": "DESC"}])
    names = [n["lastName"] for n in ordered]
    assert names == sorted(names, reverse=True)
    assert sorted(n["remoteId"] for n in ordered) == sorted(n["remoteId"] for n in nodes)
    body = gateway.post(LIST, {"p": "haste", "filter": {"lastName": {"eq": "Turing"}}})
    assert body["errors"][0]["extensions"]["code"] == "UNSUPPORTED"


def test_attio_orders_and_pages_backward_in_that_order(gateway):
    order = [{"field": "LAST_NAME", "direction": "DESC"}, {"field": "FIRST_NAME"}]
    forward = [n["remoteId"] for n in listed(gateway, "attio", {"lastName": {"gte": "S"}}, order)]
    query = LIST.replace("first: 100, after: $after", "last: 30, before: $before")
    query = query.replace("$after: String", "$before: String")
    query = query.replace("hasNextPage endCursor", "hasPreviousPage startCursor")
    variables = {"p": "attio", "filter": {"lastName": {"gte": "S"}}, "order": order}
    backward = walk_field(gateway, query, "contacts", variables, forward=False).ids()
    assert backward == forward
    assert len(forward) > 100


def test_haste_status_and_date_range(gateway):
    nodes = everything(gateway, "haste")
    statuses = listed(gateway, "haste", {"status": {"eq": "inactive"}})
    assert statuses
    assert len(statuses) < len(nodes)
    middle = sorted(n["createdAt"] for n in nodes)[len(nodes) // 3]
    earlier = [n["remoteId"] for n in nodes if n["createdAt"] <= middle]
    assert [
        n["remoteId"] for n in listed(gateway, "haste", {"createdAt": {"lte": middle}})
    ] == earlier


@pytest.mark.parametrize(("field", "value"), [("firstName", "ADA"), ("email", None)])
def test_revyops_other_equality_filters(gateway, field, value):
    nodes = everything(gateway, "revyops")
    if value is None:  # an exact email of one contact
        contact = gateway.data(
            '{ contacts(provider: "revyops", first: 1) { edges { node { remoteId emails { address } } } } }'
        )
        node = contact["contacts"]["edges"][0]["node"]
        got = listed(gateway, "revyops", {field: {"eq": node["emails"][0]["address"].upper()}})
        assert [n["remoteId"] for n in got] == [node["remoteId"]]
        return
    expected = [n["remoteId"] for n in nodes if n["firstName"].lower() == value.lower()]
    assert [n["remoteId"] for n in listed(gateway, "revyops", {field: {"eq": value}})] == expected

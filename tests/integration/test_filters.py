"""Filters and ordering over real HTTP, checked against the same filter applied by hand
to the emulator's own data."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.clients import GraphQLClient
from tests.support.walk import walk_field

pytestmark = pytest.mark.integration

LIST = """
query($p: String!, $filter: ContactFilter, $order: [ContactOrder!], $after: String) {
  contacts(provider: $p, first: 100, after: $after, filter: $filter, orderBy: $order) {
    totalCount edges { node { remoteId } } pageInfo { hasNextPage endCursor }
  }
}"""


def listed_ids(
    client: GraphQLClient, provider: str, filter: Any = None, order: Any = None
) -> list[str]:
    variables = {"p": provider, "filter": filter, "order": order}
    walked = walk_field(client, LIST, "contacts", variables)
    assert walked.last["totalCount"] == len(walked.edges)
    return walked.ids()


@pytest.fixture(scope="module")
def rows(emulators: dict[str, str]) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{emulators['basicsos']}/api/contacts",
        params={"range": json.dumps([0, 100_000])},
        headers={"Authorization": "Bearer bos_crm_demo_admin"},
    )
    data: list[dict[str, Any]] = response.json()
    return data


def _text(v: Any) -> str:
    return "" if v is None else str(v)


CASES: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
    ({"lastName": {"eq": "Turing"}}, lambda r: r["lastName"] == "Turing"),
    ({"lastName": {"neq": "Turing"}}, lambda r: r["lastName"] != "Turing"),
    ({"lastName": {"in": ["Turing", "Hopper"]}}, lambda r: r["lastName"] in ("Turing", "Hopper")),
    ({"email": {"contains": "ADA."}}, lambda r: "ada." in _text(r["email"]).lower()),
    ({"firstName": {"startsWith": "gr"}}, lambda r: _text(r["firstName"]).lower().startswith("gr")),
    ({"lastName": {"gt": "S"}}, lambda r: r["lastName"] > "S"),
    ({"lastName": {"gte": "Turing"}}, lambda r: r["lastName"] >= "Turing"),
    ({"lastName": {"lt": "B"}}, lambda r: r["lastName"] < "B"),
    ({"lastName": {"lte": "Allen"}}, lambda r: r["lastName"] <= "Allen"),
    (
        {"createdAt": {"lt": "2024-01-05T00:00:00Z"}},
        lambda r: r["createdAt"] < "2024-01-05T00:00:00.000Z",
    ),
    ({"companyId": {"isNull": True}}, lambda r: r["companyId"] is None),
    (
        {"or": [{"lastName": {"eq": "Knuth"}}, {"firstName": {"eq": "Ada"}}]},
        lambda r: r["lastName"] == "Knuth" or r["firstName"] == "Ada",
    ),
    (
        {"lastName": {"startsWith": "T"}, "firstName": {"in": ["Ada", "Alan", "Grace"]}},
        lambda r: (
            r["lastName"].lower().startswith("t") and r["firstName"] in ("Ada", "Alan", "Grace")
        ),
    ),
]


@pytest.mark.parametrize(("filter", "keep"), CASES, ids=[json.dumps(c[0]) for c in CASES])
def test_basicsos_operators_match_its_data(gateway, rows, filter, keep):
    expected = [str(r["id"]) for r in rows if keep(r)]
    assert expected, "a case that matches nothing proves little"
    assert listed_ids(gateway, "basicsos", filter) == expected


def test_filter_by_company_takes_global_ids(gateway, rows):
    company = gateway.data(
        '{ companies(provider: "basicsos", first: 1) { edges { node { id remoteId } } } }'
    )
    node = company["companies"]["edges"][0]["node"]
    ids = listed_ids(gateway, "basicsos", {"companyId": {"eq": node["id"]}})
    assert ids == [str(r["id"]) for r in rows if str(r["companyId"]) == node["remoteId"]]


def test_ordered_and_filtered_pages_are_the_sorted_slice(gateway, rows):
    order = [{"field": "LAST_NAME", "direction": "DESC"}, {"field": "FIRST_NAME"}]
    filter = {"lastName": {"gte": "L"}}
    chosen = [r for r in rows if r["lastName"] >= "L"]
    chosen.sort(key=lambda r: r["id"])
    chosen.sort(key=lambda r: r["firstName"])
    chosen.sort(key=lambda r: r["lastName"], reverse=True)
    assert listed_ids(gateway, "basicsos", filter, order) == [str(r["id"]) for r in chosen]


def test_revyops_eq_filters(gateway, emulators):
    raw = httpx.get(
        f"{emulators['revyops']}/public/v2/contacts",
        params={"client_id": "revyops-demo-client", "page_size": 1000},
    ).json()["results"]
    expected = [str(r["id"]) for r in raw if r["last_name"].lower() == "hopper"]
    assert listed_ids(gateway, "revyops", {"lastName": {"eq": "Hopper"}}) == expected


@pytest.mark.parametrize(
    ("provider", "filter", "order", "words"),
    [
        ("revyops", {"lastName": {"contains": "x"}}, None, ["`contains`", "`lastName`", "revyops"]),
        ("revyops", {"status": {"eq": "x"}}, None, ["`status`", "revyops"]),
        ("revyops", None, [{"field": "LAST_NAME"}], ["order by LAST_NAME", "revyops"]),
        (
            "basicsos",
            {"or": [{"lastName": {"eq": "A"}, "firstName": {"eq": "B"}}, {"email": {"eq": "c"}}]},
            None,
            ["nest", "basicsos"],
        ),
    ],
)
def test_what_a_provider_cannot_do_is_refused_by_name(gateway, provider, filter, order, words):
    body = gateway.post(LIST, {"p": provider, "filter": filter, "order": order})
    error = body["errors"][0]
    assert error["extensions"]["code"] == "UNSUPPORTED"
    assert error["extensions"]["provider"] == provider
    for word in words:
        assert word in error["message"]


def test_a_cursor_is_bound_to_its_filter_and_order(gateway):
    first = gateway.data(LIST, {"p": "basicsos", "filter": {"lastName": {"gte": "L"}}})
    cursor = first["contacts"]["pageInfo"]["endCursor"]
    body = gateway.post(
        LIST, {"p": "basicsos", "filter": {"lastName": {"gte": "M"}}, "after": cursor}
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"]["argument"] == "after"

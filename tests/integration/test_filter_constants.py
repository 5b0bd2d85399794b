"""Empty groups and lists in filters, on every provider, over HTTP: an `or` or `in` of nothing
matches nothing and costs no request upstream; an `and` of nothing matches everything; nested
filters mean what a plain evaluation over the provider's records says. And an amount operand
no provider can compare with is the client's mistake, never an internal error."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulators.seed import FIRST_NAMES, LAST_NAMES
from tests.support.clients import GraphQLClient, answer
from tests.support.walk import walk_field

pytestmark = pytest.mark.integration

PROVIDERS = ["revyops", "attio", "haste", "redivis", "basicsos"]
LIST = """
query($p: String!, $filter: ContactFilter, $first: Int, $last: Int, $after: String) {
  contacts(provider: $p, first: $first, last: $last, after: $after, filter: $filter) {
    totalCount
    edges { node { remoteId firstName lastName } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""
EMPTY = {
    "totalCount": 0,
    "edges": [],
    "pageInfo": {
        "hasNextPage": False,
        "hasPreviousPage": False,
        "startCursor": None,
        "endCursor": None,
    },
}
NOTHING = [
    {"or": []},
    {"lastName": {"in": []}},
    {"companyId": {"in": []}},
    {"and": [{"or": []}]},
    {"firstName": {"eq": "Ada"}, "or": [{"lastName": {"in": []}}, {"or": []}]},
]
EVERYTHING = [
    {"and": []},
    {"or": [{"and": []}]},
    {"or": [{"firstName": {"eq": "Ada"}}, {}]},
    {"and": [{"and": []}, {"or": [{"and": []}, {"lastName": {"in": []}}]}]},
]


def page(client: GraphQLClient, provider: str, filter: Any, **args: Any) -> dict[str, Any]:
    contacts: dict[str, Any] = client.data(LIST, {"p": provider, "filter": filter, **args})[
        "contacts"
    ]
    return contacts


def listed(client: GraphQLClient, provider: str, filter: Any = None) -> list[dict[str, Any]]:
    variables = {"p": provider, "filter": filter, "first": 100}
    return walk_field(client, LIST, "contacts", variables).nodes


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("filter", NOTHING, ids=[str(i) for i in range(len(NOTHING))])
def test_a_filter_nothing_matches_is_empty_without_a_request(
    gateway, emulator_stats, provider, filter
):
    before = emulator_stats(provider)
    assert page(gateway, provider, filter, first=10) == EMPTY
    assert page(gateway, provider, filter, last=10) == EMPTY
    assert emulator_stats(provider) == before


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_filter_that_matches_everything_lists_everything(gateway, provider):
    unfiltered = page(gateway, provider, None, first=15)
    for filter in EVERYTHING:
        assert page(gateway, provider, filter, first=15) == unfiltered, filter


@pytest.mark.parametrize("provider", ["revyops", "attio", "redivis", "basicsos"])
def test_an_empty_in_beside_a_condition_drops_out(gateway, provider):
    """Redivis used to send `IN ()`-free SQL the API refused, and echo its error."""
    turing = {"lastName": {"eq": "Turing"}}
    expected = listed(gateway, provider, turing)
    assert expected
    assert listed(gateway, provider, {"or": [{"lastName": {"in": []}}, turing]}) == expected


def test_a_list_the_provider_lacks_is_still_refused(gateway):
    body = gateway.post(
        'query { deals(provider: "revyops", first: 5, filter: {or: []}) { totalCount } }'
    )
    assert body["errors"][0]["extensions"]["code"] == "UNSUPPORTED"


def test_a_cursor_of_another_query_is_still_refused(gateway):
    cursor = page(gateway, "attio", None, first=1)["pageInfo"]["endCursor"]
    body = gateway.post(LIST, {"p": "attio", "filter": {"or": []}, "first": 5, "after": cursor})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


NESTED = """
query($p: String!, $filter: ContactFilter) {
  companies(provider: $p, first: 3) {
    edges { node { remoteId contacts(first: 5, filter: $filter) {
      totalCount edges { node { remoteId } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    } } }
  }
}"""


@pytest.mark.parametrize("provider", ["attio", "haste", "redivis", "basicsos"])
def test_a_nested_list_nothing_matches_reads_no_children(gateway, emulator_stats, provider):
    gateway.data(
        "query($p: String!) { companies(provider: $p, first: 3) { edges { node { name } } } }",
        {"p": provider},
    )
    before = emulator_stats(provider)  # the companies are cached now
    companies = gateway.data(NESTED, {"p": provider, "filter": {"or": []}})["companies"]
    assert [e["node"]["contacts"] for e in companies["edges"]] == [EMPTY] * 3
    assert emulator_stats(provider) == before


# --- the property: nested and/or/in, empty ones included ----------------------------------

LAST = st.sampled_from([*LAST_NAMES[:4], "Nobody"])
leaves = (
    st.builds(lambda v: {"lastName": {"eq": v}}, LAST)
    | st.builds(lambda v: {"lastName": {"in": v}}, st.lists(LAST, max_size=2))
    | st.builds(lambda v: {"firstName": {"eq": v}}, st.sampled_from(FIRST_NAMES[:4]))
)
filters = st.recursive(
    leaves,
    lambda inner: (
        st.builds(lambda parts: {"and": parts}, st.lists(inner, max_size=3))
        | st.builds(lambda parts: {"or": parts}, st.lists(inner, max_size=3))
    ),
    max_leaves=6,
)


def holds(filter: dict[str, Any], node: dict[str, Any]) -> bool:
    """The filter's meaning on one contact, in plain Python (text `eq`/`in` compare exactly)."""
    results = []
    for key, value in filter.items():
        if key == "and":
            results.append(all(holds(part, node) for part in value))
        elif key == "or":
            results.append(any(holds(part, node) for part in value))
        elif "eq" in value:
            results.append(node[key] == value["eq"])
        else:
            results.append(node[key] in value["in"])
    return all(results)


_everything: dict[str, list[dict[str, Any]]] = {}


@pytest.mark.parametrize("provider", ["attio", "redivis"])
def test_nested_filters_match_a_plain_evaluation(gateway, provider):
    if provider not in _everything:
        _everything[provider] = listed(gateway, provider)
    records = _everything[provider]

    @settings(max_examples=25)
    @given(filters)
    def check(filter: dict[str, Any]) -> None:
        expected = [n for n in records if holds(filter, n)]
        window = page(gateway, provider, filter, first=100)
        assert [e["node"] for e in window["edges"]] == expected[:100]
        assert window["totalCount"] == len(expected)

    check()


def test_the_answer_of_an_empty_or_has_no_error_text(gateway):
    body = gateway.post(LIST, {"p": "redivis", "filter": {"lastName": {"in": []}}, "first": 5})
    assert answer(body) == {"data": {"contacts": EMPTY}}


@pytest.mark.parametrize("provider", ["attio", "redivis", "basicsos"])
@pytest.mark.parametrize("amount", [{"gt": "1e309"}, {"lte": "NaN"}, {"in": ["10", "ten"]}])
def test_an_amount_operand_that_is_no_number_is_bad_user_input(
    gateway, emulator_stats, provider, amount
):
    before = emulator_stats(provider)
    body = gateway.post(
        "query($p: String!, $f: DealFilter) { deals(provider: $p, first: 5, filter: $f) "
        "{ totalCount } }",
        {"p": provider, "f": {"amount": amount}},
    )
    error = body["errors"][0]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "filter"}
    assert error["message"].startswith("`filter.amount` takes a decimal number")
    assert emulator_stats(provider) == before

"""Redivis filters and ids with hostile text, over HTTP: whatever a client sends stays inside
its SQL string literal, and `%` / `_` match only themselves.

The emulator reads literals by BigQuery's rules and refuses what BigQuery refuses, so a value
that broke out of its literal would surface as a 400 (UPSTREAM_BAD_REQUEST) or wrong rows."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulators import EmulatorOptions, redivis
from gateway.demo import demo_provider
from gateway.providers import create_emulator
from gateway.servers import ServerThread
from gateway.settings import Settings
from tests.support.clients import GraphQLClient
from tests.support.ids import gid
from tests.support.servers import serving
from tests.support.walk import Page, Paging, walk

pytestmark = pytest.mark.integration

INJECTION = r"\') UNION ALL SELECT * FROM `other.dataset.table` --"
NASTY = [
    "O'Brien",
    "it''s",
    "100%",
    "50% off",
    "a_b",
    "a%b",
    "back\\slash",
    "trail\\",
    "\\'",
    INJECTION,
    "' OR '1'='1",
    "x' OR last_name != '",
    'quote"d',
    "\\%",
    "\\_",
    "%",
    "_",
    "\\\\",
    "line\nbreak",
    "cr\rhere",
    "tab\there",
    "nul\x00here",
    "del\x7fhere",
    "`tick`",
    "Ünïcødé\u2028sep",
    "semi; DROP TABLE contacts",
]
LIST = """
query($filter: ContactFilter, $after: String) {
  contacts(provider: "redivis", first: 100, after: $after, filter: $filter) {
    edges { node { remoteId lastName } }
    pageInfo { hasNextPage endCursor }
  }
}"""


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[GraphQLClient, list[dict[str, Any]]]]:
    """A gateway over a Redivis emulator whose contacts include the hostile names."""
    app = create_emulator("redivis", EmulatorOptions(rate_limits=False))
    rows: list[dict[str, Any]] = app.state.emulator.datasets[redivis.DEMO_TOKEN].tables["contacts"]
    template = rows[0]
    for index, name in enumerate(NASTY):
        rows.append({**template, "id": f"person_9{index:05d}", "last_name": name})
    with ServerThread(app) as emulator:
        provider = demo_provider("redivis", emulator.url).model_copy(update={"rate_limit": False})
        config = Settings(providers=[provider], cursor_secret="test-cursor-secret-kQ3vX8wZ")
        with serving(config) as client:
            yield client, rows


def listed_ids(client: GraphQLClient, filter: Any) -> list[str]:
    def fetch(paging: Paging) -> Page:
        body = client.post(LIST, {"filter": filter, **paging})
        assert "errors" not in body, body["errors"]  # never a 400 from the upstream
        page: Page = body["data"]["contacts"]
        return page

    return walk(fetch).ids()


OPS: dict[str, Callable[[str, str], bool]] = {
    "eq": lambda field, value: field == value,
    "contains": lambda field, value: value.lower() in field.lower(),
    "startsWith": lambda field, value: field.lower().startswith(value.lower()),
}


def check(world: tuple[GraphQLClient, list[dict[str, Any]]], op: str, value: str) -> list[str]:
    client, rows = world
    expected = sorted(r["id"] for r in rows if OPS[op](r["last_name"], value))
    found = listed_ids(client, {"lastName": {op: value}})
    assert found == expected, (op, value)
    return found


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("value", NASTY, ids=[str(i) for i in range(len(NASTY))])
def test_hostile_values_filter_exactly(world, op, value):
    found = check(world, op, value)
    assert all(i.startswith("person_") for i in found)  # rows of no other table
    if op == "eq":
        assert found == [f"person_9{NASTY.index(value):05d}"]


@settings(
    max_examples=40,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.sampled_from(sorted(OPS)),
    st.text(alphabet=st.sampled_from(list("'\"\\%_ `\n\x00ab")), min_size=1, max_size=6),
)
def test_any_mix_of_special_characters_filters_exactly(world, op, value):
    check(world, op, value)


def test_percent_and_underscore_match_only_themselves(world):
    client, rows = world
    percent = listed_ids(client, {"lastName": {"contains": "%"}})
    assert percent == sorted(r["id"] for r in rows if "%" in r["last_name"])
    assert 0 < len(percent) < 10  # before: `LIKE '%%%'` matched every contact
    assert listed_ids(client, {"lastName": {"startsWith": "_"}}) == ["person_900016"]
    assert len(listed_ids(client, {"lastName": {"in": [INJECTION, "O'Brien", "it''s"]}})) == 3


@pytest.mark.parametrize("remote_id", [INJECTION, "x' OR '1'='1", "it''s", "a\\", "nl\nx"])
def test_forged_ids_are_not_found(world, remote_id):
    client, _ = world
    body = client.post(
        "query($id: ID!) { node(id: $id) { id } }", {"id": gid("Contact", "redivis", remote_id)}
    )
    assert "errors" not in body
    assert body["data"]["node"] is None
    ids = [gid("Contact", "redivis", "person_000001"), gid("Contact", "redivis", remote_id)]
    body = client.post(
        "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Contact { remoteId } } }", {"ids": ids}
    )
    assert body["data"]["nodes"] == [{"remoteId": "person_000001"}, None], body


@pytest.mark.parametrize("amount", ["nan", "inf", "1e400", "5 OR 1=1", "abc"])
def test_an_amount_that_is_no_number_is_bad_user_input(world, amount):
    client, _ = world
    body = client.post(
        'query($f: DealFilter) { deals(provider: "redivis", first: 1, filter: $f) '
        "{ edges { node { id } } } }",
        {"f": {"amount": {"gt": amount}}},
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"]["argument"] == "filter"


def test_a_lone_surrogate_is_bad_user_input(world):
    client, _ = world
    payload = {"query": LIST, "variables": {"filter": {"lastName": {"eq": "a\ud800"}}}}
    response = client.http.post(
        "/graphql",
        content=json.dumps(payload),  # ASCII JSON: the surrogate travels as `\ud800`
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

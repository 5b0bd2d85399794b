"""Input bounds: lists, strings and nesting are capped in literals and variables alike.

Over HTTP against the emulators; an input above a bound is BAD_USER_INPUT naming
the argument's path, and no upstream request is sent for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gateway.app import create_app
from gateway.demo import demo_provider
from gateway.servers import ServerThread
from gateway.settings import Settings
from tests.support.clients import GraphQLClient
from tests.support.ids import gid

pytestmark = pytest.mark.integration

CONTACTS = """query($provider: String!, $filter: ContactFilter) {
  contacts(provider: $provider, filter: $filter, first: 5) { edges { node { id } } }
}"""


def _refused(body: dict[str, Any], argument: str) -> str:
    assert body["data"] is None or all(v is None for v in body["data"].values()), body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["extensions"]["argument"] == argument
    assert argument in error["message"]
    message: str = error["message"]
    return message


@pytest.fixture
def no_requests(emulator_stats: Callable[[str], int]) -> Iterator[Callable[..., None]]:
    """Call it with provider kinds: at the end of the test, none of them got a request."""
    watched: dict[str, int] = {}

    def watch(*kinds: str) -> None:
        watched.update({kind: emulator_stats(kind) for kind in kinds})

    yield watch
    for kind, before in watched.items():
        assert emulator_stats(kind) == before, f"{kind} was sent a request"


@pytest.mark.parametrize("provider", ["redivis", "basicsos", "attio"])
def test_long_in_list_in_a_variable_is_refused(
    gateway: GraphQLClient, no_requests: Callable[..., None], provider: str
) -> None:
    no_requests(provider)
    values = [f"user{i}@example.com" for i in range(20_000)]
    body = gateway.post(CONTACTS, {"provider": provider, "filter": {"email": {"in": values}}})
    message = _refused(body, "filter.email.in")
    assert "20000" in message
    assert "100" in message


def test_long_string_in_a_variable_is_refused(
    gateway: GraphQLClient, no_requests: Callable[..., None]
) -> None:
    no_requests("revyops")
    for size in (1025, 200_000):
        body = gateway.post(
            CONTACTS, {"provider": "revyops", "filter": {"email": {"eq": "a" * size}}}
        )
        _refused(body, "filter.email.eq")


def test_bounds_hold_for_literals_and_nested_filters(
    gateway: GraphQLClient, no_requests: Callable[..., None]
) -> None:
    no_requests("basicsos")
    values = ", ".join(f'"v{i}"' for i in range(101))
    body = gateway.post(
        '{ contacts(provider: "basicsos", filter: {or: [{lastName: {in: [' + values + "]}}]}) "
        "{ edges { node { id } } } }"
    )
    _refused(body, "filter.or.lastName.in")
    long = "x" * 1025
    body = gateway.post(
        '{ companies(provider: "basicsos", filter: {name: {contains: "' + long + '"}}) '
        "{ edges { node { id } } } }"
    )
    _refused(body, "filter.name.contains")
    nested: dict[str, Any] = {"email": {"eq": "a@example.com"}}
    for _ in range(6):
        nested = {"and": [nested]}
    body = gateway.post(CONTACTS, {"provider": "basicsos", "filter": nested})
    _refused(body, "filter" + ".and" * 5)


def test_at_the_bounds_the_query_runs(gateway: GraphQLClient) -> None:
    values = [f"nobody{i}@example.com" for i in range(99)] + ["x" * 1024]
    data = gateway.data(CONTACTS, {"provider": "attio", "filter": {"email": {"in": values}}})
    assert data["contacts"]["edges"] == []


def test_nodes_ids_are_capped(gateway: GraphQLClient, no_requests: Callable[..., None]) -> None:
    no_requests("haste")
    ids = [gid("Contact", "haste", f"cont_{i:06d}") for i in range(1, 102)]
    body = gateway.post("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ids})
    _refused(body, "ids")
    body = gateway.post('query { node(id: "' + "A" * 5000 + '") { id } }')
    _refused(body, "id")


def test_bulk_and_merge_lists_are_capped(
    gateway: GraphQLClient, no_requests: Callable[..., None]
) -> None:
    no_requests("haste", "basicsos")
    contacts = [{"firstName": f"F{i}", "lastName": "L"} for i in range(101)]
    body = gateway.post(
        "mutation($input: BulkCreateContactsInput!) { bulkCreateContacts(input: $input) "
        "{ succeeded } }",
        {"input": {"provider": "haste", "contacts": contacts}},
    )
    _refused(body, "input.contacts")
    ids = [gid("Contact", "haste", f"cont_{i:06d}") for i in range(1, 102)]
    body = gateway.post(
        "mutation($input: BulkDeleteContactsInput!) { bulkDeleteContacts(input: $input) "
        "{ succeeded } }",
        {"input": {"ids": ids}},
    )
    _refused(body, "input.ids")
    for provider, remote in (("haste", "cont_{:06d}"), ("basicsos", "{}")):
        losers = [gid("Contact", provider, remote.format(i)) for i in range(2, 13)]
        body = gateway.post(
            "mutation($input: MergeContactsInput!) { mergeContacts(input: $input) "
            "{ contact { id } } }",
            {
                "input": {
                    "winnerId": gid("Contact", provider, remote.format(1)),
                    "loserIds": losers,
                }
            },
        )
        _refused(body, "input.loserIds")


def test_custom_fields_json_is_bounded(
    gateway: GraphQLClient, no_requests: Callable[..., None]
) -> None:
    no_requests("haste")
    mutation = (
        "mutation($input: CreateContactInput!) { createContact(input: $input) { contact { id } } }"
    )
    for custom in (
        {"note": "x" * 5000},
        {"k": list(range(1000))},
        {f"k{i}": i for i in range(500)},
    ):
        body = gateway.post(
            mutation, {"input": {"provider": "haste", "firstName": "A", "customFields": custom}}
        )
        _refused(body, "input.customFields")


def test_repeated_fields_are_refused_before_costly_validation(gateway: GraphQLClient) -> None:
    # 700 copies: under the 5,000-token limit, and quadratic validation would take seconds.
    query = "{ " + "providers { capabilities { entities } } " * 700 + "}"
    started = time.monotonic()
    body = gateway.post(query)
    elapsed = time.monotonic() - started
    [error] = body["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "providers" in error["message"]
    # Validating 300 copies took about a second of CPU before (700: about five);
    # refusing them takes milliseconds, so the bound leaves a loaded machine its margin.
    assert elapsed < 2.0


def test_limits_come_from_settings(emulators: dict[str, str]) -> None:
    settings = Settings(
        providers=[
            demo_provider("attio", emulators["attio"]).model_copy(update={"rate_limit": False})
        ],
        max_list_length=3,
        max_string_length=10,
        max_input_values=20,
    )
    with ServerThread(create_app(settings)) as server:
        client = GraphQLClient(server.url)
        try:
            body = client.post(
                CONTACTS, {"provider": "attio", "filter": {"email": {"in": list("abcd")}}}
            )
            _refused(body, "filter.email.in")
            body = client.post(
                CONTACTS, {"provider": "attio", "filter": {"email": {"eq": "a" * 11}}}
            )
            _refused(body, "filter.email.eq")
            wide = {"or": [{"email": {"in": ["a", "b", "c"]}}] * 3}
            body = client.post(CONTACTS, {"provider": "attio", "filter": wide})
            assert "more than 20 values" in _refused(body, "filter.or.email.in")
            data = client.data(CONTACTS, {"provider": "attio", "filter": {"email": {"in": ["a"]}}})
            assert data["contacts"]["edges"] == []
        finally:
            client.http.close()


def test_values_within_bounds_too_long_for_a_url_are_refused_without_a_request(
    gateway: GraphQLClient, no_requests: Callable[..., None]
) -> None:
    # 100 values of 1 KB pass the bounds, but BasicsOS filters in the query string and
    # the URL would pass httpx's length limit: a clean refusal, not an internal error.
    no_requests("basicsos")
    values = [f"{i:04d}" + "a" * 1015 + "@x.io" for i in range(100)]
    body = gateway.post(CONTACTS, {"provider": "basicsos", "filter": {"email": {"in": values}}})
    [error] = body["errors"]
    assert error["extensions"]["code"] == "UPSTREAM_BAD_REQUEST", error
    assert error["extensions"]["provider"] == "basicsos"
    assert "narrow the filter" in error["message"]

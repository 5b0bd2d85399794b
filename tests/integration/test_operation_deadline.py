"""The operation deadline: unfinished fields fail UPSTREAM_TIMEOUT, finished ones come back.

A gateway with a short `operation_deadline` in front of a fast emulator and one
slowed down through `/_emulator/faults`; everything over loopback HTTP. The slow
emulator answers long after the deadline, so the margins are seconds wide.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from gateway.servers import emulator_servers
from gateway.settings import Settings
from tests.support.clients import GraphQLClient
from tests.support.servers import demo_providers, serving

pytestmark = pytest.mark.integration

DEADLINE = 2.0
LATENCY_MS = 12_000  # far past the deadline: a field either failed on time or not at all


@pytest.fixture(scope="module")
def setup() -> Iterator[tuple[GraphQLClient, dict[str, str]]]:
    with ExitStack() as stack:
        urls = emulator_servers(stack, ("revyops", "haste"))
        settings = Settings(
            providers=demo_providers(urls, max_retries=0),
            cursor_secret="test-cursor-secret-kQ3vX8wZ",
            operation_deadline=DEADLINE,
        )
        yield stack.enter_context(serving(settings)), urls


@pytest.fixture
def slow_haste(setup: tuple[GraphQLClient, dict[str, str]]) -> Iterator[str]:
    url = setup[1]["haste"]
    httpx.post(f"{url}/_emulator/faults", json={"latency_ms": LATENCY_MS}).raise_for_status()
    yield url
    httpx.post(f"{url}/_emulator/faults", json={}).raise_for_status()


def _timed(client: GraphQLClient, query: str) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    body = client.post(query)
    return body, time.monotonic() - started


FAST = 'fast: contacts(provider: "revyops", first: 2) { edges { node { id firstName } } }'
SLOW = 'slow: contacts(provider: "haste", first: 2) { edges { node { id firstName } } }'


def test_slow_field_times_out_and_fast_data_is_returned(
    setup: tuple[GraphQLClient, dict[str, str]], slow_haste: str
) -> None:
    client, _ = setup
    # Warm the gateway's cache for the fast field, so only the slow one waits on anybody.
    client.data("{ " + FAST + " }")

    body, elapsed = _timed(client, "{ " + FAST + " " + SLOW + " }")

    assert len(body["data"]["fast"]["edges"]) == 2
    assert body["data"]["slow"] is None
    [error] = body["errors"]
    assert error["path"] == ["slow"]
    assert error["extensions"]["code"] == "UPSTREAM_TIMEOUT"
    assert error["extensions"]["provider"] == "haste"
    # Answered after the deadline and long before the slow upstream would have.
    assert DEADLINE <= elapsed < LATENCY_MS / 1000 / 2


def test_nested_fields_past_the_deadline_fail_alone(
    setup: tuple[GraphQLClient, dict[str, str]], slow_haste: str
) -> None:
    client, urls = setup
    contacts = 'contacts(provider: "haste", first: 5) { edges { node { id'
    httpx.post(f"{urls['haste']}/_emulator/faults", json={}).raise_for_status()
    listed = client.data("{ " + contacts + " } } } }")["contacts"]["edges"]
    # The list now comes from the cache; the companies' domains need the (slow) upstream
    # (hasteCRM sends only their id and name inline).
    httpx.post(
        f"{urls['haste']}/_emulator/faults", json={"latency_ms": LATENCY_MS}
    ).raise_for_status()

    body, elapsed = _timed(client, "{ " + contacts + " company { name domain } } } } }")

    edges = body["data"]["contacts"]["edges"]
    assert [e["node"]["id"] for e in edges] == [e["node"]["id"] for e in listed]
    assert all(e["node"]["company"] is None for e in edges)
    assert body["errors"]
    for error in body["errors"]:
        assert error["path"][-1] == "company"
        assert error["extensions"]["code"] == "UPSTREAM_TIMEOUT"
    assert elapsed < LATENCY_MS / 1000 / 2


def _writes(url: str) -> int:
    stats = httpx.get(f"{url}/_emulator/stats").json()
    count: int = stats["by_endpoint"].get("POST /v1/contacts", 0)
    return count


def test_a_write_cut_by_the_deadline_is_unknown_and_later_ones_are_not_sent(
    setup: tuple[GraphQLClient, dict[str, str]], slow_haste: str
) -> None:
    client, _ = setup
    before = _writes(slow_haste)
    fields = "contact { id } userErrors { message }"
    body, elapsed = _timed(
        client,
        "mutation { "
        f'a: createContact(input: {{provider: "haste", firstName: "Ada", lastName: "A", '
        f'email: "ada.deadline@example.com"}}) {{ {fields} }} '
        f'b: createContact(input: {{provider: "haste", firstName: "Bob", lastName: "B", '
        f'email: "bob.deadline@example.com"}}) {{ {fields} }} '
        "}",
    )

    assert body["data"] == {"a": None, "b": None}
    errors = {error["path"][0]: error["extensions"] for error in body["errors"]}
    assert errors["a"]["code"] == "UPSTREAM_TIMEOUT"
    assert errors["a"]["writeOutcome"] == "UNKNOWN"  # it reached the provider
    assert errors["b"]["code"] == "UPSTREAM_TIMEOUT"
    assert errors["b"]["writeOutcome"] == "NOT_APPLIED"  # it was never sent
    assert _writes(slow_haste) == before + 1
    assert elapsed < LATENCY_MS / 1000 / 2

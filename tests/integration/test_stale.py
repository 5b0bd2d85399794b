"""Stale-if-error over HTTP: with a provider's budget spent, a read cached past its TTL is
served, marked in `extensions.stale`, instead of UPSTREAM_RATE_LIMITED.

The caches run on a fake timer that only the test moves, so the TTL passes when the test
says so; the limiter runs on real time, but its window (a minute) is far longer than the
test and the request deadline far shorter than the wait for a slot: it refuses at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from emulators import EmulatorOptions
from gateway import blocks
from gateway.cache import ReadCache
from gateway.datasources import base
from gateway.demo import demo_provider
from gateway.providers import create_emulator
from gateway.servers import ServerThread
from gateway.settings import Settings
from tests.support.clients import GraphQLClient
from tests.support.servers import serving
from tests.unit.fake_time import FakeTime

pytestmark = pytest.mark.integration

CONTACTS = '{ contacts(provider: "attio", first: 5) { edges { node { id name } } } }'
# Cold reads that spend the rest of the budget, each at least one request whatever is cached.
OTHERS = [
    '{ companies(provider: "attio", first: 5) { edges { node { id } } } }',
    '{ deals(provider: "attio", first: 5) { edges { node { id } } } }',
    '{ notes(provider: "attio", first: 5) { edges { node { id } } } }',
    '{ companies(provider: "attio", first: 7) { edges { node { id } } } }',
]
CREATE = """
mutation { createContact(input: {provider: "attio", firstName: "Ada", lastName: "L"}) {
  contact { id } userErrors { field message } } }"""


@pytest.fixture
def setup(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[GraphQLClient, FakeTime]]:
    timer = FakeTime()

    class Cache(ReadCache[Any]):
        def __init__(self, *args: Any, **options: Any) -> None:
            super().__init__(*args, **{**options, "timer": timer})

    monkeypatch.setattr(base, "ReadCache", Cache)
    monkeypatch.setattr(blocks, "ReadCache", Cache)  # list blocks are cached apart
    provider = demo_provider("attio", "http://unused").model_copy(
        update={"rate_limits": [(3, 60.0)], "request_deadline": 5.0, "max_retries": 0}
    )
    with ServerThread(create_emulator("attio", EmulatorOptions(rate_limits=False))) as emulator:
        provider = provider.model_copy(update={"base_url": emulator.url})
        settings = Settings(providers=[provider], cursor_secret="test-cursor-secret-kQ3vX8wZ")
        with serving(settings) as client:
            yield client, timer


def spend_the_budget(client: GraphQLClient) -> dict[str, Any]:
    """Cold reads until one is refused for the rate limit: that refusal."""
    for query in OTHERS:
        body = client.post(query)
        if "errors" in body:
            return body
    raise AssertionError("the budget of 3 requests a minute was never spent")


def test_a_spent_budget_serves_the_cached_read_marked_stale(setup):
    client, timer = setup
    warm = client.post(CONTACTS)
    assert "errors" not in warm
    assert "stale" not in warm.get("extensions", {})

    timer.advance(42.0)  # past the 30 s TTL, well within the 10 minutes of stale_ttl
    refused = spend_the_budget(client)
    # Nothing cached for that read: the error, as before.
    [error] = refused["errors"]
    assert error["extensions"]["code"] == "UPSTREAM_RATE_LIMITED"
    assert error["extensions"]["provider"] == "attio"

    stale = client.post(CONTACTS)
    assert "errors" not in stale
    assert stale["data"] == warm["data"]
    assert stale["extensions"]["stale"] == [{"provider": "attio", "ageSeconds": 42.0}]


def test_too_old_or_written_over_it_is_an_error_again(setup):
    client, timer = setup
    assert "errors" not in client.post(CONTACTS)
    timer.advance(30.0 + 600.0 + 1.0)  # past TTL and stale_ttl
    spend_the_budget(client)
    [error] = client.post(CONTACTS)["errors"]
    assert error["extensions"]["code"] == "UPSTREAM_RATE_LIMITED"


def test_a_write_clears_what_could_have_been_served_stale(setup):
    client, timer = setup
    assert "errors" not in client.post(CONTACTS)
    timer.advance(42.0)
    created = client.post(CREATE)
    assert "errors" not in created
    assert not created["data"]["createContact"]["userErrors"]
    spend_the_budget(client)
    [error] = client.post(CONTACTS)["errors"]
    assert error["extensions"]["code"] == "UPSTREAM_RATE_LIMITED"

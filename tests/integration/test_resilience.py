"""Retries, 429 waits and the circuit breaker against emulators with injected faults.

The breakers run on a fake clock that only the tests move, so a cooldown passes when a test
says so and not a moment before, however slow the machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from strawberry.relay import GlobalID

from emulators import EmulatorOptions
from gateway import upstream
from gateway.app import create_app
from gateway.breaker import CircuitBreaker
from gateway.demo import demo_provider
from gateway.providers import create_emulator
from gateway.servers import ServerThread
from gateway.settings import Settings
from tests.support.clients import GraphQLClient, emulator_requests
from tests.unit.fake_time import FakeTime

pytestmark = pytest.mark.integration

QUERY = "query($p: String!) { contacts(provider: $p, first: 5) { edges { node { id } } } }"
NODE = "query($id: ID!) { node(id: $id) { id } }"
CIRCUITS = "{ providers { name circuit } }"


@pytest.fixture
def setup(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Own emulators (faults here must not leak into other tests) and a gateway on them."""
    clock = FakeTime()

    class Breaker(CircuitBreaker):
        def __init__(self, **options: Any) -> None:
            super().__init__(**{**options, "clock": clock})

    monkeypatch.setattr(upstream, "CircuitBreaker", Breaker)
    with (
        ServerThread(create_emulator("revyops", EmulatorOptions(rate_limits=False))) as rev,
        ServerThread(create_emulator("basicsos", EmulatorOptions(rate_limits=False))) as bos,
    ):
        providers = [
            demo_provider("revyops", rev.url).model_copy(
                update={"breaker_min_requests": 3, "breaker_cooldown": 10.0, "max_retries": 2}
            ),
            demo_provider("basicsos", bos.url),
            demo_provider("revyops", rev.url).model_copy(
                update={"name": "sturdy", "breaker_min_requests": 1000}
            ),
            # The default breaker (half of at least 10 requests), and no retries to count.
            demo_provider("revyops", rev.url).model_copy(
                update={"name": "plain", "max_retries": 0}
            ),
        ]
        with ServerThread(create_app(Settings(providers=providers, cache=False))) as gateway:
            client = GraphQLClient(gateway.url)
            yield {
                "gateway": client,
                "revyops": rev.url,
                "basicsos": bos.url,
                "url": gateway.url,
                "clock": clock,
            }
            client.http.close()


def faults(url: str, **values: float) -> None:
    httpx.post(f"{url}/_emulator/faults", json=values).raise_for_status()


def circuits(client: GraphQLClient) -> dict[str, str]:
    return {p["name"]: p["circuit"] for p in client.data(CIRCUITS)["providers"]}


def test_idempotent_reads_are_retried_through_flaky_upstreams(setup):
    faults(setup["revyops"], error_rate=0.3)
    answers = [setup["gateway"].post(QUERY, {"p": "sturdy"}) for _ in range(20)]
    ok = [a for a in answers if "errors" not in a]
    # A read fails only when three tries in a row fail (0.3^3 = 2.7%).
    assert len(ok) >= 17
    assert emulator_requests(setup["revyops"]) > 20  # some of them were retried


def test_a_dead_provider_opens_its_breaker_and_spares_it(setup):
    faults(setup["revyops"], error_rate=1.0)
    body = setup["gateway"].post(QUERY, {"p": "revyops"})
    assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert body["errors"][0]["extensions"]["status"] == 500
    sent = emulator_requests(setup["revyops"])
    assert sent == 3  # one try and two retries: 3 of 3 failed, the breaker is open
    for _ in range(3):
        body = setup["gateway"].post(QUERY, {"p": "revyops"})
        error = body["errors"][0]
        assert error["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
        assert "circuit breaker" in error["message"]
    assert emulator_requests(setup["revyops"]) == sent  # nothing more reached it
    assert circuits(setup["gateway"]) == {
        "revyops": "OPEN",
        "basicsos": "CLOSED",
        "sturdy": "CLOSED",
        "plain": "CLOSED",
    }
    ready = httpx.get(f"{setup['url']}/readyz")
    assert ready.status_code == 200  # BasicsOS still serves
    assert ready.json()["providers"]["revyops"] == "OPEN"
    assert httpx.get(f"{setup['url']}/healthz").status_code == 200
    # It recovers: after the cooldown one probe goes through and closes the breaker.
    faults(setup["revyops"], error_rate=0.0)
    setup["clock"].advance(9.0)
    assert (
        "circuit breaker" in setup["gateway"].post(QUERY, {"p": "revyops"})["errors"][0]["message"]
    )
    assert emulator_requests(setup["revyops"]) == sent
    setup["clock"].advance(1.0)
    assert circuits(setup["gateway"])["revyops"] == "HALF_OPEN"
    assert "errors" not in setup["gateway"].post(QUERY, {"p": "revyops"})
    assert emulator_requests(setup["revyops"]) == sent + 1
    assert circuits(setup["gateway"])["revyops"] == "CLOSED"


def test_the_breaker_opens_on_a_failure_ratio_not_on_failures_in_a_row(setup):
    client = setup["gateway"]
    for _ in range(6):
        assert "errors" not in client.post(QUERY, {"p": "plain"})
    faults(setup["revyops"], error_rate=1.0)
    for _ in range(5):
        error = client.post(QUERY, {"p": "plain"})["errors"][0]
        assert error["extensions"]["status"] == 500
    assert circuits(client)["plain"] == "CLOSED"  # five in a row, but 5 of 11
    client.post(QUERY, {"p": "plain"})
    assert circuits(client)["plain"] == "OPEN"  # 6 of 12
    sent = emulator_requests(setup["revyops"])
    error = client.post(QUERY, {"p": "plain"})["errors"][0]
    assert "circuit breaker" in error["message"]
    assert emulator_requests(setup["revyops"]) == sent


def test_requests_a_client_got_wrong_never_open_the_breaker(setup):
    client = setup["gateway"]
    missing = [str(GlobalID("Contact", f"plain:{900_000 + i}")) for i in range(12)]
    for node_id in missing:
        assert client.post(NODE, {"id": node_id})["data"]["node"] is None
    stats = httpx.get(f"{setup['revyops']}/_emulator/stats").json()
    assert stats["by_status"].get("404", 0) >= 12  # they did reach the provider
    faults(setup["revyops"], error_rate=1.0)
    for _ in range(9):
        client.post(QUERY, {"p": "plain"})
    # Nine failures, and the 404s neither made up the minimum volume nor diluted the ratio.
    assert circuits(client)["plain"] == "CLOSED"
    client.post(QUERY, {"p": "plain"})
    assert circuits(client)["plain"] == "OPEN"


def test_a_failing_provider_leaves_the_others_data(setup):
    faults(setup["revyops"], error_rate=1.0)
    query = (
        '{ a: contacts(provider: "revyops", first: 2) { edges { node { id } } } '
        'b: contacts(provider: "basicsos", first: 2) { edges { node { id } } } }'
    )
    body = setup["gateway"].post(query)
    assert body["data"]["a"] is None
    assert len(body["data"]["b"]["edges"]) == 2
    [error] = body["errors"]
    assert error["path"] == ["a"]
    assert error["extensions"]["provider"] == "revyops"


def test_429_is_waited_out_and_retried_once(setup):
    faults(setup["basicsos"], rate_limit_rate=1.0)
    body = setup["gateway"].post(QUERY, {"p": "basicsos"})
    error = body["errors"][0]
    assert error["extensions"]["code"] == "UPSTREAM_RATE_LIMITED"
    assert error["extensions"]["status"] == 429
    # The emulator's 429 says Retry-After: 60 — beyond the deadline, so no blind retry.
    assert emulator_requests(setup["basicsos"]) == 1

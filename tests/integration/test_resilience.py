"""Retries, 429 waits and the circuit breaker against emulators with injected faults."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.demo import demo_provider
from gateway.emulators import EmulatorOptions, create_emulator
from gateway.servers import ServerThread
from gateway.settings import Settings
from tests.conftest import GraphQLClient

QUERY = "query($p: String!) { contacts(provider: $p, first: 5) { edges { node { id } } } }"


@pytest.fixture
def setup() -> Iterator[dict[str, Any]]:
    """Own emulators (faults here must not leak into other tests) and a gateway on them."""
    with (
        ServerThread(create_emulator("revyops", EmulatorOptions(rate_limits=False))) as rev,
        ServerThread(create_emulator("basicsos", EmulatorOptions(rate_limits=False))) as bos,
    ):
        providers = [
            demo_provider("revyops", rev.url).model_copy(
                update={"breaker_threshold": 3, "breaker_cooldown": 1.5, "max_retries": 2}
            ),
            demo_provider("basicsos", bos.url),
            demo_provider("revyops", rev.url).model_copy(
                update={"name": "sturdy", "breaker_threshold": 100}
            ),
        ]
        with ServerThread(create_app(Settings(providers=providers, cache=False))) as gateway:
            client = GraphQLClient(gateway.url)
            yield {"gateway": client, "revyops": rev.url, "basicsos": bos.url, "url": gateway.url}
            client.http.close()


def faults(url: str, **values: float) -> None:
    httpx.post(f"{url}/_emulator/faults", json=values).raise_for_status()


def requests(url: str) -> int:
    count: int = httpx.get(f"{url}/_emulator/stats").json()["requests"]
    return count


def test_idempotent_reads_are_retried_through_flaky_upstreams(setup):
    faults(setup["revyops"], error_rate=0.3)
    answers = [setup["gateway"].post(QUERY, {"p": "sturdy"}) for _ in range(20)]
    ok = [a for a in answers if "errors" not in a]
    # A read fails only when three tries in a row fail (0.3^3 = 2.7%).
    assert len(ok) >= 17
    assert requests(setup["revyops"]) > 20  # some of them were retried


def test_a_dead_provider_opens_its_breaker_and_spares_it(setup):
    faults(setup["revyops"], error_rate=1.0)
    body = setup["gateway"].post(QUERY, {"p": "revyops"})
    assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert body["errors"][0]["extensions"]["status"] == 500
    sent = requests(setup["revyops"])
    assert sent == 3  # one try and two retries, then the breaker (threshold 3) is open
    for _ in range(3):
        body = setup["gateway"].post(QUERY, {"p": "revyops"})
        error = body["errors"][0]
        assert error["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
        assert "circuit breaker" in error["message"]
    assert requests(setup["revyops"]) == sent  # nothing more reached it
    providers = setup["gateway"].data("{ providers { name circuit } }")["providers"]
    assert {p["name"]: p["circuit"] for p in providers} == {
        "revyops": "OPEN",
        "basicsos": "CLOSED",
        "sturdy": "CLOSED",
    }
    ready = httpx.get(f"{setup['url']}/readyz")
    assert ready.status_code == 200  # BasicsOS still serves
    assert ready.json()["providers"]["revyops"] == "OPEN"
    assert httpx.get(f"{setup['url']}/healthz").status_code == 200
    # It recovers: after the cooldown one probe goes through and closes the breaker.
    faults(setup["revyops"], error_rate=0.0)
    time.sleep(1.6)
    assert "errors" not in setup["gateway"].post(QUERY, {"p": "revyops"})
    providers = setup["gateway"].data("{ providers { name circuit } }")["providers"]
    assert providers[0]["circuit"] == "CLOSED"


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
    assert requests(setup["basicsos"]) == 1

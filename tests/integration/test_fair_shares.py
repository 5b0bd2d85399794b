"""Fair shares of a provider's budget over real HTTP: one client floods hasteCRM with
distinct reads (nothing the cache could answer) from many connections, while another
client's single reads keep answering, without error and quickly, throughout; the emulator,
enforcing its limits, never answers 429.

hasteCRM's limits are scaled down in the emulator and in the gateway alike (a 1 s burst
window) so the test takes seconds. What the shares do at each moment is proven on a fake
clock (tests/unit/test_limiter_shares.py); here the margins are generous for a loaded machine.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from emulators import EmulatorOptions, haste
from gateway.app import create_app
from gateway.demo import demo_provider
from gateway.providers import create_emulator
from gateway.servers import ServerThread
from gateway.settings import Settings

pytestmark = pytest.mark.integration

BURST = 20  # requests a second (hasteCRM's 100 a minute, scaled)
LIMITS = ((BURST, 1), (20 * BURST, 60))
FLOOD_KEY = "flood-key-0123456789abcdef"
LIGHT_KEY = "light-key-0123456789abcdef"
FLOOD_CONNECTIONS = 24
FUTURE = datetime(2990, 1, 1, tzinfo=UTC)  # no contact was created after it
SECONDS = 6.0  # the flood lasts at least this long, and until the light client is done
LIGHT_READS = 10
READ = """query($filter: ContactFilter) {
  contacts(provider: "haste", first: 1, filter: $filter) {
    edges { node { id } }
  }
}"""


@contextmanager
def haste_for_two(
    monkeypatch: pytest.MonkeyPatch, limits: tuple[tuple[int, int], ...], **provider: Any
) -> Iterator[dict[str, str]]:
    """hasteCRM's emulator enforcing `limits`, and a gateway keeping to them for two clients
    (flood and light); `provider`: more provider settings."""
    monkeypatch.setattr(haste, "RATE_LIMITS", limits)
    with ServerThread(create_emulator("haste", EmulatorOptions(rate_limits=True))) as emulator:
        settings = Settings.model_validate(
            {
                "providers": [
                    demo_provider("haste", emulator.url).model_copy(
                        update={"rate_limits": [(n, float(s)) for n, s in limits], **provider}
                    )
                ],
                "clients": [
                    {"name": name, "api_key_sha256": hashlib.sha256(key.encode()).hexdigest()}
                    for name, key in (("flood", FLOOD_KEY), ("light", LIGHT_KEY))
                ],
            }
        )
        with ServerThread(create_app(settings)) as gateway:
            yield {"gateway": gateway.url, "haste": emulator.url}


_reads = itertools.count()


def distinct_read() -> dict[str, Any]:
    """A read with a filter of its own each time: a new upstream request, never a cached one."""
    since = FUTURE + timedelta(seconds=next(_reads))
    return {"query": READ, "variables": {"filter": {"createdAt": {"gte": since.isoformat()}}}}


@pytest.fixture
def shared(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    # A flooding client's requests queued for longer than 2 s are refused at once.
    with haste_for_two(monkeypatch, LIMITS, request_deadline=2.0) as urls:
        yield urls


def test_a_flooding_client_leaves_the_others_their_share(shared):
    flood: list[dict[str, Any]] = []
    light: list[tuple[float, dict[str, Any]]] = []

    async def read(client: httpx.AsyncClient, key: str) -> dict[str, Any]:
        response = await client.post("/graphql", json=distinct_read(), headers={"X-API-Key": key})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    light_done = asyncio.Event()

    async def flooding(client: httpx.AsyncClient, until: float) -> None:
        while time.monotonic() < until or not light_done.is_set():
            body = await read(client, FLOOD_KEY)
            flood.append(body)
            for error in body.get("errors", []):
                if error["extensions"]["code"] == "CLIENT_RATE_LIMITED":
                    await asyncio.sleep(min(error["extensions"]["retryAfter"], 0.5))

    async def reading(client: httpx.AsyncClient) -> None:
        # A number of reads, not a duration: a loaded machine makes each slower, not fewer.
        for _ in range(LIGHT_READS):
            started = time.monotonic()
            body = await read(client, LIGHT_KEY)
            light.append((time.monotonic() - started, body))
            await asyncio.sleep(0.2)
        light_done.set()

    async def run() -> None:
        limits = httpx.Limits(max_connections=FLOOD_CONNECTIONS + 1)
        async with httpx.AsyncClient(
            base_url=shared["gateway"], timeout=30, limits=limits
        ) as client:
            light.append((0.0, await read(client, LIGHT_KEY)))  # the light client is about
            until = time.monotonic() + SECONDS
            await asyncio.gather(
                reading(client),
                *(flooding(client, until) for _ in range(FLOOD_CONNECTIONS)),
            )

    started = time.monotonic()
    asyncio.run(run())
    elapsed = time.monotonic() - started

    # The light client: every read answered, without error. Had it queued behind the flood
    # past its 2 s request deadline, the answer would be an error; the bound on the time is
    # only there to catch a hang.
    assert len(light) == LIGHT_READS + 1
    for seconds, body in light:
        assert "errors" not in body, body
        assert body["data"]["contacts"]["edges"] == []
        assert seconds < 10.0
    # The flooding client was served too, within its share, and refused for its share
    # (not for the provider's budget) when its queue would outlast the deadline.
    served = [b for b in flood if "errors" not in b]
    assert served
    errors = [e["extensions"] for b in flood for e in b.get("errors", [])]
    refused = [e for e in errors if e["code"] == "CLIENT_RATE_LIMITED"]
    assert refused, "the flood never exceeded its share"
    for extensions in refused:
        assert extensions["provider"] == "haste"
        assert extensions["retryAfter"] > 0
    # Its other refusals are honest ones: the whole window spent while it borrowed the idle
    # share (seen once on a loaded machine), or a request granted late in its 2 s deadline
    # timing out. Never an error of another kind.
    allowed = {"CLIENT_RATE_LIMITED", "UPSTREAM_RATE_LIMITED", "UPSTREAM_TIMEOUT"}
    assert {e["code"] for e in errors} <= allowed
    # The gateway stayed under hasteCRM's limit: it never had to say 429.
    stats = httpx.get(f"{shared['haste']}/_emulator/stats").json()
    assert "429" not in stats["by_status"], stats
    assert stats["requests"] <= (elapsed + 2) * BURST


# A window far longer than the request deadline: a client that found it spent would be
# refused, not served late, so only the reserve can answer the newcomer.
SLOW_WINDOW = ((20, 30),)
NEWCOMER_READS = 4  # the reserve: 0.2 of 20


@pytest.fixture
def slow_window(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    with haste_for_two(monkeypatch, SLOW_WINDOW, request_deadline=2.0, reserve=0.2) as urls:
        yield urls


def test_a_newcomer_is_served_from_the_reserve_in_a_window_another_client_spent(slow_window):
    """The flood has the window to itself until it is refused, then a client never seen
    before asks: its reads are answered at once, from the part no one client may take."""

    def read(http: httpx.Client, key: str) -> dict[str, Any]:
        response = http.post("/graphql", json=distinct_read(), headers={"X-API-Key": key})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    with httpx.Client(base_url=slow_window["gateway"], timeout=30) as http:
        flood: list[dict[str, Any]] = []
        while not any("errors" in body for body in flood):
            assert len(flood) < 20, "the flood was never refused"
            flood.append(read(http, FLOOD_KEY))
        served = [b for b in flood if "errors" not in b]
        assert len(served) == 16  # 0.8 of the window
        [refusal] = [e["extensions"] for b in flood for e in b.get("errors", [])]
        assert refusal["code"] == "CLIENT_RATE_LIMITED"
        newcomer = [read(http, LIGHT_KEY) for _ in range(NEWCOMER_READS)]
        for body in newcomer:
            assert "errors" not in body, body
        # Now the window is spent for everyone: the provider's budget refuses, not a share.
        assert read(http, FLOOD_KEY)["errors"][0]["extensions"]["code"] == "UPSTREAM_RATE_LIMITED"
    stats = httpx.get(f"{slow_window['haste']}/_emulator/stats").json()
    assert stats["requests"] == 20
    assert "429" not in stats["by_status"], stats

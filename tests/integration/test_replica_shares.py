"""Two gateway replicas over HTTP behind one real Redis share each provider's budget
between the gateway's clients by weight: one flooding through replica 1 does not starve
another through replica 2."""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from emulators import EmulatorOptions
from gateway.app import create_app
from gateway.demo import demo_provider
from gateway.limiter import Window
from gateway.providers import create_emulator
from gateway.servers import RedisProcess, ServerThread
from gateway.settings import ClientSettings, Settings
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

KEYS = {"flood": "flood-client-key-0123456789", "light": "light-client-key-0123456789"}
# A long window, so that each slot the flood leaves is one the light client may take
# however slow this machine is; the deadline leaves the light client one such slot.
LIMIT, SECONDS, DEADLINE = 6, 4.0, 7.0
LIGHT = 3  # requests per light thread (three of them)
QUERY = (
    'query($first: Int) { contacts(provider: "revyops", first: $first) { edges { node { id } } } }'
)


@pytest.fixture(scope="module")
def replicas() -> Iterator[list[str]]:
    with ExitStack() as exits:
        redis = exits.enter_context(RedisProcess())
        url = exits.enter_context(
            ServerThread(create_emulator("revyops", EmulatorOptions(rate_limits=False)))
        ).url
        provider = demo_provider("revyops", url).model_copy(
            update={
                "rate_limits": [(LIMIT, SECONDS)],
                "request_deadline": DEADLINE,
                "max_retries": 0,
            }
        )
        settings = Settings(
            providers=[provider],
            cursor_secret="test-cursor-secret-kQ3vX8wZ",
            redis_url=redis.url,
            cache=False,  # every answer is a request sent
            clients=[
                ClientSettings(
                    name=name,
                    api_key_sha256=hashlib.sha256(key.encode()).hexdigest(),
                    weight=5.0 if name == "light" else 1.0,
                )
                for name, key in KEYS.items()
            ],
        )
        yield [exits.enter_context(ServerThread(create_app(settings))).url for _ in range(2)]


def ask(http: httpx.Client, first: int) -> dict[str, Any]:
    response = http.post("/graphql", json={"query": QUERY, "variables": {"first": first}})
    assert response.status_code < 500, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_flooding_client_on_one_replica_does_not_starve_another_on_the_other(
    replicas: list[str],
) -> None:
    """Both ask more than the budget allows; the light client weighs 5 to the flood's 1,
    so it gets 5 slots in 6 while both ask, wherever each asks through."""
    stop = threading.Event()
    flood: list[float] = []  # when the flood's answers came

    def flooding(k: int) -> None:
        headers = {"X-API-Key": KEYS["flood"]}
        with httpx.Client(base_url=replicas[0], headers=headers, timeout=60) as http:
            n = 0
            while not stop.is_set():
                n += 1
                # A page size of its own: identical reads in flight would be sent once.
                if "errors" not in ask(http, 1 + (k + 8 * n) % 40):
                    flood.append(time.monotonic())

    light: list[dict[str, Any]] = []

    def lightly(offset: int) -> None:
        headers = {"X-API-Key": KEYS["light"]}
        with httpx.Client(base_url=replicas[1], headers=headers, timeout=60) as http:
            for i in range(LIGHT):
                light.append(ask(http, 41 + offset + i))

    threads = [threading.Thread(target=flooding, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    try:
        # The flood has the whole window first.
        wait_until(lambda: len(flood) >= LIMIT, what=f"the flood's first {LIMIT} answers")
        started = time.monotonic()
        lights = [threading.Thread(target=lightly, args=(10 * n,)) for n in range(3)]
        for thread in lights:
            thread.start()
        for thread in lights:
            thread.join()
        ended = time.monotonic()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    for body in light:
        assert "errors" not in body, body["errors"]
        assert len(body["data"]["contacts"]["edges"]) > 0
    # While the light client asked, the flood had its sixth: one slot per window (the
    # limiter's window is padded past the provider's), and one its request had taken before.
    during = [t for t in flood if started < t <= ended]
    windows = math.ceil((ended - started) / Window(LIMIT, SECONDS).span)
    assert len(during) <= windows + 1, (len(during), windows)

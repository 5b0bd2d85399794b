"""Polling over real HTTP: a contact updated, one deleted and one created directly in the
RevyOps, Redivis and BasicsOS emulators (through their own APIs, not the gateway) reach
the hub as UPDATED, DELETED and CREATED with their ids, after a first poll that says
nothing, and show in the gateway's next query within `poll_interval` + 2 s although its
reads are cached for 300 s. Against an emulator enforcing its limits, the poller keeps to
its share of the provider's window and nothing is answered 429. Of two replicas on one
Redis, one polls, and both serve what it found.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from emulators import EmulatorOptions
from gateway.datasources import source_class
from gateway.demo import demo_provider
from gateway.live.changes import ChangeKind, ChangeSource
from gateway.live.hub import ChangeHub
from gateway.live.poller import Poller
from gateway.metrics import Metrics
from gateway.records import Entity
from gateway.servers import RedisProcess, emulator_servers
from gateway.settings import ProviderSettings, Settings
from gateway.upstream import open_client
from tests.support.clients import GraphQLClient
from tests.support.direct import contact_ids, edit
from tests.support.servers import serving
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

KINDS = ("revyops", "redivis", "basicsos")
SMALL = EmulatorOptions(rate_limits=False, companies=10, contacts=30, deals=10, notes=10)
INTERVAL = 1.0  # seconds between polls
CONTACTS = """query($provider: String!) {
  contacts(provider: $provider, first: 100) { edges { node { remoteId firstName } } }
}"""
CHANGES = "{ providers { name capabilities { changes } } }"
DEALS = 'query($n: Int) { deals(provider: "basicsos", first: $n) { edges { node { id } } } }'


def polled(kind: str, url: str, **settings: object) -> ProviderSettings:
    """The demo's provider of `kind` at `url`, polled every `INTERVAL` seconds."""
    update = {"rate_limit": False, "poll_interval": INTERVAL, **settings}
    return demo_provider(kind, url).model_copy(update=update)


@contextmanager
def emulator(kind: str, options: EmulatorOptions = SMALL) -> Iterator[str]:
    """A fresh emulator of `kind` (the tests change its data): its URL."""
    with ExitStack() as stack:
        yield emulator_servers(stack, [kind], options)[kind]


def metric(gateway: GraphQLClient, name: str, **labels: str) -> float:
    text = gateway.http.get("/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def first_names(gateway: GraphQLClient, kind: str) -> dict[str, str | None]:
    edges = gateway.data(CONTACTS, {"provider": kind})["contacts"]["edges"]
    return {e["node"]["remoteId"]: e["node"]["firstName"] for e in edges}


@pytest.mark.parametrize("kind", KINDS)
async def test_the_hub_hears_each_change_with_its_id_after_a_silent_first_poll(kind: str) -> None:
    with emulator(kind) as url:
        settings = polled(kind, url)
        cls = source_class(kind)
        async with open_client(settings, cls.client_auth(settings)) as http:
            hub = ChangeHub()
            poller = Poller(cls(settings, http), hub, Metrics(), whole_max=2000)
            async with hub.listen() as queue:
                await poller.round()
                assert queue.empty()  # the first poll records what there is, and says nothing
                updated, deleted = contact_ids(kind, url, 2)
                created = edit(kind, url, updated=updated, renamed="Zelda", deleted=deleted)
                await poller.round()
                changes = [queue.get_nowait() for _ in range(queue.qsize())]
    assert {c.source for c in changes} == {ChangeSource.POLL}
    # BasicsOS deletes a contact's notes with it: those are changes too, of other lists.
    contacts = {(c.id, c.kind) for c in changes if c.entity is Entity.CONTACT}
    assert contacts == {
        (updated, ChangeKind.UPDATED),
        (deleted, ChangeKind.DELETED),
        (created, ChangeKind.CREATED),
    }


@pytest.mark.parametrize("kind", KINDS)
def test_a_change_in_the_provider_shows_in_the_next_query_within_the_interval(kind: str) -> None:
    with (
        emulator(kind) as url,
        serving(Settings(providers=[polled(kind, url, cache_ttl=300)])) as gateway,
    ):
        providers = gateway.data(CHANGES)["providers"]
        assert providers == [{"name": kind, "capabilities": {"changes": "POLL"}}]
        lists = 2 if kind == "revyops" else 4
        wait_until(
            lambda: (
                metric(gateway, "crm_gateway_polls_total", provider=kind, outcome="ok") >= lists
            ),
            what="the first poll of every list",
        )
        before = first_names(gateway, kind)
        cached = gateway.post(CONTACTS, {"provider": kind})["extensions"]["cost"]["actual"]
        assert cached == 0  # the list is cached: only a poll can make it fresh
        updated, deleted = contact_ids(kind, url, 2)
        created = edit(kind, url, updated=updated, renamed="Zelda", deleted=deleted)
        changed = {**before, updated: "Zelda", created: "Zelda"}
        del changed[deleted]
        wait_until(
            lambda: first_names(gateway, kind) == changed,
            what=f"the changes made in {kind} in the gateway's answer",
            timeout=INTERVAL + 2,
        )
        assert metric(gateway, "crm_gateway_poll_changes_total", provider=kind) >= 3
        assert metric(gateway, "crm_gateway_poll_requests_total", provider=kind) > 0


def test_the_poller_keeps_to_its_share_and_the_provider_never_says_429() -> None:
    # BasicsOS allows 180 requests a minute; the poller takes 10 % (18) and leaves the rest
    # to the clients. A round of its four lists costs 9 requests: two rounds, then it waits.
    limited = EmulatorOptions(rate_limits=True, companies=10, contacts=30, deals=10, notes=10)
    with emulator("basicsos", limited) as url:
        provider = polled("basicsos", url, rate_limit=True)
        with serving(Settings(providers=[provider])) as gateway:
            wait_until(
                lambda: metric(gateway, "crm_gateway_poll_requests_total") >= 18,
                what="the poller's share of the window",
            )
            started = time.monotonic()
            while time.monotonic() - started < 1:  # clients read on while the poller waits
                for size in (1, 2, 3):
                    gateway.data(DEALS, {"n": size})
                time.sleep(0.1)
            assert metric(gateway, "crm_gateway_poll_requests_total") == 18
        stats = httpx.get(f"{url}/_emulator/stats").json()
    assert "429" not in stats["by_status"]
    assert stats["requests"] > 18  # the clients' reads went through


def holder(replicas: list[GraphQLClient]) -> int:
    """Which of `replicas` polls, once both have been up for three rounds."""
    wait_until(
        lambda: sum(metric(r, "crm_gateway_polls_total", outcome="ok") for r in replicas) >= 6,
        what="three rounds of polls",
    )
    polling = [n for n, r in enumerate(replicas) if metric(r, "crm_gateway_poll_requests_total")]
    assert len(polling) == 1, "one replica polls"
    return polling[0]


def test_one_replica_polls_each_provider_and_both_serve_its_changes() -> None:
    with ExitStack() as exits:
        redis = exits.enter_context(RedisProcess())
        url = exits.enter_context(emulator("revyops"))
        settings = Settings(
            providers=[polled("revyops", url, cache_ttl=300)],
            cursor_secret="test-cursor-secret-kQ3vX8wZ",
            redis_url=redis.url,
            redis_timeout=5.0,  # a busy machine must not make Redis look away
        )
        stops = [exits.enter_context(ExitStack()) for _ in range(2)]
        replicas = [stop.enter_context(serving(settings)) for stop in stops]
        polls = holder(replicas)
        before = [first_names(r, "revyops") for r in replicas]
        updated, deleted = contact_ids("revyops", url, 2)
        created = edit("revyops", url, updated=updated, renamed="Zelda", deleted=deleted)
        changed = {**before[0], updated: "Zelda", created: "Zelda"}
        del changed[deleted]
        wait_until(
            lambda: all(first_names(r, "revyops") == changed for r in replicas),
            what="the change in both replicas' answers",
            timeout=INTERVAL + 2,
        )
        stops[polls].close()  # the poller's replica stops: the other takes the lease over
        other = replicas[1 - polls]
        wait_until(
            lambda: metric(other, "crm_gateway_poll_requests_total") > 0,
            what="the other replica to poll",
            timeout=INTERVAL + 2,
        )

"""The poller over a mock provider: a silent first round, then one change per record
changed, published on the hub (which forgets the provider's cache); its reads pass the
budget's gate and skip the cache; failures and the Redis lease."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.cache import ReadCache
from gateway.calls import Call
from gateway.live.changes import ChangeKind, ChangeSource, RecordChange
from gateway.live.hub import ChangeHub
from gateway.live.poller import Poller
from gateway.metrics import Metrics
from gateway.records import Entity
from gateway.responses import ResponseCache, polling, uncached
from gateway.settings import ConfigError, load_settings
from tests.unit.fake_layer import Below, ok
from tests.unit.mock_provider import source

AT = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
Rows = dict[str, list[dict[str, Any]]]


def revyops(rows: Rows, down: set[str]) -> Callable[[httpx.Request], httpx.Response]:
    """RevyOps answering every page of its two lists from `rows` (by `contacts`,
    `companies`), but 503 for the lists named in `down`."""

    def answer(request: httpx.Request) -> httpx.Response:
        name = request.url.path.rsplit("/", 1)[-1]
        if name in down:
            return httpx.Response(503, json={"detail": "down"})
        results = rows[name]
        return httpx.Response(
            200, json={"count": len(results), "next": None, "previous": None, "results": results}
        )

    return answer


class Setup:
    def __init__(self, lease: Any = None) -> None:
        self.rows: Rows = {
            "contacts": [{"id": 1, "first_name": "Ada"}, {"id": 2, "first_name": "Bob"}],
            "companies": [{"id": 7, "name": "Acme", "domain": "acme.test"}],
        }
        self.down: set[str] = set()
        self.crm, self.provider = source("revyops", poll_interval=1.0)
        self.provider.queue(revyops(self.rows, self.down))
        self.forgotten: list[str] = []

        async def forget(provider: str) -> None:
            self.forgotten.append(provider)

        self.hub = ChangeHub(forget)
        self.metrics = Metrics()
        self.poller = Poller(
            self.crm, self.hub, self.metrics, whole_max=100, lease=lease, now=lambda: AT
        )

    def count(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(f"crm_gateway_{name}", labels)
        return value or 0.0


def heard(queue: asyncio.Queue[RecordChange]) -> list[tuple[Entity, str, ChangeKind]]:
    changes = [queue.get_nowait() for _ in range(queue.qsize())]
    assert all(
        c.source is ChangeSource.POLL and c.at == AT and c.provider == "crm" for c in changes
    )
    return [(c.entity, c.id, c.kind) for c in changes]


async def test_a_silent_first_round_then_one_change_per_record_changed() -> None:
    setup = Setup()
    async with setup.hub.listen() as queue:
        await setup.poller.round()
        assert heard(queue) == []
        assert setup.forgotten == []
        setup.rows["contacts"][0]["first_name"] = "Ada L."
        del setup.rows["contacts"][1]
        setup.rows["companies"].append({"id": 8, "name": "Beta", "domain": "beta.test"})
        await setup.poller.round()
        assert heard(queue) == [
            (Entity.CONTACT, "1", ChangeKind.UPDATED),
            (Entity.CONTACT, "2", ChangeKind.DELETED),
            (Entity.COMPANY, "8", ChangeKind.CREATED),
        ]
    assert setup.forgotten == ["crm"] * 3  # each change forgot the provider's cached reads
    assert setup.count("polls_total", provider="crm", outcome="ok") == 4
    assert setup.count("poll_requests_total", provider="crm") == len(setup.provider.requests) == 4
    assert setup.count("poll_changes_total", provider="crm", kind="deleted") == 1
    # Whole reads in the API's largest pages, for every list the provider serves.
    assert {r.url.params["page_size"] for r in setup.provider.requests} == {"1000"}


async def test_a_failed_read_publishes_nothing_and_the_next_round_compares_with_the_last_good(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "gateway.live")
    setup = Setup()
    await setup.poller.round()
    setup.down.add("contacts")
    setup.rows["contacts"][0]["first_name"] = "Ada L."
    async with setup.hub.listen() as queue:
        await setup.poller.round()
        assert heard(queue) == []
        assert "polling contacts failed" in caplog.text
        setup.down.clear()
        await setup.poller.round()
        assert heard(queue) == [(Entity.CONTACT, "1", ChangeKind.UPDATED)]
    assert "polling contacts works again" in caplog.text
    failed = setup.count("polls_total", provider="crm", outcome="UPSTREAM_UNAVAILABLE")
    assert failed == 1


class Lease:
    def __init__(self, *answers: bool) -> None:
        self.answers = list(answers)
        self.released = 0

    async def hold(self) -> bool:
        return self.answers.pop(0)

    async def release(self) -> None:
        self.released += 1


async def test_a_replica_without_the_lease_polls_nothing_and_starts_afresh_when_it_gets_it() -> (
    None
):
    lease = Lease(True, True, False, True, True, True, True)
    setup = Setup(lease)
    await setup.poller.round()  # held: records both lists
    requests = len(setup.provider.requests)
    async with setup.hub.listen() as queue:
        setup.rows["contacts"][0]["first_name"] = "Ada L."
        await setup.poller.round()  # another replica polls now
        assert len(setup.provider.requests) == requests
        await setup.poller.round()  # back: it records again, publishing nothing
        assert heard(queue) == []
        setup.rows["contacts"][0]["first_name"] = "Ada M."
        await setup.poller.round()
        assert heard(queue) == [(Entity.CONTACT, "1", ChangeKind.UPDATED)]


async def test_the_poller_runs_round_after_round_and_gives_the_lease_up_when_stopped() -> None:
    lease = Lease(*[True] * 100)
    setup = Setup(lease)
    slept: list[float] = []
    two_rounds = asyncio.Event()

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:
            two_rounds.set()
        await asyncio.sleep(0)

    setup.poller.sleep = sleep
    task = asyncio.create_task(setup.poller.run())
    await two_rounds.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert lease.released == 1
    assert setup.count("polls_total", provider="crm", outcome="ok") >= 4
    assert all(0 < s <= 1.0 for s in slept)  # the rest of each 1 s interval


def test_reads_while_polling_wait_for_the_gate_and_leave_the_cache_alone() -> None:
    gates: list[str] = []

    async def gate() -> None:
        gates.append("waited")

    async def reads() -> None:
        store: ReadCache[httpx.Response] = ReadCache("tenant", ttl=30.0, maxsize=10)
        below = Below(*(ok() for _ in range(4)))
        layer = ResponseCache(below, store)
        call = Call("GET", "/contacts")
        await layer.send(call)  # a client's read: cached
        with polling(gate), uncached(False):  # nothing inside brings the cache back
            await layer.send(call)
            await layer.send(call)
        assert len(below.calls) == 3
        assert gates == ["waited", "waited"]
        await layer.send(call)  # the client's cached read is still there
        assert len(below.calls) == 3

    asyncio.run(reads())


def test_polling_a_provider_with_webhooks_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        "[[providers]]\n"
        'name = "crm"\n'
        'kind = "attio"\n'
        'base_url = "https://api.attio.test"\n'
        'credentials = { api_key = "k" }\n'
        "webhooks = true\n"
        "poll_interval = 5\n"
    )
    with pytest.raises(ConfigError) as refused:
        load_settings(config)
    assert str(refused.value) == (
        f"{config}:7: providers[0].poll_interval: provider 'crm' has `webhooks = true`, "
        "which already say what changed: set one or the other"
    )

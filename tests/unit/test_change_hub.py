"""The change hub: a change forgets the provider's cache before any listener hears it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from gateway.live.changes import ChangeKind, ChangeSource, RecordChange
from gateway.live.echoes import Echoes
from gateway.live.hub import QUEUE_SIZE, ChangeHub
from gateway.records import Entity
from tests.unit.fake_time import FakeTime


def change(record_id: str = "1", provider: str = "attio") -> RecordChange:
    at = datetime(2026, 12, 8, tzinfo=UTC)
    return RecordChange(
        provider, Entity.CONTACT, record_id, ChangeKind.UPDATED, ChangeSource.WEBHOOK, at
    )


async def test_a_change_forgets_the_provider_then_reaches_every_listener() -> None:
    events: list[str] = []

    async def forget(provider: str) -> None:
        events.append(f"forget {provider}")

    hub = ChangeHub(forget)
    async with hub.listen() as first, hub.listen() as second:
        assert hub.listeners == 2
        await hub.publish(change(provider="haste"))
        assert events == ["forget haste"]
        assert (await first.get()).provider == "haste"
        assert (await second.get()).provider == "haste"
    assert hub.listeners == 0
    await hub.publish(change())  # no listener left: nothing waits for it
    assert events == ["forget haste", "forget attio"]


async def test_a_listener_that_falls_behind_loses_its_oldest_changes() -> None:
    hub = ChangeHub()
    async with hub.listen() as queue:
        for n in range(QUEUE_SIZE + 3):
            await hub.publish(change(str(n)))
        assert queue.qsize() == QUEUE_SIZE
        assert (await queue.get()).id == "3"


# --- the gateway's own writes and their echoes ---------------------------------------------


def sourced(source: ChangeSource, kind: ChangeKind = ChangeKind.UPDATED) -> RecordChange:
    return replace(change(), source=source, kind=kind)


async def test_a_write_is_heard_once_though_its_webhook_echoes_it() -> None:
    hub = ChangeHub()
    async with hub.listen() as queue:
        hub.written(sourced(ChangeSource.GATEWAY))
        await hub.publish(sourced(ChangeSource.WEBHOOK))  # the echo
        await hub.publish(sourced(ChangeSource.WEBHOOK))  # a genuine later change
        assert [queue.get_nowait().source for _ in range(queue.qsize())] == [
            ChangeSource.GATEWAY,
            ChangeSource.WEBHOOK,
        ]


async def test_an_echo_forgets_the_cache_all_the_same() -> None:
    forgotten: list[str] = []

    async def forget(provider: str) -> None:
        forgotten.append(provider)

    hub = ChangeHub(forget)
    hub.written(sourced(ChangeSource.GATEWAY))
    assert forgotten == []  # the write forgot them itself
    await hub.publish(sourced(ChangeSource.POLL))
    assert forgotten == ["attio"]


def test_each_write_swallows_one_echo_of_its_record_and_kind() -> None:
    echoes = Echoes()
    for _ in range(2):
        assert not echoes.is_echo(sourced(ChangeSource.GATEWAY))
    assert not echoes.is_echo(sourced(ChangeSource.WEBHOOK, ChangeKind.DELETED))  # other kind
    assert not echoes.is_echo(replace(change("2"), source=ChangeSource.WEBHOOK))  # other id
    assert echoes.is_echo(sourced(ChangeSource.WEBHOOK))
    assert echoes.is_echo(sourced(ChangeSource.POLL))
    assert not echoes.is_echo(sourced(ChangeSource.WEBHOOK))
    assert len(echoes) == 0


def test_the_window_bounds_what_an_unechoed_write_may_swallow() -> None:
    clock = FakeTime()
    echoes = Echoes(window=10, clock=clock)
    echoes.is_echo(sourced(ChangeSource.GATEWAY))
    clock.advance(10.5)
    assert not echoes.is_echo(sourced(ChangeSource.WEBHOOK))  # a genuine change, delivered
    assert len(echoes) == 0


def test_gateway_changes_are_never_echoes_of_one_another() -> None:
    echoes = Echoes()
    assert not echoes.is_echo(sourced(ChangeSource.GATEWAY))
    assert not echoes.is_echo(sourced(ChangeSource.GATEWAY))

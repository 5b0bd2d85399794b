"""The change hub: a change forgets the provider's cache before any listener hears it."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.live.changes import ChangeKind, ChangeSource, RecordChange
from gateway.live.hub import QUEUE_SIZE, ChangeHub
from gateway.records import Entity


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

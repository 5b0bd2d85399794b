"""Polling the providers that send no webhooks: every `poll_interval` seconds, what changed
in each of a provider's lists, published as one `RecordChange` per record (`source=POLL`).

Each provider with `poll_interval` set (and `webhooks` off) gets one task for the app's
lifespan (`polling`). A round polls the provider's lists one after the other, each the
cheapest way its API allows (`gateway.live.tracking`); the next round starts
`poll_interval` seconds after this one started, or at once when a round took longer
(the budget, `gateway.live.budget`, may stretch it). A poll reads the provider's current
state, past every cache and without filling one; its changes, published on the hub, then
evict that provider's cached reads. With Redis, one replica at a time polls a provider
(`gateway.live.lease`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gateway import metrics as accounting
from gateway.calls import Clock, Sleep
from gateway.datasources import DataSource
from gateway.errors import GatewayError
from gateway.limiter import Share, sharing
from gateway.live.budget import PollBudget
from gateway.live.changes import ChangeSource, RecordChange
from gateway.live.diff import Change
from gateway.live.hub import ChangeHub
from gateway.live.lease import Lease
from gateway.live.tracking import ListTooLong, StampedTracker, Tracker, WholeTracker
from gateway.metrics import Metrics, OperationStats
from gateway.records import Entity
from gateway.settings import Settings
from gateway.shared import RedisState
from gateway.upstream import Upstream

if TYPE_CHECKING:
    from resolvers.context import Gateway

log = logging.getLogger("gateway.live")

# Whom the poller's requests count for in the limiter's shares (no client name starts so).
POLLER = "~poller"
# A lease outlives a few missed renewals (a round slowed down by the budget).
LEASE_ROUNDS = 3
MIN_LEASE_SECONDS = 60.0


def trackers(source: DataSource, whole_max: int) -> dict[Entity, Tracker]:
    """A tracker for each list `source` serves, by the way its API allows."""
    return {
        entity: StampedTracker(source, entity)
        if entity in source.stamped
        else WholeTracker(source, entity, whole_max)
        for entity in Entity
        if entity in source.capabilities.entities
    }


class Poller:
    """Polls one provider instance, `source`, and publishes what changed on `hub`.

    `clock`, `sleep` and `now` (the changes' time) are parameters for tests."""

    def __init__(
        self,
        source: DataSource,
        hub: ChangeHub,
        metrics: Metrics,
        *,
        whole_max: int,
        lease: Lease | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.source = source
        self.name = source.name
        self.hub = hub
        self.metrics = metrics
        self.whole_max = whole_max
        self.lease = lease
        self.clock, self.sleep, self.now = clock, sleep, now
        settings = source.settings
        self.interval = settings.poll_interval or 0.0
        self.share = Share(POLLER, settings.poll_share)
        self.budget = PollBudget(source.upstream.limiter, settings.poll_share)
        self.lists = trackers(source, whole_max)
        self.failing: set[Entity] = set()

    async def run(self) -> None:
        """Round after round until cancelled."""
        try:
            while True:
                started = self.clock()
                try:
                    await self.round()
                except Exception:  # a fault of one round must not end polling for good
                    log.exception("%s: a round of polls failed", self.name)
                await self.sleep(max(0.0, self.interval - (self.clock() - started)))
        finally:
            if self.lease is not None:
                await asyncio.shield(self.lease.release())

    async def round(self) -> None:
        """Poll each list once, if this replica holds the lease."""
        for entity, tracker in list(self.lists.items()):
            if self.lease is not None and not await self.lease.hold():
                # Another replica polls: start afresh (recording only) should it stop.
                self.lists = trackers(self.source, self.whole_max)
                return
            for record_id, kind in await self.poll(entity, tracker):
                change = RecordChange(
                    self.name, entity, record_id, kind, ChangeSource.POLL, self.now()
                )
                await self.hub.publish(change)
                self.metrics.polling.changes.labels(self.name, kind.value).inc()

    async def poll(self, entity: Entity, tracker: Tracker) -> list[Change]:
        """What changed in one list, read within the poller's budget and counted; nothing
        when the read failed (the next round tries again)."""
        stats = OperationStats(self.metrics)
        token = accounting.begin(stats)
        waited = self.budget.waited
        changes: list[Change] = []
        try:
            with sharing(self.share), Upstream.polling(self.budget.wait):
                changes = await tracker.poll()
            outcome = "ok"
        except ListTooLong as error:
            outcome = "too_long"
            del self.lists[entity]
            log.warning(
                "%s holds %s: they are no longer polled (`merge_whole_max` bounds a whole read)",
                self.name,
                error,
            )
        except GatewayError as error:
            outcome = error.code
            self._failed(entity, error)
        finally:
            accounting.end(token)
        if outcome == "ok" and entity in self.failing:
            self.failing.discard(entity)
            log.info("%s: polling %s works again", self.name, entity.plural)
        self.metrics.polling.polls.labels(self.name, outcome).inc()
        self.metrics.polling.requests.labels(self.name).inc(stats.requests)
        self.metrics.polling.wait.labels(self.name).inc(self.budget.waited - waited)
        return changes

    def _failed(self, entity: Entity, error: GatewayError) -> None:
        if entity not in self.failing:  # once, not every round
            self.failing.add(entity)
            log.warning(
                "%s: polling %s failed (%s); trying again every round",
                self.name,
                entity.plural,
                error,
            )


def pollers(settings: Settings, gateway: Gateway, redis: RedisState | None) -> list[Poller]:
    """A poller for each provider with `poll_interval` (and no webhooks)."""
    found = []
    for provider in settings.providers:
        if provider.poll_interval is None or provider.webhooks:
            continue
        source = gateway.sources[provider.name]
        ttl = max(MIN_LEASE_SECONDS, LEASE_ROUNDS * provider.poll_interval)
        lease = None if redis is None else Lease(redis, source.identity, ttl)
        poller = Poller(
            source, gateway.changes, gateway.metrics, whole_max=gateway.merge_whole_max, lease=lease
        )
        found.append(poller)
    return found


@asynccontextmanager
async def polling(
    settings: Settings, gateway: Gateway, redis: RedisState | None
) -> AsyncIterator[list[Poller]]:
    """The pollers of `settings`' providers, running until the block ends."""
    running = pollers(settings, gateway, redis)
    tasks = [asyncio.create_task(p.run(), name=f"poll {p.name}") for p in running]
    try:
        yield running
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

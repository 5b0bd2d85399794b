"""`recordChanged`: which changes a subscription hears, for whom, and until when.

A subscription is checked when it starts, before anything is streamed: its provider
arguments as the merged lists check theirs (limited to the client's providers), and the
client's count of open subscriptions. It then listens on the gateway's change hub until
the client stops it, or until the token it was opened with expires, which ends it with
UNAUTHENTICATED. Each event gets fresh loaders and a deadline of its own
(`Context.renew`), so reading its record never reuses an older read.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from gateway.errors import BadUserInput, CredentialsExpired
from gateway.limiter import ANONYMOUS, Share, sharing
from gateway.live.changes import ChangeKind, RecordChange
from gateway.live.hub import ChangeHub
from gateway.live.slots import SubscriptionSlots
from gateway.records import AnyRecord, Entity
from resolvers.context import Context
from resolvers.merged import lane_names

T = TypeVar("T")


@dataclass(frozen=True)
class Wanted:
    """Which changes a subscription hears: of these providers, of these entities (None:
    all of them)."""

    providers: frozenset[str]
    entities: frozenset[Entity] | None

    def __call__(self, change: RecordChange) -> bool:
        return change.provider in self.providers and (
            self.entities is None or change.entity in self.entities
        )


def wanted(
    context: Context,
    provider: str | None,
    providers: Sequence[str] | None,
    entities: Sequence[Entity] | None,
) -> Wanted:
    """The filter of a subscription's arguments, or BAD_USER_INPUT naming the argument."""
    if provider is not None and providers is not None:
        raise BadUserInput("give `provider` or `providers`, not both.", argument="providers")
    if provider is not None:
        names = [context.source(provider).name]
    elif providers is not None:
        # Every entity: the check is the merged lists', whatever the records' types.
        names = lane_names(context.sources, Entity.CONTACT, providers)
    else:
        names = list(context.sources)
    if entities is not None and not entities:
        raise BadUserInput("`types` must name at least one type.", argument="types")
    return Wanted(frozenset(names), None if entities is None else frozenset(entities))


def _release(
    hub: ChangeHub, queue: asyncio.Queue[RecordChange], slots: SubscriptionSlots, client: str
) -> None:
    hub.leave(queue)
    slots.give_back(client)


class ChangeStream(Generic[T]):
    """The events of one subscription, each made by `event` from a change it wants.

    It holds its client's slot and its place on the hub from the moment it is made until
    it is closed, or dropped unclosed (an event stream its transport never started), so
    neither can leak.
    """

    def __init__(
        self, context: Context, wanted: Wanted, event: Callable[[RecordChange], T]
    ) -> None:
        gateway = context.gateway
        client = context.client
        self.context = context
        self.wanted = wanted
        self.event = event
        self._expires_in = (
            None
            if client is None or client.expires_at is None
            else client.expires_at - gateway.wall_clock()
        )
        if self._expires_in is not None and self._expires_in <= 0:
            raise CredentialsExpired
        name = "" if client is None else client.name
        gateway.subscriptions.take(name)
        self._queue = gateway.changes.join()
        self._release = weakref.finalize(
            self, _release, gateway.changes, self._queue, gateway.subscriptions, name
        )
        loop = asyncio.get_running_loop()
        self._expires = None if self._expires_in is None else loop.time() + self._expires_in

    def __aiter__(self) -> ChangeStream[T]:
        return self

    async def __anext__(self) -> T:
        if not self._release.alive:
            raise StopAsyncIteration
        while True:
            change = await self._next()
            if self.wanted(change):
                self.context.renew()
                return self.event(change)

    async def _next(self) -> RecordChange:
        if self._expires is None:
            return await self._queue.get()
        try:
            async with asyncio.timeout_at(self._expires):
                return await self._queue.get()
        except TimeoutError:
            await self.aclose()
            raise CredentialsExpired from None

    async def aclose(self) -> None:
        self._release()


async def changed_record(context: Context, change: RecordChange) -> AnyRecord | None:
    """The record as it is now, read through the loaders and caches with this event's
    deadline and the client's share of the budget; None once it is gone."""
    if change.kind is ChangeKind.DELETED:
        return None
    source = context.sources.get(change.provider)
    if source is None or change.entity not in source.entities:
        return None
    if not source.valid_id(change.entity, change.id):
        return None
    client = context.client
    # Streamed over HTTP, events resolve after the request's own share was set and reset.
    with sharing(Share(client.name, client.weight) if client else ANONYMOUS):
        lookup = context.loaders.record(source, change.entity).load(change.id)
        return await context.before_deadline(change.provider, lookup)

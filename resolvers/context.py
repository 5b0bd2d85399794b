"""The per-request GraphQL context, built fresh for every request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import strawberry
from strawberry.fastapi import BaseContext

from gateway.clients import Client
from gateway.datasources import DataSource as DataSource  # the schema gets it from here
from gateway.errors import BadUserInput, Forbidden, GatewayError, Unsupported, UpstreamTimeout
from gateway.live.hub import ChangeHub
from gateway.live.slots import SubscriptionSlots
from gateway.metrics import Metrics
from gateway.pagination.connection import PageLimits
from gateway.pagination.cursors import CursorCodec
from resolvers.loaders import Loaders

T = TypeVar("T")


@dataclass(frozen=True)
class InputLimits:
    """How much a client may send in the arguments of one operation (see Settings)."""

    max_list_length: int = 100
    max_string_length: int = 1024
    max_input_depth: int = 10
    max_input_values: int = 5000
    max_bulk_operations: int = 100
    max_merge_contacts: int = 10


@dataclass
class Gateway:
    """What lives as long as the app: data sources, cursor codec, limits."""

    sources: Mapping[str, DataSource]
    codec: CursorCodec
    limits: PageLimits
    batching: bool = True
    input_limits: InputLimits = field(default_factory=InputLimits)
    operation_deadline: float = 30.0
    max_operation_cost: int = 50
    merge_whole_max: int = 2000
    metrics: Metrics = field(default_factory=Metrics)
    changes: ChangeHub = field(default_factory=ChangeHub)
    subscriptions: SubscriptionSlots = field(default_factory=SubscriptionSlots)
    # POSIX time, which tokens' expiry is given in; tests set it.
    wall_clock: Callable[[], float] = time.time

    def source(self, provider: str) -> DataSource:
        """The data source of a configured provider instance, or BAD_USER_INPUT."""
        return source_of(self.sources, provider)


def source_of(sources: Mapping[str, DataSource], provider: str) -> DataSource:
    """The data source named `provider` among `sources`, or BAD_USER_INPUT naming them."""
    source = sources.get(provider)
    if source is None:
        known = ", ".join(sorted(sources)) or "none"
        raise BadUserInput(
            f"unknown provider {provider!r}; configured providers: {known}.",
            argument="provider",
        )
    return source


class Context(BaseContext):
    """Typed request context: the app-wide gateway state, who is asking, and this
    request's loaders.

    `sources` is the client's view of the gateway's providers: the ones it may use. The
    resolvers go through it (never `gateway.sources`), so another provider is unknown to
    the client, in lookups and in error messages alike. `refused` is set when the
    request carried no valid credentials: the endpoint answers it without executing.
    `refusal` is what an extension refused a subscription with (`schema.subscription`).
    """

    def __init__(
        self,
        gateway: Gateway,
        client: Client | None = None,
        refused: GatewayError | None = None,
    ) -> None:
        super().__init__()
        self.gateway = gateway
        self.client = client
        self.refused = refused
        self.sources: Mapping[str, DataSource] = (
            gateway.sources
            if client is None or client.providers is None
            else {n: s for n, s in gateway.sources.items() if client.may_use(n)}
        )
        self.refusal: Exception | None = None
        self.renew()

    def renew(self) -> None:
        """Fresh loaders and a deadline of its own: for the operation, and again for each
        event of a subscription (nothing read for an earlier event is reused)."""
        self.loaders = Loaders(self.sources, batching=self.gateway.batching)
        # UNSUPPORTED links already reported, by (provider, link, field path without indexes).
        self.unsupported: dict[tuple[str, str, tuple[str, ...]], Unsupported] = {}
        # On the event loop's clock, the one `asyncio.timeout_at` reads.
        self.deadline = asyncio.get_running_loop().time() + self.gateway.operation_deadline

    def for_operation(self) -> Context:
        """A context for another operation of the same HTTP request (an item of a batch):
        the same client, request and deadline; loaders and reports of its own, so a query
        after a mutation reads what the mutation wrote."""
        other = Context(self.gateway, self.client, self.refused)
        other.request, other.response = self.request, self.response
        other.background_tasks = self.background_tasks
        other.deadline = self.deadline
        return other

    def source(self, provider: str) -> DataSource:
        """The data source of a provider this client may use, or BAD_USER_INPUT."""
        return source_of(self.sources, provider)

    def require_write(self) -> None:
        """FORBIDDEN unless the client may write (an open gateway has no client: it may)."""
        if self.client is not None and not self.client.can_write:
            raise Forbidden(f"client {self.client.name!r} has no `write` scope.")

    def expired(self) -> bool:
        return asyncio.get_running_loop().time() >= self.deadline

    def timeout(self, provider: str) -> UpstreamTimeout:
        return UpstreamTimeout(
            f"provider {provider!r} did not answer within the operation's deadline "
            f"({self.gateway.operation_deadline:g} s).",
            provider=provider,
        )

    async def before_deadline(self, provider: str, work: Awaitable[T]) -> T:
        """`work`'s result, or UPSTREAM_TIMEOUT once the operation's deadline has passed.

        A coroutine is cancelled at the deadline (its upstream call with it); a future,
        such as a dataloader's, may be shared by other fields and is left to finish.
        """
        if isinstance(work, asyncio.Future):
            shared = work
            shared.add_done_callback(_consume)
            work = asyncio.shield(shared)
        scope = asyncio.timeout_at(self.deadline)
        try:
            async with scope:
                return await work
        except TimeoutError:
            if not scope.expired():
                raise
            raise self.timeout(provider) from None


def _consume(future: asyncio.Future[object]) -> None:
    # Nobody may await a future left behind at the deadline: retrieve its error so
    # asyncio does not log it as never retrieved.
    if not future.cancelled():
        future.exception()


Info = strawberry.Info[Context, None]

"""Root query resolvers: lists as Relay windows, nodes by global id."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from contextlib import suppress
from dataclasses import replace
from typing import Any

from gateway.errors import UpstreamTimeout
from gateway.listquery import ListQuery
from gateway.pagination.connection import ConnectionArgs, ConnectionSlice, check_args
from gateway.records import AnyRecord, Entity, Link
from resolvers.context import Context
from resolvers.globalids import parse_global_id
from resolvers.loaders import NOT_READY


async def list_records(
    context: Context,
    entity: Entity,
    provider: str,
    args: ConnectionArgs,
    query: ListQuery | None = None,
) -> ConnectionSlice[AnyRecord]:
    """One window of a provider's list of `entity`; its records prime the by-id loader."""
    gateway = context.gateway
    source = context.source(provider)
    window = await context.before_deadline(
        provider, source.connection(entity, check_args(args, gateway.limits), gateway.codec, query)
    )
    context.loaders.prime([edge.node for edge in window.edges])
    count = window.count
    if count is not None:
        # `totalCount` may cost a request of its own: it keeps the same deadline.
        window = replace(window, count=lambda: context.before_deadline(provider, count()))
    return window


async def prefetch(
    context: Context, provider: str, link: Link, entity: Entity, ids: Iterable[str | None]
) -> None:
    """Looks up, in one batch, the records a to-one `link` field will ask for on every node
    of a window, and waits for them before the window is returned.

    The link fields then find their records ready and resolve synchronously: graphql-core
    completes a list of plain values without a task per item. The requests are the ones
    the fields' own lookups would have batched; a failure is left for each field to report.
    """
    source = context.sources.get(provider)
    if source is None or link not in source.links or entity not in source.entities:
        return
    loader = context.loaders.record(source, entity)
    wanted = [i for i in dict.fromkeys(ids) if i is not None and source.valid_id(entity, i)]
    if not wanted:
        return
    lookups = asyncio.gather(*(loader.load(i) for i in wanted), return_exceptions=True)
    with suppress(UpstreamTimeout):  # each field reports the deadline itself
        await context.before_deadline(provider, lookups)


def ready_link(
    context: Context, provider: str, link: Link, entity: Entity, remote_id: str | None
) -> Any:
    """What a to-one link resolves to when that needs no await: None when unset, the record
    (or None) a lookup of this request already finished; else NOT_READY."""
    if remote_id is None:
        return None
    source = context.sources.get(provider)
    if source is None or link not in source.links:
        return NOT_READY  # the lookup path reports it
    return context.loaders.ready(provider, entity, remote_id)


async def find_node(context: Context, value: str, argument: str = "id") -> AnyRecord | None:
    """The record a global id names; None when it does not exist, or cannot: a remote id
    its provider never hands out is not sent upstream at all, and a provider the client may
    not use holds nothing for it."""
    entity, provider, remote_id = parse_global_id(value, argument)
    source = context.sources.get(provider)
    if source is None:
        client = context.client
        if client is not None and client.providers is not None:
            # Null whether the provider exists or not, so the answer does not tell.
            return None
        # A client that sees every provider learns nothing new: name the configured ones.
        source = context.source(provider)
    if entity not in source.entities:
        return None
    if not source.valid_id(entity, remote_id):
        return None
    return await context.before_deadline(
        provider, context.loaders.record(source, entity).load(remote_id)
    )


def find_nodes(context: Context, values: list[str]) -> list[Coroutine[Any, Any, AnyRecord | None]]:
    """One awaitable per id (batched per provider), so one bad or failing id fails only its
    item."""
    return [find_node(context, v, "ids") for v in values]

"""Root query resolvers: lists as Relay windows, nodes by global id."""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

from strawberry.relay import GlobalID
from strawberry.relay.types import GlobalIDValueError

from gateway.errors import BadUserInput
from gateway.listquery import ListQuery
from gateway.pagination import ConnectionArgs, ConnectionSlice, check_args
from gateway.records import AnyRecord, Entity
from resolvers.context import Context

TYPE_ENTITIES = {
    "Contact": Entity.CONTACT,
    "Company": Entity.COMPANY,
    "Deal": Entity.DEAL,
    "Note": Entity.NOTE,
}


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


def parse_global_id(value: str, argument: str) -> tuple[Entity, str, str]:
    """(entity, provider, remote id) inside a global id, or BAD_USER_INPUT."""
    try:
        global_id = GlobalID.from_id(value)
    except GlobalIDValueError:
        raise BadUserInput(f"`{argument}` is not a valid node id.", argument=argument) from None
    entity = TYPE_ENTITIES.get(global_id.type_name)
    provider, sep, remote_id = global_id.node_id.partition(":")
    if entity is None or not sep or not provider or not remote_id:
        raise BadUserInput(f"`{argument}` is not a node id of this gateway.", argument=argument)
    return entity, provider, remote_id


async def find_node(context: Context, value: str, argument: str = "id") -> AnyRecord | None:
    """The record a global id names; None when it does not exist, or cannot: a remote id
    its provider never hands out is not sent upstream at all."""
    entity, provider, remote_id = parse_global_id(value, argument)
    source = context.source(provider)  # BAD_USER_INPUT naming the client's own
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

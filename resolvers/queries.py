"""Root query resolvers: lists as Relay windows, nodes by global id."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from strawberry.relay import GlobalID
from strawberry.relay.types import GlobalIDValueError

from gateway.errors import BadUserInput, NotFound
from gateway.pagination import ConnectionArgs, ConnectionSlice, check_args
from gateway.records import AnyRecord, Entity
from resolvers.context import Gateway

TYPE_ENTITIES = {
    "Contact": Entity.CONTACT,
    "Company": Entity.COMPANY,
    "Deal": Entity.DEAL,
    "Note": Entity.NOTE,
}


async def list_records(
    gateway: Gateway, entity: Entity, provider: str, args: ConnectionArgs
) -> ConnectionSlice[AnyRecord]:
    """One window of a provider's list of `entity`."""
    source = gateway.source(provider)
    return await source.connection(entity, check_args(args, gateway.limits), gateway.codec)


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


async def find_node(gateway: Gateway, value: str, argument: str = "id") -> AnyRecord | None:
    """The record a global id names; None when it no longer exists."""
    entity, provider, remote_id = parse_global_id(value, argument)
    source = gateway.sources.get(provider)
    if source is None or entity not in source.entities:
        return None
    try:
        return await source.get(entity, remote_id)
    except NotFound:
        return None


def find_nodes(gateway: Gateway, values: list[str]) -> list[Coroutine[Any, Any, AnyRecord | None]]:
    """One awaitable per id, so that one failing id fails only its own list item."""
    for value in values:
        parse_global_id(value, "ids")
    return [find_node(gateway, v, "ids") for v in values]

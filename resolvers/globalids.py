"""Global node ids, both ways: Relay's base64 of `Type:nodeKey`, where the node key is
`provider:remoteId`. Strawberry writes the outer part from a node's `NodeID` field."""

from __future__ import annotations

from strawberry.relay import GlobalID
from strawberry.relay.types import GlobalIDValueError

from gateway.errors import BadUserInput
from gateway.records import Entity

# The GraphQL type of each entity, as global ids name it.
TYPE_NAMES = {
    Entity.CONTACT: "Contact",
    Entity.COMPANY: "Company",
    Entity.DEAL: "Deal",
    Entity.NOTE: "Note",
}
TYPE_ENTITIES = {name: entity for entity, name in TYPE_NAMES.items()}


def node_key(provider: str, remote_id: str) -> str:
    """The node id inside a global id: provider instance and remote id."""
    return f"{provider}:{remote_id}"


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

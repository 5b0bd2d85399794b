"""Following links between records through the request's loaders.

To-one links (`Contact.company`) are by-id lookups. A list link uses the ids
the record carries inline when the API sent them, else the provider's
children fetch for a batch of parents. The whole child list of a parent is
fetched at once (APIs filter by parent, they do not page per parent), so the
nested connection is cut from it in memory by the same Relay engine.
"""

from __future__ import annotations

from gateway.pagination import (
    ConnectionArgs,
    ConnectionSlice,
    OffsetPage,
    binding_key,
    check_args,
    paginate_offsets,
)
from gateway.records import CHILD_ENTITY, AnyRecord, Entity, Link
from resolvers.context import Context


async def linked_record(
    context: Context, provider: str, link: Link, entity: Entity | None, remote_id: str | None
) -> AnyRecord | None:
    """The record a to-one link points at; None when unset or gone."""
    if entity is None or remote_id is None:
        return None
    source = context.gateway.source(provider)
    source.require_link(link)
    if entity not in source.entities:
        return None
    return await context.loaders.record(source, entity).load(remote_id)


async def linked_list(
    context: Context, record: AnyRecord, link: Link, args: ConnectionArgs
) -> ConnectionSlice[AnyRecord]:
    """A Relay window over the records `link` leads to from `record`."""
    gateway = context.gateway
    checked = check_args(args, gateway.limits)
    source = gateway.source(record.provider)
    source.require_link(link)
    if link in record.linked:
        loader = context.loaders.record(source, CHILD_ENTITY[link])
        found = await loader.load_many(record.linked[link])
        items = [r for r in found if r is not None]
    else:
        items = await context.loaders.children(source, link).load(record.remote_id)
        context.loaders.prime(items)

    async def fetch(offset: int, size: int) -> OffsetPage[AnyRecord]:
        return OffsetPage(offset, items[offset : offset + size], len(items))

    binding = binding_key(record.provider, f"{link.value}:{record.remote_id}", None, None)
    return await paginate_offsets(
        checked,
        fetch=fetch,
        codec=gateway.codec,
        binding=binding,
        max_request_size=max(1, len(items)),
        aligned=False,
    )

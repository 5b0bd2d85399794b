"""Following links between records through the request's loaders.

To-one links (`Contact.company`) are by-id lookups. A list link is the data
source's nested window (`DataSource.nested_window`): its pagination family
plans it, and these resolvers hand it the parent's children as the loaders read
them, in batches of parents.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.errors import Unsupported
from gateway.listquery import ListQuery
from gateway.pagination import ConnectionArgs, ConnectionSlice, check_args
from gateway.records import CHILD_ENTITY, AnyRecord, CompanyRecord, Entity, Link
from resolvers.context import Context

# What a record's id tells without a lookup: its global id, provider and type.
KNOWN_FROM_ID = frozenset({"id", "remote_id", "provider", "__typename"})
STUBS: dict[Entity, type[CompanyRecord]] = {Entity.COMPANY: CompanyRecord}


def can_follow(context: Context, provider: str, link: Link, path: tuple[str, ...]) -> bool:
    """Whether `provider` can follow `link`; if not, the first parent at a field path fails
    with UNSUPPORTED and the others there are null without an error of their own: one
    error per field path, whose `extensions.parents` counts them all."""
    try:
        context.source(provider).require_link(link)
    except Unsupported as unsupported:
        key = (provider, link.value, path)
        error = context.unsupported.get(key)
        if error is not None:
            # Read back when the operation's errors are formatted, after every parent ran.
            error.add(parents=error.extensions["parents"] + 1)
            return False
        error = Unsupported(
            f"{unsupported.message} Reported once for this field path; "
            "`extensions.parents` counts the records it was asked of.",
            provider=provider,
            parents=1,
        )
        context.unsupported[key] = error
        raise error from None
    return True


def covered(inline: Mapping[str, Any] | None, selected: frozenset[str] | None) -> bool:
    """Whether what the API sent inline (with the id) answers every `selected` field
    (None: the selection is not known for sure)."""
    return inline is not None and selected is not None and selected <= KNOWN_FROM_ID | inline.keys()


async def linked_record(
    context: Context,
    provider: str,
    link: Link,
    entity: Entity | None,
    remote_id: str | None,
    *,
    inline: Mapping[str, Any] | None = None,
    selected: frozenset[str] | None = None,
) -> AnyRecord | None:
    """The record a to-one link points at; None when unset or gone.

    `inline`: unified fields of it the API sent with the linking record; when the
    `selected` fields are all among them (or known from the id), the record is built
    from them and nothing is looked up.
    """
    if entity is None or remote_id is None:
        return None
    source = context.source(provider)
    source.require_link(link)
    if entity not in source.entities or not source.valid_id(entity, remote_id):
        return None
    stub = STUBS.get(entity)
    if stub is not None and inline is not None and covered(inline, selected):
        return stub(provider=provider, remote_id=remote_id, **inline)
    return await context.before_deadline(
        provider, context.loaders.record(source, entity).load(remote_id)
    )


async def linked_list(
    context: Context,
    record: AnyRecord,
    link: Link,
    args: ConnectionArgs,
    query: ListQuery | None = None,
) -> ConnectionSlice[AnyRecord]:
    """A Relay window over the records `link` leads to from `record`: the data source's
    `nested_window`, given the parent's whole child list through the request's loaders
    (the ids the record lists inline, else the provider's children read for a batch of
    parents) should its family's plan take it."""
    gateway = context.gateway
    checked = check_args(args, gateway.limits)
    source = context.source(record.provider)

    async def children() -> list[AnyRecord]:
        if link in record.linked:
            loader = context.loaders.record(source, CHILD_ENTITY[link])
            found = await context.before_deadline(
                source.name, loader.load_many(record.linked[link])
            )
            return [r for r in found if r is not None]
        items = await context.before_deadline(
            source.name, context.loaders.children(source, link).load(record.remote_id)
        )
        context.loaders.prime(items)
        return items

    async def askers() -> int:
        loader = context.loaders.askers(source, link)
        return await context.before_deadline(source.name, loader.load(record.remote_id))

    window = await context.before_deadline(
        source.name,
        source.nested_window(
            record,
            link,
            checked,
            gateway.codec,
            query or ListQuery(),
            children=children,
            askers=askers,
        ),
    )
    context.loaders.prime([e.node for e in window.edges])
    return window

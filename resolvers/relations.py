"""Following links between records through the request's loaders.

To-one links (`Contact.company`) are by-id lookups. A list link uses the ids
the record carries inline when the API sent them, else the provider's
children fetch for a batch of parents: the whole child list of each parent,
the nested connection cut from it in memory by the same Relay engine. Where
the API lists the children by parent with paging (`paged_links`), a plain
nested window instead reads only the blocks of that filtered list it reaches.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from gateway.datasources import DataSource
from gateway.datasources.base import PaginationStyle
from gateway.errors import Unsupported
from gateway.listquery import Cond, ListQuery, arrange
from gateway.pagination import (
    ConnectionArgs,
    ConnectionSlice,
    OffsetPage,
    binding_key,
    check_args,
    paginate_offsets,
)
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


def field_value(record: AnyRecord, name: str) -> Any:
    """A unified field of a record, as filters and orders see it."""
    if name == "email":
        emails = getattr(record, "emails", [])
        return emails[0].address if emails else None
    if name == "amount":
        amount = getattr(record, "amount", None)
        return None if amount is None else Decimal(amount.amount)
    return getattr(record, name, None)


async def linked_list(
    context: Context,
    record: AnyRecord,
    link: Link,
    args: ConnectionArgs,
    query: ListQuery | None = None,
) -> ConnectionSlice[AnyRecord]:
    """A Relay window over the records `link` leads to from `record`, filtered and
    ordered by the gateway (it holds the parent's whole child list)."""
    query = query or ListQuery()
    gateway = context.gateway
    checked = check_args(args, gateway.limits)
    source = context.source(record.provider)
    source.require_link(link)
    binding = binding_key(record.provider, f"{link.value}:{record.remote_id}", query.key())
    if await paged(context, source, record, link, query):
        by_parent = ListQuery(filter=Cond(source.paged_links[link], "eq", record.remote_id))
        window = await context.before_deadline(
            source.name,
            source.offset_window(CHILD_ENTITY[link], checked, gateway.codec, binding, by_parent),
        )
        context.loaders.prime([e.node for e in window.edges])
        return window
    items: list[AnyRecord]
    if query.matches_nothing:
        items = []  # no child can match: none is read
    elif link in record.linked:
        loader = context.loaders.record(source, CHILD_ENTITY[link])
        found = await context.before_deadline(source.name, loader.load_many(record.linked[link]))
        items = [r for r in found if r is not None]
    else:
        items = await context.before_deadline(
            source.name, context.loaders.children(source, link).load(record.remote_id)
        )
        context.loaders.prime(items)
    if not query.empty:
        items = arrange(list(items), query, field_value)

    async def fetch(offset: int, size: int) -> OffsetPage[AnyRecord]:
        return OffsetPage(offset, items[offset : offset + size], len(items))

    return await paginate_offsets(
        checked,
        fetch=fetch,
        codec=gateway.codec,
        binding=binding,
        max_request_size=max(1, len(items)),
        aligned=False,
    )


async def paged(
    context: Context, source: DataSource, record: AnyRecord, link: Link, query: ListQuery
) -> bool:
    """Whether the window over `link` from `record` is read in blocks of the child list
    filtered by parent, rather than cut from the parent's whole child list.

    Only without a filter or order of the client's: the gateway arranges those in memory
    (ties and all), and both plans must put the children in the same order, since a
    cursor one plan gave the other may read.
    """
    if link not in source.paged_links or link in record.linked or not query.empty:
        return False
    if source.style not in (PaginationStyle.PAGE_NUMBER, PaginationStyle.INDEX_RANGE):
        return False
    if link in source.batched_links:
        # One request reads the children of every parent of the batch; blocks cost one
        # request per parent, so they pay only for a parent asked alone.
        return await context.loaders.askers(source, link).load(record.remote_id) == 1
    return True

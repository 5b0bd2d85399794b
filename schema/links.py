"""Resolvers of the relationship fields: the records, through loaders (the types make the
GraphQL objects of them)."""

from __future__ import annotations

import re

from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

from gateway.listquery import ListQuery
from gateway.pagination.connection import ConnectionArgs, ConnectionSlice
from gateway.records import AnyRecord, CompanyRecord, Entity, Link
from resolvers.context import Info
from resolvers.relations import can_follow, linked_list, linked_record

TARGET_LINK_ENTITY = {Link.CONTACT_COMPANY: Entity.COMPANY, Link.DEAL_COMPANY: Entity.COMPANY}


def _followed(record: AnyRecord, info: Info, link: Link) -> bool:
    path = tuple(key for key in info.path.as_list() if isinstance(key, str))
    return can_follow(info.context, record.provider, link, path)


CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def selected_names(selections: list[Selection]) -> frozenset[str] | None:
    """The unified names of the fields `selections` ask for, through fragments (`remoteId`
    -> `remote_id`); None when a directive makes it a guess."""
    names: set[str] = set()
    for selection in selections:
        if selection.directives:
            return None
        if isinstance(selection, SelectedField):
            names.add(CAMEL.sub("_", selection.name).lower())
        elif isinstance(selection, FragmentSpread | InlineFragment):
            inner = selected_names(selection.selections)
            if inner is None:
                return None
            names |= inner
    return frozenset(names)


async def one(
    record: AnyRecord, info: Info, link: Link, remote_id: str | None
) -> CompanyRecord | None:
    if not _followed(record, info, link):
        return None
    inline = record.inline.get(link)
    selected = None
    if inline is not None and remote_id is not None:
        # Only worth knowing where the API sent part of the record along.
        selected = selected_names(info.selected_fields[0].selections)
    found = await linked_record(
        info.context,
        record.provider,
        link,
        TARGET_LINK_ENTITY[link],
        remote_id,
        inline=inline,
        selected=selected,
    )
    return found if isinstance(found, CompanyRecord) else None


async def target(record: AnyRecord, info: Info) -> AnyRecord | None:
    if not _followed(record, info, Link.NOTE_TARGET):
        return None
    entity = getattr(record, "target_entity", None)
    return await linked_record(
        info.context, record.provider, Link.NOTE_TARGET, entity, getattr(record, "target_id", None)
    )


async def connection(
    record: AnyRecord,
    info: Info,
    link: Link,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    query: ListQuery | None = None,
) -> ConnectionSlice[AnyRecord] | None:
    if not _followed(record, info, link):
        return None
    args = ConnectionArgs(first=first, after=after, last=last, before=before)
    return await linked_list(info.context, record, link, args, query)

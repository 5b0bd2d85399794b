"""Resolvers of the relationship fields: records through loaders, then GraphQL objects."""

from __future__ import annotations

import re
from typing import TypeVar

from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

from gateway.listquery import ListQuery
from gateway.pagination import ConnectionArgs
from gateway.records import AnyRecord, CompanyRecord, Entity, Link
from resolvers.context import Info
from resolvers.relations import can_follow, linked_list, linked_record
from schema import convert
from schema import types as t

C = TypeVar("C", t.ContactConnection, t.CompanyConnection, t.DealConnection, t.NoteConnection)
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


async def one(record: AnyRecord, info: Info, link: Link, remote_id: str | None) -> t.Company | None:
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
    return convert.company(found) if isinstance(found, CompanyRecord) else None


async def target(record: AnyRecord, info: Info) -> t.Contact | t.Company | t.Deal | None:
    if not _followed(record, info, Link.NOTE_TARGET):
        return None
    entity = getattr(record, "target_entity", None)
    found = await linked_record(
        info.context, record.provider, Link.NOTE_TARGET, entity, getattr(record, "target_id", None)
    )
    node = None if found is None else convert.to_node(found)
    return None if isinstance(node, t.Note) else node


async def connection(
    cls: type[C],
    record: AnyRecord,
    info: Info,
    link: Link,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    query: ListQuery | None = None,
) -> C | None:
    if not _followed(record, info, link):
        return None
    args = ConnectionArgs(first=first, after=after, last=last, before=before)
    return convert.connection(cls, await linked_list(info.context, record, link, args, query))

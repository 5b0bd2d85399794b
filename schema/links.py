"""Resolvers of the relationship fields: records through loaders, then GraphQL objects."""

from __future__ import annotations

from typing import TypeVar

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


async def one(record: AnyRecord, info: Info, link: Link, remote_id: str | None) -> t.Company | None:
    if not _followed(record, info, link):
        return None
    found = await linked_record(
        info.context, record.provider, link, TARGET_LINK_ENTITY[link], remote_id
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

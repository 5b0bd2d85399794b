"""The root Query type."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Iterator
from typing import Annotated, Any, TypeVar

import strawberry
from strawberry import relay
from strawberry.types.nodes import SelectedField, Selection

from gateway.pagination import ConnectionArgs
from gateway.records import AnyRecord, Entity, Link
from resolvers.context import Info
from resolvers.queries import find_node, find_nodes, list_records, prefetch
from resolvers.relations import covered
from schema import convert
from schema import filters as f
from schema import types as t
from schema.links import selected_names
from schema.types import After, Before, First, Last

C = TypeVar("C", t.ContactConnection, t.CompanyConnection, t.DealConnection, t.NoteConnection)

Provider = Annotated[
    str, strawberry.argument(description="The configured provider instance to read from.")
]


def _fields(selections: list[Selection]) -> Iterator[SelectedField]:
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        else:  # a fragment: its fields count as the parent's
            yield from _fields(selection.selections)


def _node_fields(info: Info, name: str) -> list[Any]:
    """The selections of `edges { node { <name> } }` in the connection's selection."""
    level = list(info.selected_fields)
    for wanted in ("edges", "node", name):
        level = [f for parent in level for f in _fields(parent.selections) if f.name == wanted]
    return level


def _company_ids(info: Info, link: Link, records: Iterable[AnyRecord]) -> list[str | None]:
    """The companies a window's `company` fields will look up: none where the API sent
    along every field the selection asks (hasteCRM's inline `company {id, name}`)."""
    fields = _node_fields(info, "company")
    if not fields:
        return []
    wanted: frozenset[str] | None = frozenset()
    for field in fields:
        names = selected_names(field.selections)
        wanted = None if names is None or wanted is None else wanted | names
    return [
        getattr(record, "company_id", None)
        for record in records
        if not covered(record.inline.get(link), wanted)
    ]


def _node(record: AnyRecord) -> Any:
    return convert.to_node(record)


NAMES = {
    Entity.CONTACT: "Contact",
    Entity.COMPANY: "Company",
    Entity.DEAL: "Deal",
    Entity.NOTE: "Note",
}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _writable(source: Any) -> list[str]:
    names = [f"{NAMES[e]}.{op.value}" for e, op in source.writes]
    if source.can_merge_contacts:
        names.append("Contact.merge")
    if source.can_restore_deals:
        names.append("Deal.restore")
    if source.can_archive_deals:
        names.append("Deal.archive")
    names += [f"{NAMES[e]}.bulk" for e in source.can_bulk]
    return sorted(names)


def _filters(source: Any) -> list[str]:
    names = []
    for entity, support in source.query_support.items():
        for field, ops in support.operators.items():
            names += [f"{NAMES[entity]}.{_camel(field)}:{op}" for op in sorted(ops)]
        if support.can_or:
            names.append(f"{NAMES[entity]}:or")
    return sorted(names)


def _provider_info(source: Any) -> t.Provider:
    caps = source.capabilities
    return t.Provider(
        name=source.name,
        kind=source.kind,
        display_name=source.display_name,
        pagination_style=t.PaginationStyle[source.style.value],
        capabilities=t.ProviderCapabilities(
            entities=[t.EntityType(e.value) for e in Entity if e in caps.entities],
            can_page_backward=caps.can_page_backward,
            can_count=caps.can_count,
            relationships=sorted(link.value for link in caps.links),
            writable=_writable(caps),
            filters=_filters(caps),
            sortable=sorted(
                f"{NAMES[e]}.{field.upper()}"
                for e, support in caps.query_support.items()
                for field in support.sortable
            ),
        ),
        circuit=t.CircuitState[source.upstream.breaker.state.value],
    )


@strawberry.type(description="Read CRM records from every configured provider.")
class Query:
    @strawberry.field(description="Contacts of one provider, as a Relay connection.")
    async def contacts(
        self,
        info: Info,
        provider: Provider,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: Annotated[
            f.ContactFilter | None,
            strawberry.argument(
                description="Only records matching this (translated per provider)."
            ),
        ] = None,
        order_by: Annotated[
            list[f.ContactOrder] | None,
            strawberry.argument(description="Sort keys, most significant first."),
        ] = None,
    ) -> t.ContactConnection | None:
        args = ConnectionArgs(first=first, after=after, last=last, before=before)
        query = f.list_query(filter, order_by, provider)
        window = await list_records(info.context, Entity.CONTACT, provider, args, query)
        ids = _company_ids(info, Link.CONTACT_COMPANY, (e.node for e in window.edges))
        if ids:
            await prefetch(info.context, provider, Link.CONTACT_COMPANY, Entity.COMPANY, ids)
        return convert.connection(t.ContactConnection, window)

    @strawberry.field(description="Companies of one provider, as a Relay connection.")
    async def companies(
        self,
        info: Info,
        provider: Provider,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: Annotated[
            f.CompanyFilter | None,
            strawberry.argument(
                description="Only records matching this (translated per provider)."
            ),
        ] = None,
        order_by: Annotated[
            list[f.CompanyOrder] | None,
            strawberry.argument(description="Sort keys, most significant first."),
        ] = None,
    ) -> t.CompanyConnection | None:
        args = ConnectionArgs(first=first, after=after, last=last, before=before)
        query = f.list_query(filter, order_by, provider)
        window = await list_records(info.context, Entity.COMPANY, provider, args, query)
        return convert.connection(t.CompanyConnection, window)

    @strawberry.field(description="Deals of one provider, as a Relay connection.")
    async def deals(
        self,
        info: Info,
        provider: Provider,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: Annotated[
            f.DealFilter | None,
            strawberry.argument(
                description="Only records matching this (translated per provider)."
            ),
        ] = None,
        order_by: Annotated[
            list[f.DealOrder] | None,
            strawberry.argument(description="Sort keys, most significant first."),
        ] = None,
    ) -> t.DealConnection | None:
        args = ConnectionArgs(first=first, after=after, last=last, before=before)
        query = f.list_query(filter, order_by, provider)
        window = await list_records(info.context, Entity.DEAL, provider, args, query)
        ids = _company_ids(info, Link.DEAL_COMPANY, (e.node for e in window.edges))
        if ids:
            await prefetch(info.context, provider, Link.DEAL_COMPANY, Entity.COMPANY, ids)
        return convert.connection(t.DealConnection, window)

    @strawberry.field(description="Notes of one provider, as a Relay connection.")
    async def notes(
        self,
        info: Info,
        provider: Provider,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: Annotated[
            f.NoteFilter | None,
            strawberry.argument(
                description="Only records matching this (translated per provider)."
            ),
        ] = None,
        order_by: Annotated[
            list[f.NoteOrder] | None,
            strawberry.argument(description="Sort keys, most significant first."),
        ] = None,
    ) -> t.NoteConnection | None:
        args = ConnectionArgs(first=first, after=after, last=last, before=before)
        query = f.list_query(filter, order_by, provider)
        window = await list_records(info.context, Entity.NOTE, provider, args, query)
        return convert.connection(t.NoteConnection, window)

    @strawberry.field(description="Any record by its global id; null if it does not exist.")
    async def node(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="A global node id.")],
    ) -> relay.Node | None:
        record = await find_node(info.context, id)
        return None if record is None else convert.to_node(record)

    @strawberry.field(description="Records by global id, in order; null where one does not exist.")
    def nodes(
        self,
        info: Info,
        ids: Annotated[list[strawberry.ID], strawberry.argument(description="Global node ids.")],
    ) -> list[relay.Node | None]:
        async def one(lookup: Awaitable[AnyRecord | None]) -> relay.Node | None:
            record = await lookup
            return None if record is None else convert.to_node(record)

        # graphql-core completes awaitable list items one by one, so an error
        # in one id nulls only that item.
        items: list[Any] = [one(c) for c in find_nodes(info.context, list(ids))]
        return items

    @strawberry.field(description="The configured providers and what each can do.")
    def providers(self, info: Info) -> list[t.Provider]:
        return [_provider_info(s) for s in info.context.sources.values()]

"""The root Query type."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Iterator
from typing import Annotated, Any

import strawberry
from strawberry import relay
from strawberry.types.nodes import SelectedField, Selection

import schema.cost as cost
import schema.filters as f
import schema.listcost as listcost
import schema.types as t
from gateway.errors import BadUserInput
from gateway.pagination.connection import ConnectionArgs
from gateway.records import AnyRecord, Entity, Link
from gateway.settings import ProviderSettings
from resolvers.context import Info
from resolvers.globalids import TYPE_NAMES as NAMES
from resolvers.merged import lane_names, merged_records
from resolvers.queries import find_node, find_nodes, list_records, prefetch
from resolvers.relations import covered
from schema.links import selected_names
from schema.types import After, Before, First, Last

Provider = Annotated[
    str | None,
    strawberry.argument(
        description="The one configured provider instance to read from (or give `providers`)."
    ),
]
Providers = Annotated[
    list[str] | None,
    strawberry.argument(
        description="Several providers, as one list in the order named (or, with `orderBy`, "
        "merged in one order). Neither this nor `provider`: every provider that has "
        "these records, in configuration order."
    ),
]


def _included(selection: Selection) -> bool:
    """As execution (and the cost estimate) decides: @skip/@include leave a selection out."""
    directives = selection.directives
    return not directives.get("skip", {}).get("if") and directives.get("include", {}).get(
        "if", True
    )


def _fields(selections: list[Selection]) -> Iterator[SelectedField]:
    for selection in selections:
        if not _included(selection):
            continue
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


def _changes(settings: ProviderSettings) -> t.ChangeFeed:
    if settings.webhooks:
        return t.ChangeFeed.WEBHOOK
    return t.ChangeFeed.NONE if settings.poll_interval is None else t.ChangeFeed.POLL


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
            changes=_changes(source.settings),
        ),
        circuit=t.CircuitState[source.upstream.breaker.state.value],
    )


def _list(entity: Entity, description: str, company: Link | None = None) -> Any:
    """A root list field: one window of a provider's `entity` records. Where its nodes link
    to a company (`company`), the companies the window shows are looked up in one batch."""

    async def resolve(
        self: Any,
        info: Info,
        provider: Provider = None,
        providers: Providers = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: Any = None,
        order_by: Any = None,
    ) -> Any:
        args = ConnectionArgs(first=first, after=after, last=last, before=before)
        if provider is None:
            window = await _merged(info, entity, providers, args, filter, order_by)
        elif providers is not None:
            raise BadUserInput("give `provider` or `providers`, not both.", argument="providers")
        else:
            query = f.list_query(filter, order_by, provider)
            window = await list_records(info.context, entity, provider, args, query)
        if company is not None:
            by_provider: dict[str, list[AnyRecord]] = {}
            for edge in window.edges:
                by_provider.setdefault(edge.node.provider, []).append(edge.node)
            for name, records in by_provider.items():
                ids = _company_ids(info, company, records)
                if ids:
                    await prefetch(info.context, name, company, Entity.COMPANY, ids)
        return t.connection(t.CONNECTIONS[entity], window)

    resolve.__annotations__ |= f.list_arguments(
        entity, "Only records matching this (translated per provider)."
    )
    resolve.__annotations__["return"] = t.CONNECTIONS[entity] | None
    return strawberry.field(
        resolver=resolve, description=description, metadata=cost.declare(listcost.root_list(entity))
    )


async def _merged(
    info: Info,
    entity: Entity,
    providers: list[str] | None,
    args: ConnectionArgs,
    filter: Any,
    order_by: Any,
) -> Any:
    """A window of the list across `providers` (None: all that have `entity`)."""
    names = lane_names(info.context.sources, entity, providers)
    queries = {name: f.list_query(filter, order_by, name) for name in names}
    return await merged_records(info.context, entity, queries, args)


@strawberry.type(description="Read CRM records from every configured provider.")
class Query:
    contacts = _list(
        Entity.CONTACT,
        "Contacts of one or more providers, as a Relay connection.",
        Link.CONTACT_COMPANY,
    )
    companies = _list(Entity.COMPANY, "Companies of one or more providers, as a Relay connection.")
    deals = _list(
        Entity.DEAL, "Deals of one or more providers, as a Relay connection.", Link.DEAL_COMPANY
    )
    notes = _list(Entity.NOTE, "Notes of one or more providers, as a Relay connection.")

    @strawberry.field(
        description="Any record by its global id; null if it does not exist.",
        metadata=cost.declare(cost.by_ids),
    )
    async def node(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="A global node id.")],
    ) -> relay.Node | None:
        record = await find_node(info.context, id)
        return None if record is None else t.to_node(record)

    @strawberry.field(
        description="Records by global id, in order; null where one does not exist.",
        metadata=cost.declare(cost.by_ids),
    )
    def nodes(
        self,
        info: Info,
        ids: Annotated[list[strawberry.ID], strawberry.argument(description="Global node ids.")],
    ) -> list[relay.Node | None]:
        async def one(lookup: Awaitable[AnyRecord | None]) -> relay.Node | None:
            record = await lookup
            return None if record is None else t.to_node(record)

        # graphql-core completes awaitable list items one by one, so an error
        # in one id nulls only that item.
        items: list[Any] = [one(c) for c in find_nodes(info.context, list(ids))]
        return items

    @strawberry.field(description="The configured providers and what each can do.")
    def providers(self, info: Info) -> list[t.Provider]:
        return [_provider_info(s) for s in info.context.sources.values()]

"""Root lists across providers: which providers, checked up front, then one merged window."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from gateway.errors import BadUserInput
from gateway.listquery import ListQuery, QuerySupport
from gateway.pagination import ConnectionArgs, ConnectionSlice, binding_key, check_args
from gateway.pagination.merge import Lane, Merge, order_key, whole_lane
from gateway.records import AnyRecord, Entity, field_value
from resolvers.context import Context, DataSource

# Fields whose values are never text: case cannot change their order.
UNCASED = frozenset({"created_at", "updated_at", "amount"})


def lane_names(
    sources: Mapping[str, DataSource], entity: Entity, providers: Sequence[str] | None
) -> list[str]:
    """The providers a merged list reads, in order: those named, or every one the client
    may use that has `entity`, in configuration order. BAD_USER_INPUT naming `providers`
    for an empty list, a repeated name or one the client does not know."""
    if providers is None:
        return [name for name, source in sources.items() if entity in source.capabilities.entities]
    if not providers:
        raise BadUserInput("`providers` must name at least one provider.", argument="providers")
    for name in providers:
        if name not in sources:
            known = ", ".join(sorted(sources)) or "none"
            raise BadUserInput(
                f"`providers`: unknown provider {name!r}; configured providers: {known}.",
                argument="providers",
            )
    repeated = sorted({name for name in providers if providers.count(name) > 1})
    if repeated:
        raise BadUserInput(
            f"`providers` names {', '.join(map(repr, repeated))} more than once.",
            argument="providers",
        )
    return list(providers)


def lane_query(source: DataSource, entity: Entity, query: ListQuery) -> ListQuery:
    """`query` as `source` is asked it: without the order fields its records never set
    (null on all of them, they order nothing, so its own order is already theirs)."""
    unset = source.capabilities.unset_fields.get(entity, frozenset())
    return ListQuery(query.filter, tuple(s for s in query.order if s.field not in unset))


def _sorts(source: DataSource, entity: Entity, query: ListQuery) -> bool:
    """Whether the provider sorts upstream by `query`'s keys with nulls where the merged
    order has them (largest)."""
    support = source.capabilities.query_support.get(entity, QuerySupport({}))
    if support.max_sorts is not None and len(query.order) > support.max_sorts:
        return False
    return all(
        s.field in support.sortable and not (support.sort_nulls == "last" and s.descending)
        for s in query.order
    )


def merge_plan(
    sources: Sequence[DataSource], entity: Entity, query: ListQuery
) -> tuple[bool, set[str]]:
    """Whether the merge compares text lowercased, and which providers are read whole and
    sorted by the gateway: those that cannot sort upstream in the merged order (by the key,
    nulls, or case: text compares lowercased only where every provider sorting upstream
    by text does). A provider asked no order (`lane_query`) gives it as it is."""
    lanes = [lane_query(s, entity, query) for s in sources]
    upstream = [s for s, q in zip(sources, lanes, strict=True) if _sorts(s, entity, q)]
    cased = {
        s.name
        for s, q in zip(sources, lanes, strict=True)
        if any(sort.field not in UNCASED for sort in q.order)
    }
    casefold = False
    if any(s.name in cased for s in upstream):
        supports = {s.name: s.capabilities.query_support[entity] for s in upstream}
        casefold = all(supports[name].sort_casefold for name in cased if name in supports)
        upstream = [
            s for s in upstream if s.name not in cased or supports[s.name].sort_casefold == casefold
        ]
    return casefold, {s.name for s in sources} - {s.name for s in upstream}


def _reader(
    context: Context, source: DataSource, entity: Entity, query: ListQuery
) -> Callable[[ConnectionArgs], Awaitable[ConnectionSlice[AnyRecord]]]:
    """A provider's own windows of its list, within the operation's deadline."""

    async def read(args: ConnectionArgs) -> ConnectionSlice[AnyRecord]:
        work = source.connection(entity, args, context.gateway.codec, query)
        window = await context.before_deadline(source.name, work)
        context.loaders.prime([edge.node for edge in window.edges])
        return window

    return read


def _lane(context: Context, source: DataSource, entity: Entity, query: ListQuery) -> Lane[Any]:
    name = source.name
    read = _reader(context, source, entity, query)

    async def count() -> int | None:
        window = await read(ConnectionArgs(first=0))
        if window.total_count is not None or window.count is None:
            return window.total_count
        return await context.before_deadline(name, window.count())

    return Lane(name, read, count)


def _whole(
    context: Context, source: DataSource, entity: Entity, query: ListQuery, key: Any
) -> Lane[Any]:
    """A provider that cannot give the merged order: its list, filtered upstream, read
    whole in its own blocks and sorted here (at most `merge_whole_max` records)."""
    gateway = context.gateway
    fields = ", ".join(s.field.upper() for s in query.order)
    return whole_lane(
        source.name,
        _reader(context, source, entity, ListQuery(query.filter)),
        key,
        limit=gateway.merge_whole_max,
        page=gateway.limits.max_size,
        codec=gateway.codec,
        binding=binding_key("whole", source.name, entity.value, query.key()),
        what=f"{source.label} cannot sort {entity.plural} by {fields} as a list across "
        "providers does",
    )


async def merged_records(
    context: Context,
    entity: Entity,
    queries: Mapping[str, ListQuery],
    args: ConnectionArgs,
) -> ConnectionSlice[AnyRecord]:
    """One window of the merged list of `entity` over the providers `queries` names (in
    order, each with its query): every provider's query checked before any is read."""
    checked = check_args(args, context.gateway.limits)
    sources = [context.source(name) for name in queries]
    order = next(iter(queries.values())).order if queries else ()
    casefold, whole = (
        merge_plan(sources, entity, next(iter(queries.values()))) if order else (False, set())
    )
    for source in sources:
        source.require(entity)
        query = queries[source.name]
        # A provider read whole must still filter upstream: only the order is the gateway's.
        source.check_query(
            entity,
            ListQuery(query.filter) if source.name in whole else lane_query(source, entity, query),
        )
    key = order_key([(s.field, s.descending) for s in order], field_value, casefold)
    binding = binding_key(
        "merged", entity.value, list(queries), [q.key() for q in queries.values()]
    )
    lanes = [
        _whole(context, s, entity, queries[s.name], key)
        if s.name in whole
        else _lane(context, s, entity, lane_query(s, entity, queries[s.name]))
        for s in sources
    ]
    return await Merge(lanes, key if order else None, context.gateway.codec, binding).window(
        checked
    )

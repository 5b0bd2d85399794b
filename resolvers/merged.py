"""Root lists across providers: which providers, checked up front, then one merged window."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gateway.errors import BadUserInput, Unsupported
from gateway.listquery import ListQuery, QuerySupport
from gateway.merging import Lane, Merge, order_key
from gateway.pagination import ConnectionArgs, ConnectionSlice, binding_key, check_args
from gateway.records import AnyRecord, Entity
from resolvers.context import Context, DataSource
from resolvers.relations import field_value

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


def _casefold(sources: Sequence[DataSource], entity: Entity, query: ListQuery) -> bool:
    """Whether the merge compares text lowercased: as every provider's upstream sort does.
    UNSUPPORTED naming a provider whose sort cannot be merged into the one total order."""
    supports = [(s, s.capabilities.query_support.get(entity, QuerySupport({}))) for s in sources]
    for source, support in supports:
        for sort in query.order:
            if support.sort_nulls == "last" and sort.descending:
                raise Unsupported(
                    f"{source.label} puts empty values last when sorting {entity.plural} "
                    f"by {sort.field.upper()} DESC, where a list across providers puts them "
                    "first; order this list ascending, or leave that provider out.",
                    provider=source.name,
                )
    if all(sort.field in UNCASED for sort in query.order):
        return False
    folds = {support.sort_casefold for _, support in supports}
    if len(folds) > 1:
        odd = next(s for s, support in supports if support.sort_casefold)
        raise Unsupported(
            f"{odd.label} sorts text ignoring case and the other providers do not, so their "
            f"{entity.plural} cannot be merged in one order by text; order by a date or "
            "leave that provider out.",
            provider=odd.name,
        )
    return folds == {True}


def _lane(context: Context, source: DataSource, entity: Entity, query: ListQuery) -> Lane[Any]:
    gateway = context.gateway
    name = source.name

    async def read(args: ConnectionArgs) -> ConnectionSlice[AnyRecord]:
        work = source.connection(entity, args, gateway.codec, query)
        window = await context.before_deadline(name, work)
        context.loaders.prime([edge.node for edge in window.edges])
        return window

    async def count() -> int | None:
        window = await read(ConnectionArgs(first=0))
        if window.total_count is not None or window.count is None:
            return window.total_count
        return await context.before_deadline(name, window.count())

    return Lane(name, read, count)


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
    for source in sources:
        source.require(entity)
        source.check_query(entity, queries[source.name])
    order = next(iter(queries.values())).order if queries else ()
    key = None
    if order:
        casefold = _casefold(sources, entity, next(iter(queries.values())))
        key = order_key([(s.field, s.descending) for s in order], field_value, casefold)
    binding = binding_key(
        "merged", entity.value, list(queries), [q.key() for q in queries.values()]
    )
    lanes = [_lane(context, s, entity, queries[s.name]) for s in sources]
    return await Merge(lanes, key, context.gateway.codec, binding).window(checked)

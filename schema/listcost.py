"""What the root lists cost (`Query.contacts`...): one provider's window, or the windows
of a list across providers (resolvers.merged), then the records' own fields. Declared by
the factory of schema/query.py; the estimator is schema/cost.py."""

from __future__ import annotations

from gateway.errors import GatewayError
from gateway.listquery import ListQuery, Sort
from gateway.pagination import ConnectionArgs
from gateway.records import Entity
from resolvers.merged import lane_names, lane_query, merge_plan
from schema.cost import Asked, At, FieldCost, size


def root_list(entity: Entity) -> FieldCost:
    """`Query.contacts`...: one window of a provider's list, then its records' fields."""

    def cost(asked: Asked) -> int:
        if asked.args.get("provider") is None:
            return merged_list(entity, asked)
        source = asked.plan.sources.get(str(asked.args.get("provider")))
        if source is None or entity not in source.entities:
            return 0  # refused by the resolver, nothing sent
        try:
            args = asked.window()
        except GatewayError:
            return 0  # refused by the resolver, nothing sent
        count = "totalCount" in asked.names()
        ordered = bool(asked.args.get("orderBy"))
        window = source.estimate_list(entity, args, asked.filtered(), count, ordered)
        return window + asked.below(At(source, size(args)))

    return cost


def merged_list(entity: Entity, asked: Asked) -> int:
    """A root list across providers (resolvers.merged): each provider's window of n + 1,
    its total where `totalCount` is asked, and the selection on the records it may
    contribute."""
    plan = asked.plan
    try:
        args = asked.window()
        names = lane_names(plan.sources, entity, asked.args.get("providers"))
    except GatewayError:
        return 0  # refused by the resolver, nothing sent
    count = "totalCount" in asked.names()
    filtered = asked.filtered()
    n = size(args) + 1
    if args.first is not None and args.last is not None:
        n = max(args.first, args.last) + 1
    # Each provider's window runs the way the merged one does (forward when `first` is
    # given), from its list's end or, with a merged cursor, from a position inside it.
    forward = args.first is not None
    cursors = args.after is not None or args.before is not None
    windows = [ConnectionArgs(first=n) if forward else ConnectionArgs(last=n)]
    if cursors:
        span = {"first": n} if forward else {"last": n}
        windows.append(ConnectionArgs(**span, after=args.after, before=args.before))
    sources = [plan.sources[name] for name in names]
    order = tuple(
        Sort(str(getattr(o["field"], "value", o["field"])).lower(), "DESC" in str(o["direction"]))
        for o in asked.args.get("orderBy") or ()
    )
    whole = merge_plan(sources, entity, ListQuery(order=order))[1] if order else set()
    total = 0
    for source in sources:
        if entity not in source.entities:
            continue  # UNSUPPORTED before anything is sent
        # Asked the order where it sorts upstream and its records set the key (lane_query).
        ordered = source.name not in whole and bool(
            lane_query(source, entity, ListQuery(order=order)).order
        )
        read = max(source.estimate_list(entity, w, filtered, False, ordered) for w in windows)
        if source.name in whole:
            # Read whole through its blocks (filtered, not ordered), up to the limit and
            # one more: the uncached blocks of its size where the caches know it.
            by_filter = asked.args.get("filter") is not None
            known = None if by_filter else source.known_size(entity)
            n = min(plan.whole_max if known is None else known, plan.whole_max) + 1
            read = source.estimate_list(entity, ConnectionArgs(first=n), by_filter, False)
        if count:
            read += source.estimate_list(entity, ConnectionArgs(first=0), filtered, True, ordered)
        total += read + asked.below(At(source, size(args)))
    return total

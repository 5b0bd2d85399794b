"""The Relay connection spec's pagination algorithm, on indices of a full list.

Shared by the property tests of both pagination engines: what any window must be.
"""

from __future__ import annotations

from gateway.pagination.connection import ConnectionArgs


def expected(total: int, args: ConnectionArgs, after: int | None, before: int | None):
    """The Relay spec's algorithm, written from its text, on indices of the full list."""
    lo = after + 1 if after is not None else 0
    hi = min(before, total) if before is not None else total
    lo = min(lo, hi)
    edges = list(range(lo, hi))
    if args.first is not None:
        edges = edges[: args.first]
    if args.last is not None:
        edges = edges[max(0, len(edges) - args.last) :]
    if args.last is not None:
        has_previous = hi - lo > args.last
    else:
        # "elements exist prior to `after`"
        has_previous = after is not None and min(after, total) > 0
    if args.first is not None:
        has_next = hi - lo > args.first
    else:
        # "elements exist following `before`"
        has_next = before is not None and before + 1 < total
    return edges, has_previous, has_next

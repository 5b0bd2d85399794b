"""Relay connections as both engines see them: the client's arguments, the page limits,
and the resolved window (edges, `pageInfo`, total)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from gateway.errors import BadUserInput

T = TypeVar("T")


@dataclass(frozen=True)
class ConnectionArgs:
    """The Relay arguments of one connection field, as the client sent them."""

    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None


@dataclass(frozen=True)
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@dataclass(frozen=True)
class Edge(Generic[T]):
    cursor: str
    node: T


@dataclass(frozen=True)
class ConnectionSlice(Generic[T]):
    """A resolved window: the edges, `pageInfo`, and the total when the API tells it."""

    edges: list[Edge[T]]
    page_info: PageInfo
    total_count: int | None
    # Asked only when the client selects `totalCount`, where counting costs a request.
    count: Callable[[], Awaitable[int | None]] | None = None


@dataclass(frozen=True)
class PageLimits:
    """The gateway's own bounds on `first`/`last`."""

    default_size: int = 20
    max_size: int = 100


def check_args(args: ConnectionArgs, limits: PageLimits) -> ConnectionArgs:
    """Validate `first`/`last` and fill the documented default.

    Neither given: `last: default` when only `before` is given (paging back),
    else `first: default`.
    """
    for name, value in (("first", args.first), ("last", args.last)):
        if value is not None and value < 0:
            raise BadUserInput(f"`{name}` must not be negative (got {value}).", argument=name)
        if value is not None and value > limits.max_size:
            raise BadUserInput(
                f"`{name}` is {value}, above this gateway's maximum page size of "
                f"{limits.max_size}; page through the list instead.",
                argument=name,
            )
    if args.first is None and args.last is None:
        if args.before is not None and args.after is None:
            return ConnectionArgs(last=limits.default_size, before=args.before)
        return ConnectionArgs(first=limits.default_size, after=args.after, before=args.before)
    return args

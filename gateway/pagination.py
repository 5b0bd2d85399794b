"""Relay connections over upstream pagination: the one place the Relay logic lives.

A client asks for a window of a list with `first/after` and `last/before`
(GraphQL Cursor Connections Specification). Upstream APIs page in their own
way; this module turns the window into the fewest upstream requests the API
allows and the answer back into edges and `pageInfo`.

Cursors are opaque: base64url of a MAC and a small JSON payload holding the
format version, a hash binding the cursor to its query (provider, entity,
filter, order) and a position. A cursor from another query, tampered with, or
garbage is a BAD_USER_INPUT naming the argument.

Offset-addressable APIs (page number + page size, index ranges) hold an
absolute offset in the cursor. A page-number API can only fetch aligned pages
[k*size, (k+1)*size); an index-range API any [start, end). `cover` picks the
requests: greedily the page that covers the next missing index and reaches
furthest, which is optimal for covering an interval from a fixed family, and
for the last one the smallest page that still reaches the end, so no more rows
travel than needed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from gateway.errors import BadUserInput

T = TypeVar("T")

CURSOR_VERSION = 1
_MAC_BYTES = 12


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


@dataclass(frozen=True)
class PageLimits:
    """The gateway's own bounds on `first`/`last`."""

    default_size: int = 20
    max_size: int = 100


def binding_key(*parts: object) -> str:
    """A short, stable hash of what a cursor is bound to (provider, entity, filter, order)."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class CursorCodec:
    """Encodes and checks the gateway's opaque cursors."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, binding: str, position: dict[str, Any]) -> str:
        payload = json.dumps(
            {"v": CURSOR_VERSION, "b": binding, "p": position}, separators=(",", ":")
        ).encode()
        return base64.urlsafe_b64encode(self._mac(payload) + payload).rstrip(b"=").decode()

    def decode(self, cursor: str, binding: str, argument: str) -> dict[str, Any]:
        """The position inside `cursor`, or BadUserInput naming `argument`."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            raise BadUserInput(f"`{argument}` is not a valid cursor.", argument=argument) from None
        mac, payload = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
        if len(raw) <= _MAC_BYTES or not hmac.compare_digest(mac, self._mac(payload)):
            raise BadUserInput(
                f"`{argument}` is not a cursor this gateway issued (malformed or altered).",
                argument=argument,
            )
        data = json.loads(payload)
        if data.get("v") != CURSOR_VERSION:
            raise BadUserInput(
                f"`{argument}` comes from an older cursor format; restart paging from the start.",
                argument=argument,
            )
        if data.get("b") != binding:
            raise BadUserInput(
                f"`{argument}` belongs to another query (provider, type, filter or order "
                "differ); a cursor only works with the query that returned it.",
                argument=argument,
            )
        position: dict[str, Any] = data["p"]
        return position


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


# --- offset-addressable APIs -------------------------------------------------------------


@dataclass(frozen=True)
class OffsetPage(Generic[T]):
    """What an offset API returned for rows [offset, offset + len(items)), and its total."""

    offset: int
    items: Sequence[T]
    total: int


OffsetFetch = Callable[[int, int], Awaitable[OffsetPage[T]]]


def _furthest_page(start: int, max_size: int, aligned: bool) -> tuple[int, int]:
    if not aligned:
        return start, max_size
    best = max(range(1, max_size + 1), key=lambda size: (start // size + 1) * size)
    return start // best * best, best


def _smallest_page(start: int, end: int, max_size: int, aligned: bool) -> tuple[int, int] | None:
    """The smallest request covering [start, end) in one go, if there is one."""
    if not aligned:
        return (start, end - start) if end - start <= max_size else None
    for size in range(end - start, max_size + 1):
        if start // size == (end - 1) // size:
            return start // size * size, size
    return None


def cover(start: int, end: int, max_size: int, *, aligned: bool) -> list[tuple[int, int]]:
    """The fewest (offset, size) requests covering rows [start, end).

    `aligned`: the API fetches only pages [k*size, (k+1)*size) (page numbers);
    otherwise any [offset, offset+size) (index ranges). Sizes are at most `max_size`.
    """
    requests: list[tuple[int, int]] = []
    position = start
    while position < end:
        single = _smallest_page(position, end, max_size, aligned)
        if single is not None:
            requests.append(single)
            break
        offset, size = _furthest_page(position, max_size, aligned)
        requests.append((offset, size))
        position = offset + size
    return requests


class _OffsetReader(Generic[T]):
    """Fetches rows by offset and remembers them and the total."""

    def __init__(self, fetch: OffsetFetch[T], max_size: int, aligned: bool) -> None:
        self._fetch = fetch
        self._max_size = max_size
        self._aligned = aligned
        self.rows: dict[int, T] = {}
        self.total: int | None = None
        self.requests = 0

    async def read(self, start: int, end: int) -> None:
        """Rows [start, end), at least one row's worth so the total is learnt.

        The first request tells the total; the rest, minus those starting past
        it, go out concurrently.
        """
        plan = cover(start, max(end, start + 1), self._max_size, aligned=self._aligned)
        # Where each request's new rows begin: a request is useless once that is past the total.
        needed_from = [start] + [offset + size for offset, size in plan[:-1]]
        if self.total is None:
            self._keep(await self._fetch(*plan[0]))
            plan, needed_from = plan[1:], needed_from[1:]
        total = self.total
        pages = await asyncio.gather(
            *(
                self._fetch(offset, size)
                for (offset, size), begin in zip(plan, needed_from, strict=True)
                if total is None or begin < total
            )
        )
        for page in pages:
            self._keep(page)

    def _keep(self, page: OffsetPage[T]) -> None:
        self.requests += 1
        self.total = page.total
        for i, item in enumerate(page.items):
            self.rows[page.offset + i] = item


async def paginate_offsets(
    args: ConnectionArgs,
    *,
    fetch: OffsetFetch[T],
    codec: CursorCodec,
    binding: str,
    max_request_size: int,
    aligned: bool,
) -> ConnectionSlice[T]:
    """Resolve a Relay window over an API addressed by offsets.

    `args` must have passed `check_args`. `fetch(offset, size)` performs one
    upstream request; for `aligned` APIs `offset` is a multiple of `size`.
    """
    after = _offset(codec, args.after, binding, "after")
    before = _offset(codec, args.before, binding, "before")
    start = after + 1 if after is not None else 0
    reader: _OffsetReader[T] = _OffsetReader(fetch, max_request_size, aligned)

    if before is not None or args.first is not None:
        # The window's far end is known without the total, unless `first` and
        # `last` come together: then `last` counts back from an end only the
        # total tells, so read the whole `first` span.
        reach = None if args.first is None else start + args.first
        hi = min(e for e in (before, reach) if e is not None)
        lo = max(start, hi - args.last) if args.last is not None and reach is None else start
        await reader.read(lo, hi)
    else:
        # `last` from the end of the list: the first read learns the total,
        # and holds the whole window when the list is short.
        assert args.last is not None
        await reader.read(start, start + args.last)
    assert reader.total is not None
    window = _Window.of(args, after, before, reader.total)
    missing = [i for i in range(window.lo, window.hi) if i not in reader.rows]
    if missing:
        await reader.read(missing[0], missing[-1] + 1)
    return window.slice(reader.rows, codec, binding)


def _offset(codec: CursorCodec, cursor: str | None, binding: str, argument: str) -> int | None:
    if cursor is None:
        return None
    offset = codec.decode(cursor, binding, argument).get("o")
    if not isinstance(offset, int) or offset < 0:
        raise BadUserInput(f"`{argument}` is not an offset cursor.", argument=argument)
    return offset


@dataclass(frozen=True)
class _Window:
    """Where a window lies in the full list, once the total is known."""

    args: ConnectionArgs
    after: int | None
    before: int | None
    total: int
    bounded_lo: int  # the cursor-bounded range [bounded_lo, bounded_hi) (ApplyCursorsToEdges)
    bounded_hi: int
    lo: int  # the window [lo, hi) after `first` and `last`
    hi: int

    @classmethod
    def of(cls, args: ConnectionArgs, after: int | None, before: int | None, total: int) -> _Window:
        bounded_hi = min(before, total) if before is not None else total
        bounded_lo = min(after + 1 if after is not None else 0, bounded_hi)
        lo, hi = bounded_lo, bounded_hi
        if args.first is not None:
            hi = min(hi, lo + args.first)
        if args.last is not None:
            lo = max(lo, hi - args.last)
        return cls(args, after, before, total, bounded_lo, bounded_hi, lo, hi)

    def page_info(self, edges: Sequence[Edge[T]]) -> PageInfo:
        size = self.bounded_hi - self.bounded_lo
        if self.args.last is not None:
            has_previous = size > self.args.last
        else:  # "elements exist prior to `after`"
            has_previous = self.after is not None and min(self.after, self.total) > 0
        if self.args.first is not None:
            has_next = size > self.args.first
        else:  # "elements exist following `before`"
            has_next = self.before is not None and self.before + 1 < self.total
        return PageInfo(
            has_next_page=has_next,
            has_previous_page=has_previous,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        )

    def slice(self, rows: dict[int, T], codec: CursorCodec, binding: str) -> ConnectionSlice[T]:
        edges = [
            Edge(codec.encode(binding, {"o": i}), rows[i])
            for i in range(self.lo, self.hi)
            if i in rows
        ]
        return ConnectionSlice(edges=edges, page_info=self.page_info(edges), total_count=self.total)

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
from typing import Any, Generic, Protocol, TypeVar

from gateway.errors import BadUserInput, Unsupported

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


# --- APIs read forward from opaque positions (cursors, page tokens) ----------------------


@dataclass(frozen=True)
class SeqPage(Generic[T]):
    """One upstream page read from a position.

    `next`: the position right after the last item, None at the end.
    `previous`: the position `limit` items before this page's start (clamped
    to the start), None when the page starts the list or the API has none.
    """

    items: Sequence[T]
    next: str | None
    previous: str | None = None


class SequentialAPI(Protocol[T]):
    """An upstream list API addressed by opaque positions.

    A *handle* names one list the API can read forward: the default order, the
    reversed order, or a keyset slice ("records after key k in some order").
    """

    max_request_size: int
    has_previous: bool  # pages carry `previous` positions (cursor APIs)
    can_reverse: bool  # `open(reverse=True, after_key=None)` works

    def key(self, item: T) -> str:
        """The record's stable id."""

    async def open(self, reverse: bool, after_key: str | None) -> str:
        """A handle for the list in forward or reverse order, after `after_key` if given."""

    async def fetch(self, handle: str, position: str | None, limit: int) -> SeqPage[T]:
        """Up to `limit` items from `position` (None: the start) of list `handle`."""


@dataclass(frozen=True)
class _Pos:
    """Where an edge sits: list `h` (reversed or not), page start `c`, index `i`, key `k`.

    `n`: the position after the edge when it ended its page; `p`/`l`: the
    page's `previous` position and the limit it was read with, on a page's
    first edge. They save a request when the client pages on from there.
    """

    h: str
    r: bool
    c: str | None
    i: int
    k: str
    n: str | None = None
    p: str | None = None
    l: int | None = None  # noqa: E741

    def encode(self, codec: CursorCodec, binding: str) -> str:
        data = {k: v for k, v in self.__dict__.items() if v is not None}
        return codec.encode(binding, data)

    @classmethod
    def decode(
        cls, codec: CursorCodec, cursor: str | None, binding: str, argument: str
    ) -> _Pos | None:
        if cursor is None:
            return None
        data = codec.decode(cursor, binding, argument)
        try:
            pos = cls(**data)
        except TypeError:
            raise BadUserInput(
                f"`{argument}` is not a cursor of this list.", argument=argument
            ) from None
        if not isinstance(pos.i, int) or pos.i < 0 or not isinstance(pos.k, str):
            raise BadUserInput(f"`{argument}` is not a cursor of this list.", argument=argument)
        return pos


@dataclass
class _Run(Generic[T]):
    """Items read in one list's order, with what is known around them."""

    handle: str
    reverse: bool
    items: list[tuple[_Pos, T]]
    more_after: bool
    more_before: bool


class _Reader(Generic[T]):
    def __init__(self, api: SequentialAPI[T]) -> None:
        self.api = api

    def _positions(
        self, handle: str, reverse: bool, start: str | None, page: SeqPage[T], limit: int
    ) -> list[tuple[_Pos, T]]:
        last = len(page.items) - 1
        return [
            (
                _Pos(
                    handle,
                    reverse,
                    start,
                    i,
                    self.api.key(item),
                    n=page.next if i == last else None,
                    p=page.previous if i == 0 else None,
                    l=limit if i == 0 and page.previous is not None else None,
                ),
                item,
            )
            for i, item in enumerate(page.items)
        ]

    async def forward(
        self, handle: str, reverse: bool, start: str | None, skip: int, count: int
    ) -> tuple[list[tuple[_Pos, T]], bool, SeqPage[T] | None]:
        """`count` items after skipping `skip` from `start`; and whether more follow."""
        out: list[tuple[_Pos, T]] = []
        first_page: SeqPage[T] | None = None
        position, more = start, True
        while len(out) < count and more:
            limit = min(self.api.max_request_size, skip + count - len(out))
            page = await self.api.fetch(handle, position, limit)
            first_page = first_page or page
            out += self._positions(handle, reverse, position, page, limit)[skip:]
            skip = 0
            more = page.next is not None and len(page.items) >= limit
            position = page.next
        return out[:count], more, first_page

    async def head(self, handle: str, reverse: bool, count: int) -> _Run[T]:
        items, more, _ = await self.forward(handle, reverse, None, 0, count)
        return _Run(handle, reverse, items, more_after=more, more_before=False)

    async def after(self, at: _Pos, count: int) -> _Run[T]:
        if at.n is not None:
            items, more, _ = await self.forward(at.h, at.r, at.n, 0, count)
            return _Run(at.h, at.r, items, more_after=more, more_before=True)
        items, more, first = await self.forward(at.h, at.r, at.c, at.i + 1, count)
        before = at.i > 0 or (first is not None and first.previous is not None)
        return _Run(at.h, at.r, items, more_after=more, more_before=before)

    async def before(self, at: _Pos, count: int) -> _Run[T]:
        """`count` items before `at` in its list's order."""
        if count == 0:
            return _Run(at.h, at.r, [], more_after=True, more_before=at.i > 0 or at.c is not None)
        if at.i >= count:  # all inside the edge's own page
            page = await self.api.fetch(at.h, at.c, at.i)
            items = self._positions(at.h, at.r, at.c, page, at.i)[at.i - count :]
            more = at.i > count or page.previous is not None
            return _Run(at.h, at.r, items, more_after=True, more_before=more)
        if self.api.has_previous:
            return await self._before_by_previous(at, count)
        # Read the list the other way from the edge's key, and turn it round.
        other = await self.api.open(not at.r, at.k)
        run = await self.head(other, not at.r, count)
        return _Run(other, not at.r, run.items[::-1], more_after=True, more_before=run.more_after)

    async def _before_by_previous(self, at: _Pos, count: int) -> _Run[T]:
        want = count - at.i  # items needed before the edge's page
        if at.c is None:  # the page starts the list: nothing precedes it
            page = await self.api.fetch(at.h, None, at.i) if at.i else None
            items = self._positions(at.h, at.r, None, page, at.i) if page else []
            return _Run(at.h, at.r, items, more_after=True, more_before=False)
        start = at.p if at.p is not None and at.l == want else None
        if start is None:
            start = (await self.api.fetch(at.h, at.c, want)).previous
        page = await self.api.fetch(at.h, start, count)
        items = self._positions(at.h, at.r, start, page, count)
        keys = [pos.k for pos, _ in items]
        if at.k in keys:  # the list start was nearer than `count`: the edge is in the page
            cut = keys.index(at.k)
            return _Run(at.h, at.r, items[:cut][-count:], more_after=True, more_before=cut > count)
        return _Run(at.h, at.r, items, more_after=True, more_before=page.previous is not None)


def _flip(run: _Run[T]) -> list[tuple[_Pos, T]]:
    """Items in the connection's (forward) order."""
    return run.items[::-1] if run.reverse else run.items


async def paginate_sequential(
    args: ConnectionArgs,
    *,
    api: SequentialAPI[T],
    codec: CursorCodec,
    binding: str,
    provider: str,
) -> ConnectionSlice[T]:
    """Resolve a Relay window over an API read forward from opaque positions.

    Forward windows continue from the upstream position stored in the cursor.
    Backward ones use the API's `previous` positions, or read the list the
    other way (reversed sort, keyset) where the API can; where it can do
    neither, `last` without `before` is UNSUPPORTED.
    """
    if args.first is not None and args.last is not None:
        raise BadUserInput("give `first` or `last`, not both, for this provider.", argument="last")
    after = _Pos.decode(codec, args.after, binding, "after")
    before = _Pos.decode(codec, args.before, binding, "before")
    reader = _Reader(api)
    if args.last is None:
        count = args.first if args.first is not None else 0
        extra = 1 if before is not None else 0  # to see whether `before` lies just past the window
        run = await _forward_window(reader, after, count + extra)
        items = _flip(run)
        has_next = run.more_before if run.reverse else run.more_after
        has_previous = after is not None and (run.more_after if run.reverse else run.more_before)
        if before is not None:
            keys = [pos.k for pos, _ in items]
            bounded = keys.index(before.k) if before.k in keys else len(items)
            has_next = bounded > count if before.k in keys else has_next or len(items) > count
            items = items[: min(bounded, count)]
        items = items[:count]
    else:
        count = args.last
        extra = 1 if after is not None else 0
        run = await _backward_window(reader, before, count + extra, provider)
        items = _flip(run)
        has_previous = run.more_after if run.reverse else run.more_before
        has_next = before is not None and (run.more_before if run.reverse else run.more_after)
        if after is not None:
            keys = [pos.k for pos, _ in items]
            if after.k in keys:
                cut = keys.index(after.k)
                has_previous = len(items) - cut - 1 > count
                items = items[cut + 1 :]
            else:
                has_previous = has_previous or len(items) > count
        items = items[-count:] if count else []
    edges = [Edge(pos.encode(codec, binding), item) for pos, item in items]
    info = PageInfo(
        has_next_page=has_next,
        has_previous_page=has_previous,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None,
    )
    return ConnectionSlice(edges=edges, page_info=info, total_count=None)


async def _forward_window(reader: _Reader[T], after: _Pos | None, count: int) -> _Run[T]:
    if after is None:
        return await reader.head(await reader.api.open(False, None), False, count)
    # Forward from an edge read in reverse is backward in that reversed list.
    return await (reader.before(after, count) if after.r else reader.after(after, count))


async def _backward_window(
    reader: _Reader[T], before: _Pos | None, count: int, provider: str
) -> _Run[T]:
    if before is None:
        if not reader.api.can_reverse:
            raise Unsupported(
                f"provider {provider!r} cannot page backward from the end of a list; "
                "page forward with `first`, or give `before`.",
                provider=provider,
            )
        return await reader.head(await reader.api.open(True, None), True, count)
    return await (reader.after(before, count) if before.r else reader.before(before, count))

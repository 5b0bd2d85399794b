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
from collections.abc import Awaitable, Callable, Hashable, MutableMapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Generic, Protocol, TypeVar

from gateway.errors import BadUserInput, Unsupported, UpstreamBadResponse

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
    # Asked only when the client selects `totalCount`, where counting costs a request.
    count: Callable[[], Awaitable[int | None]] | None = None


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

    def __init__(self, secret: bytes, *, remembered: int = 8192) -> None:
        self._secret = secret
        # A page served again hands out the same cursors: remember the latest few thousand
        # rather than sign each again (JSON, HMAC and base64 per edge).
        self._encoded = lru_cache(maxsize=remembered)(self._encode)

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, binding: str, position: dict[str, Any]) -> str:
        items = tuple(position.items())
        try:
            return self._encoded(binding, items)
        except TypeError:  # a value that cannot be a cache key (a list): sign it afresh
            return self._encode(binding, items)

    def _encode(self, binding: str, position: tuple[tuple[str, Any], ...]) -> str:
        payload = json.dumps(
            {"v": CURSOR_VERSION, "b": binding, "p": dict(position)}, separators=(",", ":")
        ).encode()
        return base64.urlsafe_b64encode(self._mac(payload) + payload).rstrip(b"=").decode()

    def decode(self, cursor: str, binding: str, argument: str) -> dict[str, Any]:
        """The position inside `cursor`, or BadUserInput naming `argument`."""
        bound, position = self.open(cursor, argument)
        if bound != binding:
            raise BadUserInput(
                f"`{argument}` belongs to another query (provider, type, filter or order "
                "differ); a cursor only works with the query that returned it.",
                argument=argument,
            )
        return position

    def open(self, cursor: str, argument: str) -> tuple[str, dict[str, Any]]:
        """The binding and position of a cursor this codec signed, whatever its query (a
        cursor held inside another, signed one, is kept as these); else BadUserInput."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            raise BadUserInput(f"`{argument}` is not a valid cursor.", argument=argument) from None
        mac, payload = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
        if len(raw) <= _MAC_BYTES or not hmac.compare_digest(mac, self._mac(payload)):
            raise BadUserInput(
                f"`{argument}` is not a cursor this gateway issued: malformed, altered, or "
                "signed by another gateway process (replicas must share "
                "CRM_GATEWAY_CURSOR_SECRET; without it each process signs with its own).",
                argument=argument,
            )
        try:
            data = json.loads(payload)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("p"), dict):
            # Only a holder of the secret gets here: still a client error, never a 500.
            raise BadUserInput(f"`{argument}` is not a valid cursor.", argument=argument)
        if data.get("v") != CURSOR_VERSION:
            raise BadUserInput(
                f"`{argument}` comes from an older cursor format; restart paging from the start.",
                argument=argument,
            )
        position: dict[str, Any] = data["p"]
        return str(data.get("b")), position


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


def cover(
    start: int, end: int, max_size: int, *, aligned: bool, stretch: bool = False
) -> list[tuple[int, int]]:
    """The fewest (offset, size) requests covering rows [start, end).

    `aligned`: the API fetches only pages [k*size, (k+1)*size) (page numbers);
    otherwise any [offset, offset+size) (index ranges). Sizes are at most `max_size`.
    `stretch`: the last request too reaches as far as it can (more rows, same count).
    """
    requests: list[tuple[int, int]] = []
    position = start
    while position < end:
        single = None if stretch else _smallest_page(position, end, max_size, aligned)
        if single is not None:
            requests.append(single)
            break
        offset, size = _furthest_page(position, max_size, aligned)
        requests.append((offset, size))
        position = offset + size
    return requests


class _OffsetReader(Generic[T]):
    """Fetches rows by offset and remembers them and the total."""

    def __init__(
        self, fetch: OffsetFetch[T], max_size: int, aligned: bool, block: int | None = None
    ) -> None:
        self._fetch = fetch
        self._max_size = max_size
        self._aligned = aligned
        self._block = block
        self.rows: dict[int, T] = {}
        self.total: int | None = None
        self.requests = 0

    async def read(self, start: int, end: int, *, stretch: bool = False) -> None:
        """Rows [start, end), at least one row's worth so the total is learnt.

        The first request tells the total; the rest, minus those starting past
        it, go out concurrently.
        """
        if self._block is not None:
            # Whole aligned blocks, the same whatever the window, so windows share them.
            b = self._block
            plan = [(k * b, b) for k in range(start // b, (max(end, start + 1) - 1) // b + 1)]
        else:
            plan = cover(
                start, max(end, start + 1), self._max_size, aligned=self._aligned, stretch=stretch
            )
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
    block_size: int | None = None,
) -> ConnectionSlice[T]:
    """Resolve a Relay window over an API addressed by offsets.

    `args` must have passed `check_args`. `fetch(offset, size)` performs one
    upstream request; for `aligned` APIs `offset` is a multiple of `size`.
    `block_size`: read only whole blocks [k*size, (k+1)*size) (the caller caches
    them), learning the total from the first block of the window.
    """
    after = _offset(codec, args.after, binding, "after")
    before = _offset(codec, args.before, binding, "before")
    start = after + 1 if after is not None else 0
    reader: _OffsetReader[T] = _OffsetReader(fetch, max_request_size, aligned, block_size)

    if before is not None or args.first is not None:
        # The window's far end is known without the total, unless `first` and
        # `last` come together: then `last` counts back from an end only the
        # total tells, so read the whole `first` span.
        reach = None if args.first is None else start + args.first
        hi = min(e for e in (before, reach) if e is not None)
        lo = max(start, hi - args.last) if args.last is not None and reach is None else start
        if block_size and args.last is not None and reach is not None:
            hi = lo + 1  # in blocks: the total first, then only the window's blocks
        await reader.read(lo, hi)
    else:
        # `last` from the end of the list: the first read learns the total,
        # and holds the whole window when the list is short; its pages reach
        # as far as they can, so the tail left to read is as short as can be.
        assert args.last is not None
        # In blocks: the window's first block tells the total, the tail's blocks follow.
        await reader.read(start, start + (1 if block_size else args.last), stretch=True)
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
#
# Such an API reads a list forward from a position it handed out (`next`), and
# cursor APIs also hand out `previous`, the position `limit` items back. The
# gateway cursor stores the position its page was read from and the index in
# that page, so any forward window costs exactly the pages it spans. Backward
# windows step back with `previous`, else read the list the other way from the
# edge's key (a reversed sort or a keyset query), which the API opens as
# another list: a *handle*.
#
# A cursor is signed, but whoever holds the secret can write one, so what it
# holds is checked before use: the API must recognise the handle as one of its
# own small tokens (never request parameters) and the positions as its own
# cursors or tokens; anything else is a BAD_USER_INPUT naming the argument and
# no request goes out. Requests are built from the validated query; a position
# travels only as the value of its own parameter.

# Keys are record ids: short and printable.
_MAX_KEY = 256


@dataclass(frozen=True)
class SeqPage(Generic[T]):
    """One upstream page read from a position with some `limit`.

    `next`: where the following page starts, None when the list ends here.
    `previous`: the position `limit` items before this page (clamped to the
    list start), None when this page starts the list; only APIs with
    `has_previous` fill it.
    """

    items: Sequence[T]
    next: str | None
    previous: str | None = None


class SequentialAPI(Protocol[T]):
    """An upstream list addressed by opaque positions, as a data source exposes it."""

    max_request_size: int
    has_previous: bool  # pages carry `previous` positions
    can_reverse: bool  # `open(reverse, after_key)` works for both directions and any key

    def key(self, item: T) -> str:
        """The record's id, unique in the list."""
        ...

    def valid_handle(self, handle: str) -> bool:
        """Whether `handle` is one `open` can return (a cursor's handle is checked with it)."""
        ...

    def valid_position(self, position: str) -> bool:
        """Whether `position` has the form of the API's own cursors or page tokens."""
        ...

    async def open(self, reverse: bool, after_key: str | None) -> str:
        """A handle on the list in forward or reverse order, starting after `after_key`."""
        ...

    async def fetch(self, handle: str, position: str | None, limit: int) -> SeqPage[T]:
        """Up to `limit` items of list `handle` from `position` (None: its start)."""
        ...


@dataclass(frozen=True)
class _Pos:
    """Where an edge sits.

    `h`: the list handle, `r`: whether it runs in reverse, `s`: whether it is a
    keyset slice (so items precede its start); `c`: the position its page was
    read from (None: the list start), `i`: its index in that page, `k`: its key.
    On a page's last edge `n` is the next position, or `z` marks the list end;
    on a first edge `p` is the page's `previous` for limit `l`.
    """

    h: str
    k: str
    i: int = 0
    c: str | None = None
    r: bool = False
    s: bool = False
    n: str | None = None
    z: bool = False
    p: str | None = None
    l: int | None = None  # noqa: E741

    def encode(self, codec: CursorCodec, binding: str) -> str:
        defaults = _Pos(h="", k="")
        data = {
            name: value
            for name, value in self.__dict__.items()
            if name in ("h", "k") or value != getattr(defaults, name)
        }
        return codec.encode(binding, data)

    @classmethod
    def decode(
        cls,
        codec: CursorCodec,
        cursor: str | None,
        binding: str,
        argument: str,
        api: SequentialAPI[Any],
    ) -> _Pos | None:
        if cursor is None:
            return None
        data = codec.decode(cursor, binding, argument)
        try:
            pos = cls(**data)
        except TypeError:
            pos = None
        if pos is None or not pos._valid(api):
            raise BadUserInput(f"`{argument}` is not a cursor of this list.", argument=argument)
        return pos

    def _valid(self, api: SequentialAPI[Any]) -> bool:
        """Whether every field has its type and the API recognises the handle and positions."""
        positions = [p for p in (self.c, self.n, self.p) if p is not None]
        return (
            isinstance(self.h, str)
            and api.valid_handle(self.h)
            and isinstance(self.k, str)
            and 0 < len(self.k) <= _MAX_KEY
            and self.k.isprintable()
            and type(self.i) is int
            and 0 <= self.i < api.max_request_size
            and all(isinstance(p, str) and api.valid_position(p) for p in positions)
            and all(type(flag) is bool for flag in (self.r, self.s, self.z))
            and (self.l is None or (type(self.l) is int and 0 < self.l <= api.max_request_size))
        )

    @property
    def starts_list(self) -> bool:
        """Whether nothing precedes this edge in its list."""
        return self.i == 0 and self.c is None and not self.s


Items = list[tuple[_Pos, T]]

_UNKNOWN = object()


class BlockChain:
    """What block reads learnt about a list's order: which block precedes which.

    In block mode every page is a block of the same size read from a position,
    so the block whose `next` is P is the one before the block at P: reading
    backward then costs only blocks not yet cached. The block that ends the list
    is remembered too, so `last` alone continues from a list read forward.
    `store` is shared and bounded (a TTL cache); `prefix` names the list.
    """

    def __init__(self, store: MutableMapping[Hashable, Any], prefix: Hashable = ()) -> None:
        self._store = store
        self._prefix = prefix

    def link(self, handle: str, start: str | None, following: str) -> None:
        """The block of `handle` at `start` is followed by the one at `following`."""
        self._store[(self._prefix, handle, following)] = start

    def before(self, handle: str, start: str | None) -> Any:
        """Where the block before the one at `start` starts, or `_UNKNOWN`."""
        return self._store.get((self._prefix, handle, start), _UNKNOWN)

    def set_end(self, handle: str, start: str | None) -> None:
        self._store[(self._prefix, "end")] = (handle, start)

    def end(self) -> tuple[str, str | None] | None:
        """The forward list's handle and where its last block starts, if known."""
        value = self._store.get((self._prefix, "end"))
        return value if isinstance(value, tuple) else None


class _Reader(Generic[T]):
    """Reads runs of items around known positions, counting nothing twice."""

    def __init__(
        self,
        api: SequentialAPI[T],
        provider: str,
        block: int | None = None,
        chain: BlockChain | None = None,
    ) -> None:
        self.api = api
        self.provider = provider
        self.max = block or api.max_request_size
        # Block mode: every read is `block` items from a position, cached by the API.
        self.block = block
        self.chain = chain if block else None

    async def _page(self, at: _Pos, start: str | None, limit: int) -> tuple[Items[T], SeqPage[T]]:
        limit = self.block or limit
        page = await self.api.fetch(at.h, start, limit)
        if self.api.has_previous and page.previous is None and not at.s:
            start = None  # the page starts the list: reading from the start is the same
        last = len(page.items) - 1
        ends = page.next is None or len(page.items) < limit
        if self.chain is not None and page.next is not None and not ends:
            self.chain.link(at.h, start, page.next)
        elif self.chain is not None and not at.r and not at.s:
            self.chain.set_end(at.h, start)
        items = [
            (
                _Pos(
                    h=at.h,
                    k=self.api.key(item),
                    i=index,
                    c=start,
                    r=at.r,
                    s=at.s,
                    n=page.next if index == last and not ends else None,
                    z=index == last and page.next is None,
                    p=page.previous if index == 0 else None,
                    l=limit if index == 0 and page.previous is not None else None,
                ),
                item,
            )
            for index, item in enumerate(page.items)
        ]
        return items, page

    async def forward(
        self, at: _Pos, start: str | None, skip: int, count: int
    ) -> tuple[Items[T], bool]:
        """`count` items after skipping `skip` from `start` in `at`'s list; whether more follow."""
        out: Items[T] = []
        position: str | None = start
        while True:
            # Ask one item even for an empty window: whether any follows is the answer.
            limit = self.block or min(self.max, max(1, skip + count - len(out)))
            items, page = await self._page(at, position, limit)
            out += items[skip:]
            skip = max(0, skip - len(items))
            if page.next is None or len(page.items) < limit:
                return out[:count], len(out) > count
            if len(out) >= count and skip == 0:
                return out[:count], len(out) > count or page.next is not None
            position = page.next

    async def after(self, at: _Pos, count: int) -> tuple[Items[T], bool]:
        """`count` items following `at` in its list; whether more follow them."""
        if at.z:
            return [], False
        if at.n is not None:
            if count == 0:
                return [], True  # a next position means items follow
            return await self.forward(at, at.n, 0, count)
        return await self.forward(at, at.c, at.i + 1, count)

    async def head(self, reverse: bool, count: int) -> tuple[Items[T], bool]:
        end = self.chain.end() if reverse and self.chain is not None else None
        if end is not None:
            # The list was read forward to its end: its last blocks are cached.
            handle, start = end
            items, page = await self._page(_Pos(h=handle, k=""), start, self.max)
            if page.next is None or len(page.items) < self.max:
                past = _Pos(h=handle, k=items[-1][0].k if items else "", i=len(items), c=start)
                run, more = await self._before_blocks(past, count, items)
                return run[::-1], more
        handle = await self.api.open(reverse, None)
        return await self.forward(_Pos(h=handle, k="", r=reverse), None, 0, count)

    async def before(self, at: _Pos, count: int, provider: str) -> tuple[Items[T], bool]:
        """`count` items preceding `at` in its list, in list order; whether more precede them."""
        if count == 0:
            return [], not at.starts_list
        if self.block is not None:
            block, _ = await self._page(at, at.c, self.block)
            return await self._before_blocks(at, count, block[: at.i])
        if at.i >= count or (at.c is None and not at.s):
            # All of them lie in the edge's own page, read again from its start.
            items, _ = await self._page(at, at.c, at.i) if at.i else ([], None)
            return items[max(0, at.i - count) :], at.i > count or not (at.c is None and not at.s)
        if self.api.has_previous:
            return await self._before_by_previous(at, count)
        if self.api.can_reverse:
            # Read the list the other way from the edge's key, and turn the run round.
            handle = await self.api.open(not at.r, at.k)
            other = _Pos(h=handle, k="", r=not at.r, s=True)
            items, more = await self.forward(other, None, 0, count)
            return items[::-1], more
        raise Unsupported(
            f"provider {provider!r} cannot page backward past the start of a fetched page; "
            "page forward with `first`/`after` instead.",
            provider=provider,
        )

    async def _before_blocks(
        self, at: _Pos, count: int, collected: Items[T]
    ) -> tuple[Items[T], bool]:
        """`count` items before `at` in block mode, given those of its own block before it.

        Earlier blocks come from the chain (cached), else hasteCRM's `previous`
        of the block's start, else a keyset read the other way from the first
        item collected."""
        start = at.c
        stepped: set[str] = set()
        while len(collected) < count and (start is not None or at.s):
            prior = self.chain.before(at.h, start) if self.chain is not None else _UNKNOWN
            checked = prior is not _UNKNOWN
            if not checked and self.api.has_previous:
                _, page = await self._page(at, start, self.max)
                prior = page.previous
                if prior is None:
                    start = None  # the block starts the list
                    break
            if prior is _UNKNOWN or prior in stepped:
                return await self._before_reversed(at, count, collected)
            assert prior is None or isinstance(prior, str)
            if prior is not None:
                stepped.add(prior)
            items, page = await self._page(at, prior, self.max)
            if checked and page.next != start:
                # The list changed since the chain was learnt: read it the other way.
                return await self._before_reversed(at, count, collected)
            first = collected[0][0].k if collected else at.k
            keys = [pos.k for pos, _ in items]
            # A `previous` clamped at the list start may overlap what is collected.
            collected = (
                items[: keys.index(first)] + collected if first in keys else (items + collected)
            )
            start = items[0][0].c if items else prior
        more = len(collected) > count or start is not None or at.s
        return collected[max(0, len(collected) - count) :] if count else [], more

    async def _before_reversed(
        self, at: _Pos, count: int, collected: Items[T]
    ) -> tuple[Items[T], bool]:
        if not self.api.can_reverse:
            raise Unsupported(
                f"provider {self.provider!r} cannot page backward past the start of a "
                "fetched page; page forward with `first`/`after` instead.",
                provider=self.provider,
            )
        first = collected[0][0].k if collected else at.k
        handle = await self.api.open(not at.r, first)
        other = _Pos(h=handle, k="", r=not at.r, s=True)
        items, more = await self.forward(other, None, 0, count - len(collected))
        return items[::-1] + collected, more

    async def _before_by_previous(self, at: _Pos, count: int) -> tuple[Items[T], bool]:
        want = count - at.i  # items needed before the edge's page
        limit = min(self.max, max(want, at.i))
        if at.p is not None and at.l is not None and at.l >= want and at.l + at.i <= self.max:
            # The page's own `previous` reaches far enough: one request covers the run.
            items, page = await self._page(at, at.p, at.l + at.i)
            keys = [pos.k for pos, _ in items]
            cut = keys.index(at.k) if at.k in keys else len(items)
            return items[:cut][-count:], cut > count or page.previous is not None
        probe, page = await self._page(at, at.c, limit)
        collected = probe[: at.i]
        first_key = at.k if at.i == 0 else probe[0][0].k
        position, need, more = page.previous, want, False
        stepped: set[str] = set()
        while need > 0 and position is not None:
            if position in stepped:
                # Stepping back to a page already read would go round forever.
                raise UpstreamBadResponse(
                    f"{self.provider} sent an unusable response: it repeated a `previous` "
                    "position while paging back.",
                    provider=self.provider,
                )
            stepped.add(position)
            items, page = await self._page(at, position, limit)
            keys = [pos.k for pos, _ in items]
            items = items[: keys.index(first_key)] if first_key in keys else items
            taken = items[-need:]
            collected = taken + collected
            need -= len(taken)
            more = len(items) > len(taken) or page.previous is not None
            first_key = items[0][0].k if items else first_key
            position = page.previous if need > 0 else None
        return collected, more


async def paginate_sequential(
    args: ConnectionArgs,
    *,
    api: SequentialAPI[T],
    codec: CursorCodec,
    binding: str,
    provider: str,
    block_size: int | None = None,
    chain: BlockChain | None = None,
) -> ConnectionSlice[T]:
    """Resolve a Relay window over an API read forward from opaque positions.

    `hasNextPage` (forward) and `hasPreviousPage` (backward) are exact; the
    other flag is true only when an item is known to lie beyond the cursor.
    `totalCount` is left to the caller: such APIs rarely count.
    `block_size`: read only blocks of that many items from a position (the API
    caches them), so a cursor's page is its block; `chain` remembers their order.
    """
    if args.first is not None and args.last is not None:
        raise BadUserInput(
            "give `first` or `last`, not both, for this provider's lists.", argument="last"
        )
    after = _Pos.decode(codec, args.after, binding, "after", api)
    before = _Pos.decode(codec, args.before, binding, "before", api)
    reader = _Reader(api, provider, block_size, chain)
    if after is not None and before is not None and after.k == before.k:
        # Nothing lies strictly between an edge and itself.
        items: Items[T] = []
        has_next = args.last is not None and not _is_last(before)
        has_previous = args.last is None and not _is_first(after)
    elif args.last is None:
        count = args.first if args.first is not None else 0
        items, has_next = await _toward_end(reader, after, count + (before is not None), provider)
        has_previous = after is not None and not _is_first(after)
        if before is not None:
            items, has_next = _until(items, before.k, count, has_next)
    else:
        count = args.last
        items, has_previous = await _toward_start(
            reader, before, count + (after is not None), provider
        )
        has_next = before is not None and not _is_last(before)
        if after is not None:
            reverse, has_previous = _until(items[::-1], after.k, count, has_previous)
            items = reverse[::-1]
    edges = [Edge(pos.encode(codec, binding), item) for pos, item in items]
    info = PageInfo(
        has_next_page=has_next,
        has_previous_page=has_previous,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None,
    )
    return ConnectionSlice(edges=edges, page_info=info, total_count=None)


def _until(items: Items[T], key: str, count: int, more: bool) -> tuple[Items[T], bool]:
    """`items` cut at the edge `key` (the other cursor), at most `count`; whether more remain."""
    keys = [pos.k for pos, _ in items]
    if key in keys:
        cut = keys.index(key)
        return items[: min(cut, count)], cut > count
    if not more:
        return [], False  # read to the end without meeting it: the cursors are crossed
    return items[:count], True


def _is_first(pos: _Pos) -> bool:
    """Whether nothing precedes the edge in the connection's order."""
    return pos.z if pos.r else pos.starts_list


def _is_last(pos: _Pos) -> bool:
    return pos.starts_list if pos.r else pos.z


async def _toward_end(
    reader: _Reader[T], after: _Pos | None, count: int, provider: str
) -> tuple[Items[T], bool]:
    """`count` items after `after` in the connection's order; whether more follow."""
    if after is None:
        return await reader.head(False, count)
    if after.r:
        items, more = await reader.before(after, count, provider)
        return items[::-1], more
    return await reader.after(after, count)


async def _toward_start(
    reader: _Reader[T], before: _Pos | None, count: int, provider: str
) -> tuple[Items[T], bool]:
    """`count` items before `before` in the connection's order; whether more precede."""
    if before is None:
        if not reader.api.can_reverse:
            raise Unsupported(
                f"provider {provider!r} cannot read a list from its end; page forward with "
                "`first`, or give `before`.",
                provider=provider,
            )
        items, more = await reader.head(True, count)
        return items[::-1], more
    if before.r:
        items, more = await reader.after(before, count)
        return items[::-1], more
    return await reader.before(before, count, provider)

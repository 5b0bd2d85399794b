"""The offset engine: Relay windows over APIs addressed by offsets.

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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from gateway.errors import BadUserInput
from gateway.pagination.connection import ConnectionArgs, ConnectionSlice, Edge, PageInfo
from gateway.pagination.cursors import CursorCodec

T = TypeVar("T")


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


async def paginate_list(
    args: ConnectionArgs, items: Sequence[T], *, codec: CursorCodec, binding: str
) -> ConnectionSlice[T]:
    """A Relay window cut from a list already held in memory, with the same offset
    cursors an upstream read of that list hands out."""

    async def fetch(offset: int, size: int) -> OffsetPage[T]:
        return OffsetPage(offset, list(items[offset : offset + size]), len(items))

    return await paginate_offsets(
        args,
        fetch=fetch,
        codec=codec,
        binding=binding,
        max_request_size=max(1, len(items)),
        aligned=False,
    )

"""Reading runs of a sequential list around known positions, for the sequential engine."""

from __future__ import annotations

from typing import Generic, TypeVar

from gateway.errors import Unsupported, UpstreamBadResponse
from gateway.pagination.positions import UNKNOWN, BlockChain, Items, Pos, SeqPage, SequentialAPI

T = TypeVar("T")


class Reader(Generic[T]):
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

    async def _page(self, at: Pos, start: str | None, limit: int) -> tuple[Items[T], SeqPage[T]]:
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
                Pos(
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
        self, at: Pos, start: str | None, skip: int, count: int
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

    async def after(self, at: Pos, count: int) -> tuple[Items[T], bool]:
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
            items, page = await self._page(Pos(h=handle, k=""), start, self.max)
            if page.next is None or len(page.items) < self.max:
                past = Pos(h=handle, k=items[-1][0].k if items else "", i=len(items), c=start)
                run, more = await self._before_blocks(past, count, items)
                return run[::-1], more
        handle = await self.api.open(reverse, None)
        return await self.forward(Pos(h=handle, k="", r=reverse), None, 0, count)

    async def before(self, at: Pos, count: int, provider: str) -> tuple[Items[T], bool]:
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
            other = Pos(h=handle, k="", r=not at.r, s=True)
            items, more = await self.forward(other, None, 0, count)
            return items[::-1], more
        raise Unsupported(
            f"provider {provider!r} cannot page backward past the start of a fetched page; "
            "page forward with `first`/`after` instead.",
            provider=provider,
        )

    async def _before_blocks(
        self, at: Pos, count: int, collected: Items[T]
    ) -> tuple[Items[T], bool]:
        """`count` items before `at` in block mode, given those of its own block before it.

        Earlier blocks come from the chain (cached), else hasteCRM's `previous`
        of the block's start, else a keyset read the other way from the first
        item collected."""
        start = at.c
        stepped: set[str] = set()
        while len(collected) < count and (start is not None or at.s):
            prior = self.chain.before(at.h, start) if self.chain is not None else UNKNOWN
            checked = prior is not UNKNOWN
            if not checked and self.api.has_previous:
                _, page = await self._page(at, start, self.max)
                prior = page.previous
                if prior is None:
                    start = None  # the block starts the list
                    break
            if prior is UNKNOWN or prior in stepped:
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
        self, at: Pos, count: int, collected: Items[T]
    ) -> tuple[Items[T], bool]:
        if not self.api.can_reverse:
            raise Unsupported(
                f"provider {self.provider!r} cannot page backward past the start of a "
                "fetched page; page forward with `first`/`after` instead.",
                provider=self.provider,
            )
        first = collected[0][0].k if collected else at.k
        handle = await self.api.open(not at.r, first)
        other = Pos(h=handle, k="", r=not at.r, s=True)
        items, more = await self.forward(other, None, 0, count - len(collected))
        return items[::-1] + collected, more

    async def _before_by_previous(self, at: Pos, count: int) -> tuple[Items[T], bool]:
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

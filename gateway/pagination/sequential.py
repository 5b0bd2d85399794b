"""The sequential engine: Relay windows over APIs read forward from opaque positions."""

from __future__ import annotations

from typing import TypeVar

from gateway.errors import BadUserInput, Unsupported
from gateway.pagination.connection import ConnectionArgs, ConnectionSlice, Edge, PageInfo
from gateway.pagination.cursors import CursorCodec
from gateway.pagination.positions import BlockChain, Items, Pos, SequentialAPI
from gateway.pagination.sequential_reader import Reader

T = TypeVar("T")


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
    after = Pos.decode(codec, args.after, binding, "after", api)
    before = Pos.decode(codec, args.before, binding, "before", api)
    reader = Reader(api, provider, block_size, chain)
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


def _is_first(pos: Pos) -> bool:
    """Whether nothing precedes the edge in the connection's order."""
    return pos.z if pos.r else pos.starts_list


def _is_last(pos: Pos) -> bool:
    return pos.starts_list if pos.r else pos.z


async def _toward_end(
    reader: Reader[T], after: Pos | None, count: int, provider: str
) -> tuple[Items[T], bool]:
    """`count` items after `after` in the connection's order; whether more follow."""
    if after is None:
        return await reader.head(False, count)
    if after.r:
        items, more = await reader.before(after, count, provider)
        return items[::-1], more
    return await reader.after(after, count)


async def _toward_start(
    reader: Reader[T], before: Pos | None, count: int, provider: str
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

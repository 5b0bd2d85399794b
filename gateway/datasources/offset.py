"""The offset family: page-number and index-range APIs, where any window of a list is
addressed by its offset.

A provider of this family implements `fetch_offset`; the family reads its lists in
cached blocks through the offset engine (`gateway.pagination`), reads a collection
whole for lookups, plans nested windows (blocks of the child list filtered by parent,
where the API can filter by it) and costs its windows.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from gateway.datasources.base import ByParent, DataSource, ListRead
from gateway.datasources.hooks import OFFSET_STYLES, PaginationStyle
from gateway.datasources.lookups import WholeList
from gateway.listquery import ListQuery
from gateway.pagination import (
    ConnectionArgs,
    ConnectionSlice,
    OffsetPage,
    paginate_offsets,
)
from gateway.records import AnyRecord, Entity, Link
from gateway.upstream import Upstream


class OffsetSource(DataSource):
    """The page-number and index-range family: any window is addressed by its offset."""

    styles = OFFSET_STYLES
    # Links whose children the API lists by parent with paging: link -> the child entity's
    # field equal to the parent's id. A nested window then reads only the blocks of that
    # filtered list it reaches. Its cursors are the offsets the whole-list plan hands out
    # too, so the two plans can take turns on one list.
    paged_links: ClassVar[Mapping[Link, str]] = {}
    # Of those, the links whose `children` serves many parents in one request: blocks are
    # read only for a parent asked alone, where they cost less.
    batched_links: ClassVar[frozenset[Link]] = frozenset()

    @abstractmethod
    async def fetch_offset(
        self, entity: Entity, offset: int, size: int, query: ListQuery
    ) -> OffsetPage[AnyRecord]:
        """Rows [offset, offset+size) of the entity's list."""

    async def window(self, read: ListRead) -> ConnectionSlice[AnyRecord]:
        """A window read in cached blocks; its cursors are offsets."""
        blocks, entity, query = self.blocks, read.entity, read.query

        async def fetch(offset: int, size: int) -> OffsetPage[AnyRecord]:
            if blocks is None:
                return await self.fetch_offset(entity, offset, size, query)

            async def uncached() -> OffsetPage[AnyRecord]:
                with Upstream.uncached():
                    return await self.fetch_offset(entity, offset, size, query)

            key = ("offset", entity.value, query.key(), offset, size)
            return await blocks.read(key, uncached)

        return await paginate_offsets(
            read.args,
            fetch=fetch,
            codec=read.codec,
            binding=read.binding,
            max_request_size=self.max_request_size,
            aligned=self.style is PaginationStyle.PAGE_NUMBER,
            block_size=self.block_size(entity) if blocks is not None else None,
        )

    async def whole_list(self, entity: Entity, limit: int, size: int) -> WholeList:
        records: list[AnyRecord] = []
        offset = 0
        while len(records) <= limit:
            page = await self.fetch_offset(entity, offset, size, ListQuery())
            records += page.items
            offset += len(page.items)
            if not page.items or offset >= page.total:
                return WholeList(records, complete=True)
            if page.total > limit:
                return WholeList(records, complete=False, total=page.total)
            # An API that caps pages below what was asked: page by its own size.
            size = min(size, len(page.items))
        return WholeList(records, complete=False)

    def nested_plan(self, link: Link, listed_inline: bool, filtered: bool) -> ByParent | None:
        # Only without a filter or order of the client's: the gateway arranges those in
        # memory (ties and all), and both plans must put the children in the same order,
        # since a cursor one plan gave the other may read.
        if link not in self.paged_links or listed_inline or filtered:
            return None
        return ByParent(self.paged_links[link], alone=link in self.batched_links)

    def estimate_list(
        self,
        entity: Entity,
        args: ConnectionArgs,
        filtered: bool,
        count: bool,
        ordered: bool = False,
    ) -> int:
        if entity not in self.entities:
            return 0
        shape = self.estimates.shape(entity, args, filtered, count)
        size, page, total = shape.size, shape.page, shape.total
        if self.blocks is None:
            return total + 2 * (shape.spans + 1) * page
        if not shape.cursors and args.last is None:
            keys = [k * size for k in range(shape.blocks)]
            return total + page * sum(
                1 for o in keys if filtered or self._peek(entity, o, size) is None
            )
        if not shape.cursors and args.first is None:
            head = None if filtered else self._peek(entity, 0, size)
            if head is None:
                return total + (1 + shape.spans) * page
            lo = max(0, head.total - shape.n)
            tail = range(lo // size, max(lo + 1, head.total) // size + 1)
            missing = [k for k in tail if self._peek(entity, k * size, size) is None]
            return total + page * len(missing)
        return total + (2 + shape.spans) * page

    def known_size(self, entity: Entity) -> int | None:
        head = self._peek(entity, 0, self.block_size(entity))
        return super().known_size(entity) if head is None else int(head.total)

    def _peek(self, entity: Entity, offset: int, size: int) -> Any:
        """The cached block of the unfiltered list at `offset` (None: not cached)."""
        if self.blocks is None:
            return None
        return self.blocks.peek(("offset", entity.value, ListQuery().key(), offset, size))

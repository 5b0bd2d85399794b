"""The sequential family: cursor and page-token APIs, where a list is read from its
start or from a position the API handed out.

A provider of this family implements `open_list`, `valid_handle` and `fetch_page`;
the family reads its lists in cached blocks through the sequential engine
(`gateway.pagination`), which remembers which block follows which, reads a collection
whole for lookups and costs its windows. A nested window is always cut from the
parent's whole child list: no cursor of a filtered list could continue it.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from dataclasses import replace
from typing import ClassVar

from gateway.datasources.base import ByParent, DataSource, ListRead
from gateway.datasources.hooks import SEQUENTIAL_STYLES
from gateway.datasources.lookups import WholeList
from gateway.listquery import ListQuery
from gateway.pagination import (
    BlockChain,
    ConnectionArgs,
    ConnectionSlice,
    SeqPage,
    paginate_sequential,
)
from gateway.pagination.keyset import Keyset
from gateway.records import AnyRecord, Entity, Link, field_value
from gateway.upstream import Upstream

# An upstream cursor or page token as APIs hand them out: base64(url), JWT-like or plain
# words. Anything else in a gateway cursor was not written by the upstream.
POSITION = re.compile(r"[A-Za-z0-9+/=_.~-]{1,1024}")


class SequentialSource(DataSource):
    """The cursor and page-token family: a list is read from its start or a position."""

    styles = SEQUENTIAL_STYLES
    # Whether a page says where the page before it starts (the engine can step back).
    has_previous: ClassVar[bool] = False
    # Whether an ordered list reopens after a (sort key, id) position (gateway.pagination.
    # keyset), not after an id: its edges' keys, and `open_list`'s `after_key`, are those.
    keyset_orders: ClassVar[bool] = False

    @abstractmethod
    async def open_list(
        self, entity: Entity, reverse: bool, after_key: str | None, query: ListQuery
    ) -> str:
        """A handle on the entity's list, reversed and/or after a key (see SequentialAPI).

        A handle is a small token `valid_handle` recognises, never request parameters:
        cursors carry it, and whoever holds the cursor secret can write one.
        """

    @abstractmethod
    def valid_handle(self, handle: str) -> bool:
        """Whether `handle` is one `open_list` can return."""

    @abstractmethod
    async def fetch_page(
        self, entity: Entity, handle: str, position: str | None, limit: int, query: ListQuery
    ) -> SeqPage[AnyRecord]:
        """Up to `limit` records of list `handle` from `position` (None: its start).

        The request is built from `query` (validated) and the handle's direction;
        `position` goes only as the value of the API's own cursor parameter.
        """

    def valid_position(self, position: str) -> bool:
        """Whether `position` looks like one of the API's cursors or page tokens."""
        return POSITION.fullmatch(position) is not None

    async def count(self, entity: Entity, query: ListQuery) -> int | None:
        """The entity's total, where the API can tell it without reading the list."""
        return None

    def head_handle(self, entity: Entity) -> str | None:
        """The handle `open_list` gives an unfiltered forward list without a request."""
        return None

    def estimate_open(
        self, entity: Entity, reverse: bool, keyset: bool, filtered: bool, ordered: bool
    ) -> int:
        """Requests `open_list` costs."""
        return 0

    async def window(self, read: ListRead) -> ConnectionSlice[AnyRecord]:
        entity, query = read.entity, read.query
        block = self.block_size(entity) if self.blocks is not None else None
        listed = _EntityList(self, entity, query, block)
        window = await paginate_sequential(
            read.args,
            api=listed,
            codec=read.codec,
            binding=read.binding,
            provider=self.name,
            block_size=block,
            chain=listed.chain,
        )
        if not self.can_count:
            return window

        async def count() -> int | None:
            return await self.count(entity, query)

        return replace(window, count=count)

    async def whole_list(self, entity: Entity, limit: int, size: int) -> WholeList:
        query = ListQuery()
        handle = await self.open_list(entity, False, None, query)
        records: list[AnyRecord] = []
        position: str | None = None
        given: set[str] = set()
        while len(records) <= limit:
            read = await self.fetch_page(entity, handle, position, size, query)
            records += read.items
            if read.next is None:
                return WholeList(records, complete=True)
            if read.next in given:
                raise self.upstream.bad_response(
                    f"it repeated a page position while listing {entity.plural}"
                )
            given.add(read.next)
            position = read.next
        return WholeList(records, complete=False)

    def nested_plan(self, link: Link, listed_inline: bool, filtered: bool) -> ByParent | None:
        return None  # the whole child list (see the module's docstring)

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
        page, total = shape.page, shape.total
        if not shape.cursors and args.last is None:
            opened = self.estimate_open(entity, False, False, filtered, ordered)
            head = self._uncached_head(entity, shape.blocks, shape.size, filtered)
            return total + opened + page * head
        if args.last is None:
            return total + shape.spans * page + (page if args.before is not None else 0)
        # Backward: the chain's blocks, a `previous` probe per block, or a reversed read.
        reverse = self.estimate_open(entity, True, True, filtered, ordered)
        return total + reverse + (3 * shape.spans + 2) * page

    def _uncached_head(self, entity: Entity, blocks: int, size: int, filtered: bool) -> int:
        """Blocks of an unfiltered list's first `blocks` not cached, following each cached
        block's `next`; every block when the list's handle is only known upstream."""
        if filtered or self.blocks is None:
            return blocks
        handle = self.head_handle(entity)
        if handle is None:
            return blocks
        position: str | None = None
        for done in range(blocks):
            key = ("seq", entity.value, ListQuery().key(), handle, position, size)
            page = self.blocks.peek(key)
            if page is None:
                return blocks - done
            if page.next is None or len(page.items) < size:
                return 0
            position = page.next
        return 0


class _EntityList:
    """One entity's list of a data source, as the sequential pagination engine reads it."""

    def __init__(
        self, source: SequentialSource, entity: Entity, query: ListQuery, block: int | None = None
    ) -> None:
        self.source = source
        self.entity = entity
        self.query = query
        # In block mode every read is one block: a cursor's index stays below its size.
        self.max_request_size = block or source.max_request_size
        self.has_previous = source.has_previous
        self.can_reverse = source.can_page_backward
        self.block = block
        ordered = source.keyset_orders and len(query.order) == 1
        self.keyset = Keyset(query.order[0]) if ordered else None
        self.chain: BlockChain | None = None
        if block is not None and source.blocks is not None:
            prefix = (source.blocks.tenant, entity.value, query.key(), block)
            self.chain = BlockChain(source.blocks.links, prefix)

    def key(self, item: AnyRecord) -> str:
        if self.keyset is None:
            return item.remote_id
        return self.keyset.key(field_value(item, self.keyset.sort.field), item.remote_id)

    def valid_handle(self, handle: str) -> bool:
        return self.source.valid_handle(handle)

    def valid_position(self, position: str) -> bool:
        return self.source.valid_position(position)

    async def open(self, reverse: bool, after_key: str | None) -> str:
        return await self.source.open_list(self.entity, reverse, after_key, self.query)

    async def fetch(self, handle: str, position: str | None, limit: int) -> SeqPage[AnyRecord]:
        # The validated query, not anything a cursor held, shapes the request.
        blocks = self.source.blocks
        if blocks is None or limit != self.block:
            return await self.source.fetch_page(self.entity, handle, position, limit, self.query)

        async def read() -> SeqPage[AnyRecord]:
            with Upstream.uncached():
                return await self.source.fetch_page(
                    self.entity, handle, position, limit, self.query
                )

        key = ("seq", self.entity.value, self.query.key(), handle, position, limit)
        return await blocks.read(key, read)

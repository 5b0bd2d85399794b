"""Records by id and children by parent, for the per-request loaders.

`Lookups` is the default plan of a data source's `get_many` (its collection read
whole where that costs fewer requests than a GET per id, then single GETs for the
rest) and the batch shapes provider files build their own plans from: an API call
that takes a list of ids, one read per parent, rows grouped by their parent, and
children a parent lists inline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from gateway.cache import ReadCache
from gateway.errors import GatewayError, NotFound
from gateway.records import CHILD_ENTITY, PARENT_ENTITY, AnyRecord, Entity, Link

# Per parent of a children read: its child records, or the error that failed it alone.
Children = list[AnyRecord] | Exception


@dataclass(frozen=True)
class WholeRead:
    """An entity's collection read whole for lookups: its records by id, and whether the
    read reached the list's end (a collection found too big is read only in part)."""

    records: dict[str, AnyRecord]
    complete: bool


@dataclass(frozen=True)
class WholeList:
    """What a pagination family's whole read found: the records in list order, whether it
    reached the end, and the list's total where a page told it (a list too long)."""

    records: list[AnyRecord]
    complete: bool
    total: int | None = None


class Source(Protocol):
    """What the lookups use of their data source."""

    @property
    def whole_reads(self) -> Mapping[Entity, int]: ...
    @property
    def whole_page_size(self) -> int: ...
    @property
    def wholes(self) -> ReadCache[WholeRead]: ...
    def valid_id(self, entity: Entity, remote_id: str) -> bool: ...
    def not_found(self, entity: Entity, remote_id: str) -> NotFound: ...
    async def get(self, entity: Entity, remote_id: str) -> AnyRecord: ...
    async def get_many(self, entity: Entity, ids: list[str]) -> list[AnyRecord | Exception]: ...
    async def whole_list(self, entity: Entity, limit: int, size: int) -> WholeList: ...


class Lookups:
    """A data source's reads by id and by parent (at most `concurrency` at once)."""

    def __init__(self, source: Source, concurrency: int) -> None:
        self.source = source
        self.bound = asyncio.Semaphore(concurrency)
        # Collection sizes whole reads found: the next plan costs them by what they hold.
        self.sizes: dict[Entity, int] = {}

    async def by_id(self, entity: Entity, ids: list[str]) -> list[AnyRecord | Exception]:
        """Records by id, in order; an error in place of each one that failed.

        Without an id-list filter: the collection read whole when the plan says it is
        cheaper (`whole_reads`), then concurrent single fetches for the ids it did not
        hold, at most `max_concurrency` at a time.
        """
        source = self.source
        wanted = list(dict.fromkeys(i for i in ids if source.valid_id(entity, i)))
        found: dict[str, AnyRecord | Exception] = {}
        if self.reads_whole(entity, len(wanted)):
            try:
                whole = await self.read_whole(entity)
            except GatewayError as error:
                return [
                    error if source.valid_id(entity, i) else source.not_found(entity, i)
                    for i in ids
                ]
            found = {i: whole.records[i] for i in wanted if i in whole.records}

        async def one(remote_id: str) -> AnyRecord | Exception:
            if not source.valid_id(entity, remote_id):
                return source.not_found(entity, remote_id)
            async with self.bound:
                try:
                    return await source.get(entity, remote_id)
                except GatewayError as error:
                    return error

        missing = [i for i in dict.fromkeys(ids) if i not in found]
        found.update(zip(missing, await asyncio.gather(*(one(i) for i in missing)), strict=True))
        return [found[i] for i in ids]

    def reads_whole(self, entity: Entity, distinct: int) -> bool:
        """Whether reading `entity` whole costs fewer requests than `distinct` single GETs:
        its pages by the size the last whole read found, else by the declared maximum."""
        limit = self.source.whole_reads.get(entity)
        if limit is None:
            return False
        size = self.sizes.get(entity, limit)
        return size <= limit and -(-max(size, 1) // self.source.whole_page_size) < distinct

    async def read_whole(self, entity: Entity) -> WholeRead:
        """`entity`'s list read whole through the data source's own list methods, cached
        for `cache_ttl`; a list longer than `whole_reads[entity]` stops after the page
        that shows it (its records still serve the lookups)."""
        return await self.source.wholes.get(entity, lambda: self._read_whole(entity))

    async def _read_whole(self, entity: Entity) -> WholeRead:
        limit = self.source.whole_reads[entity]
        read = await self.source.whole_list(entity, limit, self.source.whole_page_size)
        if read.complete:
            self.sizes[entity] = len(read.records)
        else:
            known = self.sizes.get(entity, 0) if read.total is None else read.total
            self.sizes[entity] = max(known, len(read.records), limit + 1)
        return WholeRead({r.remote_id: r for r in read.records}, read.complete)

    async def listed_by_id(
        self,
        entity: Entity,
        ids: list[str],
        size: int,
        fetch: Callable[[list[str]], Awaitable[list[AnyRecord]]],
    ) -> list[AnyRecord | Exception]:
        """`get_many` through an API call that takes a list of ids (at most `size` of them):
        each id asked once, answers in order, NotFound for an id that came back empty
        or cannot exist."""
        source = self.source
        wanted = list(dict.fromkeys(i for i in ids if source.valid_id(entity, i)))
        found: dict[str, AnyRecord] = {}
        for start in range(0, len(wanted), size):
            found.update((r.remote_id, r) for r in await fetch(wanted[start : start + size]))
        return [found.get(i) or source.not_found(entity, i) for i in ids]

    async def per_parent(
        self,
        link: Link,
        parent_ids: list[str],
        read: Callable[[str], Awaitable[list[AnyRecord]]],
    ) -> list[Children]:
        """`children` where the API reads one parent at a time: each read on its own (at
        most `max_concurrency` at once), so a failing one fails only its parent."""
        entity = PARENT_ENTITY[link]

        async def one(parent: str) -> Children:
            if not self.source.valid_id(entity, parent):
                return self.source.not_found(entity, parent)
            async with self.bound:
                try:
                    return await read(parent)
                except GatewayError as error:
                    return error

        return list(await asyncio.gather(*(one(p) for p in parent_ids)))

    async def grouped(
        self,
        link: Link,
        parent_ids: list[str],
        read: Callable[[list[str]], Awaitable[Iterable[AnyRecord]]],
        parent_of: Callable[[AnyRecord], str | None],
    ) -> list[Children]:
        """`children` where the API reads the children of many parents at once: `read`
        gets the parents that can exist, in order, and answers their children in the
        provider's order; `parent_of` says whose each one is. A parent that cannot exist
        is not found; a failed read fails them all (it raises)."""
        entity = PARENT_ENTITY[link]
        valid = [p for p in parent_ids if self.source.valid_id(entity, p)]
        groups: dict[str, list[AnyRecord]] = {p: [] for p in valid}
        for child in await read(valid) if valid else []:
            parent = parent_of(child)
            if parent in groups:
                groups[parent].append(child)
        source = self.source
        return [groups[p] if p in groups else source.not_found(entity, p) for p in parent_ids]

    async def inline_children(self, link: Link, parent_ids: list[str]) -> list[Children]:
        """Children a link's parents list inline (`record.linked`): the parents, then the
        children by id, two batches in all. A parent or child gone counts as no child; any
        other failure fails the parents it concerns."""

        def listed(parent: AnyRecord | Exception) -> list[str] | Exception:
            if isinstance(parent, NotFound):
                return []
            return parent if isinstance(parent, Exception) else parent.linked.get(link, [])

        source = self.source
        ids = [listed(p) for p in await source.get_many(PARENT_ENTITY[link], parent_ids)]
        flat = list(dict.fromkeys(i for group in ids if isinstance(group, list) for i in group))
        found = dict(zip(flat, await source.get_many(CHILD_ENTITY[link], flat), strict=True))

        def children(group: list[str] | Exception) -> Children:
            if isinstance(group, Exception):
                return group
            records = [found[i] for i in group]
            failed = [
                r for r in records if isinstance(r, Exception) and not isinstance(r, NotFound)
            ]
            return failed[0] if failed else [r for r in records if not isinstance(r, Exception)]

        return [children(group) for group in ids]

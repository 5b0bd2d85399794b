"""Per-request dataloaders: one per provider and entity (by id) and per provider and link.

Lookups made while resolving one level of a query are collected and sent as
one batch: the data source turns a batch of ids into one request where its API
can (an id-list filter), and a batch of parents into one request for all their
children where it can filter by a list of parent ids. An error for one id
fails only the fields that asked for it.

In naive mode (`batching = false`) every lookup is its own request and
nothing is remembered within the request, so the benchmark can compare.
"""

from __future__ import annotations

from asyncio import Future
from typing import Any, Final

from aiodataloader import DataLoader

from gateway.datasources import DataSource
from gateway.errors import NotFound
from gateway.records import AnyRecord, Entity, Link

# What `Loaders.ready` answers for a lookup this request has not finished.
NOT_READY: Final = object()


class Loaders:
    def __init__(self, sources: dict[str, DataSource] | Any, *, batching: bool) -> None:
        self.sources = sources
        self.batching = batching
        self._records: dict[tuple[str, Entity], DataLoader[str, AnyRecord | None]] = {}
        # Each by-id loader's futures by remote id, so a finished lookup can be read at once.
        self._futures: dict[tuple[str, Entity], dict[str, Future[AnyRecord | None]]] = {}
        self._children: dict[tuple[str, Link], DataLoader[str, list[AnyRecord]]] = {}
        self._askers: dict[tuple[str, Link], DataLoader[str, int]] = {}

    def _options(self) -> dict[str, Any]:
        if self.batching:
            return {"max_batch_size": 100}
        return {"batch": False, "cache": False}

    def record(self, source: DataSource, entity: Entity) -> DataLoader[str, AnyRecord | None]:
        """Loads records by remote id; None for one that does not exist."""
        key = (source.name, entity)
        if key not in self._records:

            async def batch(ids: list[str]) -> list[Any]:  # records, None, or errors
                # An id the provider cannot have (a forged one) is not found, unsent.
                valid = [i for i in ids if source.valid_id(entity, i)]
                found = dict(zip(valid, await source.get_many(entity, valid), strict=True))
                return [None if isinstance(r := found.get(i), NotFound) else r for i in ids]

            futures: dict[str, Future[AnyRecord | None]] = {}
            self._futures[key] = futures
            self._records[key] = DataLoader(batch, cache_map=futures, **self._options())
        return self._records[key]

    def ready(self, provider: str, entity: Entity, remote_id: str) -> Any:
        """The record (None: it does not exist) a lookup of this request already found, or
        NOT_READY: a resolver can answer without awaiting, as a plain attribute would."""
        future = self._futures.get((provider, entity), {}).get(remote_id)
        if future is None or not future.done() or future.cancelled() or future.exception():
            return NOT_READY
        return future.result()

    def children(self, source: DataSource, link: Link) -> DataLoader[str, list[AnyRecord]]:
        """Loads, per parent remote id, every record `link` leads to."""
        key = (source.name, link)
        if key not in self._children:

            async def batch(parent_ids: list[str]) -> list[Any]:  # lists, or errors
                try:
                    return list(await source.children(link, parent_ids))
                except Exception as error:  # the whole batch failed: so did each parent
                    return [error for _ in parent_ids]

            self._children[key] = DataLoader(batch, **self._options())
        return self._children[key]

    def askers(self, source: DataSource, link: Link) -> DataLoader[str, int]:
        """How many parents ask for `link` in the same batch as this one (1 in naive mode)."""
        key = (source.name, link)
        if key not in self._askers:

            async def batch(parent_ids: list[str]) -> list[int]:
                return [len(parent_ids)] * len(parent_ids)

            self._askers[key] = DataLoader(batch, **self._options())
        return self._askers[key]

    def prime(self, records: list[AnyRecord]) -> None:
        """Records a list returned: later lookups of them in this request cost nothing."""
        if not self.batching:
            return
        for record in records:
            source = self.sources.get(record.provider)
            if source is not None:
                self.record(source, record.entity).prime(record.remote_id, record)

    def forget(self, record: AnyRecord) -> None:
        """A record just written: later lookups in this request see the new version."""
        source = self.sources.get(record.provider)
        if source is not None:
            loader = self.record(source, record.entity)
            loader.clear(record.remote_id)
            if self.batching:
                loader.prime(record.remote_id, record)

"""The lookup planner's whole reads, over an in-memory offset API: every id answered as
the collection holds it, in the requests the plan promised."""

from __future__ import annotations

import asyncio
import re
from typing import Any, ClassVar

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.datasources.base import OffsetSource, PaginationStyle, ProviderCredentials
from gateway.errors import NotFound
from gateway.listquery import ListQuery
from gateway.pagination.offset import OffsetPage
from gateway.records import AnyRecord, CompanyRecord, Entity
from gateway.settings import ProviderSettings
from gateway.upstream import ClientAuth


class Fake(OffsetSource):
    kind = "revyops"
    display_name = "Fake"
    style = PaginationStyle.PAGE_NUMBER
    entities = frozenset({Entity.COMPANY})
    credentials_model = ProviderCredentials
    id_formats: ClassVar[dict[Entity, re.Pattern[str]]] = {Entity.COMPANY: re.compile(r"[0-9]+")}
    whole_reads = {Entity.COMPANY: 50}
    whole_page_size = 20

    def __init__(self, size: int, cap: int) -> None:
        settings = ProviderSettings(name="fake", kind="revyops", base_url="http://fake.test")
        super().__init__(settings, httpx.AsyncClient())
        self.rows = [CompanyRecord(provider="fake", remote_id=str(i)) for i in range(size)]
        self.cap = cap  # the API's own largest page, maybe below what is asked
        self.pages = 0
        self.gets: list[str] = []

    @classmethod
    def auth(cls, credentials: Any) -> ClientAuth:
        return ClientAuth()

    @staticmethod
    def error_message(body: Any) -> str | None:
        return None

    async def get(self, entity: Entity, remote_id: str) -> AnyRecord:
        self.gets.append(remote_id)
        if int(remote_id) >= len(self.rows):
            raise self.not_found(entity, remote_id)
        return self.rows[int(remote_id)]

    async def fetch_offset(
        self, entity: Entity, offset: int, size: int, query: ListQuery
    ) -> OffsetPage[AnyRecord]:
        self.pages += 1
        size = min(size, self.cap)
        start = offset // size * size  # a page-number API: aligned pages
        return OffsetPage(start, self.rows[start : start + size], len(self.rows))


@settings(max_examples=60)
@given(
    size=st.integers(0, 120),
    cap=st.integers(1, 40),
    ids=st.lists(st.integers(0, 150).map(str), max_size=30),
)
def test_whole_reads_answer_every_id(size: int, cap: int, ids: list[str]) -> None:
    source = Fake(size, cap)
    got = asyncio.run(source.get_many(Entity.COMPANY, ids))
    for remote_id, record in zip(ids, got, strict=True):
        if int(remote_id) < size:
            assert isinstance(record, CompanyRecord)
            assert record.remote_id == remote_id
        else:
            assert isinstance(record, NotFound)
    distinct = len(set(ids))
    pages = -(-50 // 20)  # nothing known yet: the declared maximum, in pages of 20
    if pages < distinct:
        expected = -(-max(size, 1) // min(20, cap)) if size <= 50 else None
        if expected is not None:
            assert source.pages == expected
            # Only ids the collection lacks cost a GET.
            assert sorted(source.gets) == sorted({i for i in ids if int(i) >= size})
        # What it found decides the next plan: a collection too big is not read again.
        if size <= 50:
            assert source.sizes[Entity.COMPANY] == size
        else:
            assert source.sizes[Entity.COMPANY] > 50
            assert not source.reads_whole(Entity.COMPANY, 1000)
    else:
        assert source.pages == 0
        assert len(source.gets) == distinct

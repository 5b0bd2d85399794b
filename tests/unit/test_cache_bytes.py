"""Caches bounded in bytes: entries measured when stored, a provider's caches under its
`cache_max_bytes`, one huge read served but not kept, and instance identities apart."""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from datetime import UTC, datetime

import httpx
from hypothesis import given
from hypothesis import strategies as st

from emulators import EmulatorOptions
from gateway.cache import ENTRY_SHARE, ReadCache, identity
from gateway.datasources import source_class
from gateway.listquery import Cond, ListQuery
from gateway.pagination.connection import ConnectionArgs
from gateway.pagination.cursors import CursorCodec
from gateway.pagination.offset import OffsetPage
from gateway.providers import create_emulator
from gateway.records import ContactRecord, Email, Entity
from gateway.settings import ProviderSettings
from gateway.sizes import deep_size
from gateway.upstream import open_client
from tests.unit.fake_time import FakeTime


def _page(count: int, tag: str = "") -> OffsetPage[ContactRecord]:
    # Through JSON, as a provider's answer is: every string its own object.
    rows = json.loads(
        json.dumps(
            [
                {"id": f"{tag}c{i}", "first": f"First{i}", "last": f"Last{i}{tag}", "tags": ["a"]}
                for i in range(count)
            ]
        )
    )
    records = [
        ContactRecord(
            provider="p",
            remote_id=row["id"],
            first_name=row["first"],
            last_name=row["last"],
            emails=[Email(f"{row['id']}@example.com", "work", True)],
            tags=row["tags"],
            remote_data=row,
            created_at=datetime.now(UTC),
        )
        for row in rows
    ]
    return OffsetPage(0, records, count)


def test_the_estimate_is_close_to_what_records_really_take():
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        page = _page(500)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    real = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert 0.7 * real < deep_size(page) < 1.5 * real


def test_a_response_counts_its_body_not_its_connection():
    body = b"x" * 100_000
    response = httpx.Response(200, content=body, request=httpx.Request("GET", "http://p.test/a"))
    assert len(body) < deep_size(response) < len(body) + 4096


@given(
    st.lists(
        st.tuples(st.integers(0, 80), st.integers(0, 3000)), max_size=60, unique_by=lambda w: w[0]
    )
)
def test_a_cache_never_holds_more_than_its_bytes_or_entries(writes: list[tuple[int, int]]):
    budget = 64_000
    cache: ReadCache[str] = ReadCache("t", ttl=60, maxsize=20, max_bytes=budget, timer=FakeTime())

    async def scenario() -> None:
        for key, length in writes:
            value = "v" * length

            async def fetch(value: str = value) -> str:
                return value

            await cache.get(key, fetch)
            assert cache.size <= budget
            assert len(cache._store) <= 20
            if deep_size(value) + deep_size(("t", key)) <= budget // ENTRY_SHARE:
                assert cache.peek(key) == value  # what fits was kept

    asyncio.run(scenario())


async def test_a_read_too_large_for_its_cache_is_served_and_not_kept():
    cache: ReadCache[str] = ReadCache("t", ttl=60, maxsize=10, max_bytes=80_000)
    calls = 0

    async def fetch() -> str:
        nonlocal calls
        calls += 1
        return "x" * 20_000  # above an eighth of the cache

    assert await cache.get("k", fetch) == "x" * 20_000
    assert await cache.get("k", fetch) == "x" * 20_000
    assert calls == 2
    assert cache.size == 0


async def test_a_providers_caches_stay_under_cache_max_bytes():
    # 80 distinct filters at first: 100 (the 3,000 at scale): each a new block.
    budget = 2**22
    emulator = create_emulator(
        "basicsos", EmulatorOptions(rate_limits=False, companies=10, contacts=150, deals=5)
    )
    settings = ProviderSettings(
        name="bos",
        kind="basicsos",
        base_url="http://basicsos.emulator",
        credentials={"token": "bos_crm_demo_admin"},
        rate_limit=False,
        cache_max_bytes=budget,
    )
    cls = source_class("basicsos")
    transport = httpx.ASGITransport(app=emulator)
    async with open_client(settings, cls.client_auth(settings), transport=transport) as client:
        source = cls(settings, client)
        blocks, responses = source.blocks, source.upstream.cache
        assert blocks is not None
        assert responses is not None
        codec = CursorCodec(b"test-cursor-secret-kQ3vX8wZ")
        read = 0
        for i in range(80):
            query = ListQuery(filter=Cond("last_name", "neq", f"nobody-{i}"))
            window = await source.connection(
                Entity.CONTACT, ConnectionArgs(first=100), codec, query
            )
            read += deep_size([edge.node for edge in window.edges])
            assert blocks.size + responses.size + source.wholes.size <= budget
        assert read > 3 * budget  # far more was read than could be kept
        assert blocks.size > budget // 4  # and the cache still holds what it can


def test_an_instance_identity_names_everything_that_tells_instances_apart():
    base = ("crm", "redivis", "https://api.example", {"dataset": "acme.crm"}, {"token": "s3cret"})
    first = identity(*base)
    assert first == identity(*base)
    assert "s3cret" not in first
    others = [
        ("crm2", *base[1:]),
        (base[0], "basicsos", *base[2:]),
        (*base[:2], "https://api2.example", *base[3:]),
        (*base[:3], {"dataset": "acme.archive"}, base[4]),
        (*base[:4], {"token": "other"}),
    ]
    assert len({first, *(identity(*other) for other in others)}) == 1 + len(others)

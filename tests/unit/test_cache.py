"""The read cache: TTL, one call for identical concurrent reads, tenants apart, writes evict."""

from __future__ import annotations

import asyncio

import pytest

from gateway.cache import ReadCache, fingerprint


def test_fingerprint_names_a_tenant_without_its_secret():
    one = fingerprint("https://api.example", {"token": "secret-one"})
    two = fingerprint("https://api.example", {"token": "secret-two"})
    assert one != two
    assert "secret" not in one
    assert one == fingerprint("https://api.example", {"token": "secret-one"})


def test_identical_concurrent_reads_share_one_call():
    calls = 0

    async def fetch() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return "value"

    async def scenario() -> list[str]:
        cache: ReadCache[str] = ReadCache("t", ttl=60, maxsize=10)
        return list(await asyncio.gather(*(cache.get("k", fetch) for _ in range(20))))

    assert asyncio.run(scenario()) == ["value"] * 20
    assert calls == 1


def test_failures_are_shared_but_not_cached():
    calls = 0

    async def fetch() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise RuntimeError("upstream down")

    async def scenario() -> None:
        cache: ReadCache[str] = ReadCache("t", ttl=60, maxsize=10)
        results = await asyncio.gather(
            *(cache.get("k", fetch) for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, RuntimeError) for r in results)
        with pytest.raises(RuntimeError):
            await cache.get("k", fetch)

    asyncio.run(scenario())
    assert calls == 2  # one shared failure, then a fresh try


def test_entries_expire_and_a_write_evicts_even_a_read_in_flight():
    async def scenario() -> tuple[str, str, str]:
        cache: ReadCache[str] = ReadCache("t", ttl=0.05, maxsize=10)
        first = await cache.get("k", _value("old"))
        await asyncio.sleep(0.06)
        expired = await cache.get("k", _value("new"))

        async def slow() -> str:
            await asyncio.sleep(0.02)
            return "stale"

        pending = asyncio.ensure_future(cache.get("j", slow))
        await asyncio.sleep(0.005)
        cache.clear()  # a write lands while the read is in flight
        await pending
        after = await cache.get("j", _value("fresh"))
        return first, expired, after

    assert asyncio.run(scenario()) == ("old", "new", "fresh")


def test_switched_off_it_always_calls():
    calls = 0

    async def fetch() -> int:
        nonlocal calls
        calls += 1
        return calls

    async def scenario() -> list[int]:
        cache: ReadCache[int] = ReadCache("t", ttl=60, maxsize=10, enabled=False)
        return [await cache.get("k", fetch) for _ in range(3)]

    assert asyncio.run(scenario()) == [1, 2, 3]


def _value(text: str):
    async def fetch() -> str:
        return text

    return fetch

"""The read cache: TTL, one call for identical concurrent reads, tenants apart, writes evict,
and values past their TTL served (marked) when the provider's budget is spent."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import httpx
import pytest

from gateway.cache import ReadCache, StaleReads, fingerprint, stale_reads
from gateway.errors import (
    NoRateLimitSlot,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.responses import STALE_ON
from tests.unit.fake_time import FakeTime
from tests.unit.test_upstream import upstream_with

T = TypeVar("T")


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


# --- stale-if-error, on a fake timer -----------------------------------------------------------


class Timer:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def stale_cache(timer: Timer, **options: Any) -> ReadCache[str]:
    settings: dict[str, Any] = {
        "ttl": 30.0,
        "maxsize": 10,
        "stale_ttl": 600.0,
        "stale_on": (UpstreamRateLimited,),
        "provider": "attio",
        "timer": timer,
    }
    return ReadCache("t", **(settings | options))


def spent(provider: str = "attio") -> NoRateLimitSlot:
    return NoRateLimitSlot("no slot before the deadline", provider=provider)


def _failing(error: Exception, calls: list[int] | None = None):
    async def fetch() -> str:
        if calls is not None:
            calls.append(1)
        await asyncio.sleep(0)
        raise error

    return fetch


async def _noted(read: Awaitable[T]) -> tuple[T, dict[str, float]]:
    """`read`'s value and what it noted as stale, inside an operation's collector."""
    reads = StaleReads()
    token = stale_reads.set(reads)
    try:
        return await read, reads.ages
    finally:
        stale_reads.reset(token)


def test_a_fresh_value_is_served_without_a_fetch_and_not_marked():
    timer = Timer()

    async def scenario() -> tuple[str, dict[str, float]]:
        cache = stale_cache(timer)
        await cache.get("k", _value("v1"))
        timer.now = 29.9
        return await _noted(cache.get("k", _failing(spent())))

    assert asyncio.run(scenario()) == ("v1", {})


def test_past_its_ttl_a_value_is_refetched_when_the_provider_answers():
    timer = Timer()

    async def scenario() -> tuple[str, dict[str, float]]:
        cache = stale_cache(timer)
        await cache.get("k", _value("v1"))
        timer.now = 31.0
        return await _noted(cache.get("k", _value("v2")))

    assert asyncio.run(scenario()) == ("v2", {})


@pytest.mark.parametrize(
    "error",
    [
        spent(),  # the limiter had no slot before the deadline
        UpstreamRateLimited("attio answered 429", provider="attio", status=429),
    ],
)
def test_a_stale_value_beats_a_spent_budget_and_is_marked_with_its_age(error: Exception):
    timer = Timer()

    async def scenario() -> tuple[str, dict[str, float]]:
        cache = stale_cache(timer)
        await cache.get("k", _value("v1"))
        timer.now = 42.0
        return await _noted(cache.get("k", _failing(error)))

    assert asyncio.run(scenario()) == ("v1", {"attio": 42.0})


@pytest.mark.parametrize(
    "error",
    [
        UpstreamTimeout("attio did not answer in time", provider="attio"),
        UpstreamUnavailable("attio answered 503", provider="attio", status=503),
        RuntimeError("a bug"),
    ],
)
def test_other_errors_are_not_covered_by_a_stale_value(error: Exception):
    timer = Timer()

    async def scenario() -> None:
        cache = stale_cache(timer)
        await cache.get("k", _value("v1"))
        timer.now = 42.0
        with pytest.raises(type(error)):
            await cache.get("k", _failing(error))

    asyncio.run(scenario())


def test_a_value_older_than_ttl_plus_stale_ttl_is_not_served():
    timer = Timer()

    async def scenario() -> str:
        cache = stale_cache(timer)
        await cache.get("k", _value("v1"))
        timer.now = 30.0 + 600.0 - 0.1
        within = await cache.get("k", _failing(spent()))
        timer.now = 30.0 + 600.0 + 0.1
        with pytest.raises(NoRateLimitSlot):
            await cache.get("k", _failing(spent()))
        return within

    assert asyncio.run(scenario()) == "v1"


def test_without_stale_ttl_nothing_is_served_stale():
    timer = Timer()

    async def scenario() -> None:
        cache = stale_cache(timer, stale_ttl=0.0)
        await cache.get("k", _value("v1"))
        timer.now = 31.0
        with pytest.raises(NoRateLimitSlot):
            await cache.get("k", _failing(spent()))

    asyncio.run(scenario())


def test_a_write_clears_stale_values_too():
    timer = Timer()

    async def scenario() -> None:
        cache = stale_cache(timer)
        await cache.get("k", _value("v1"))
        timer.now = 42.0
        cache.clear()  # a write: "v1" may no longer be true
        with pytest.raises(NoRateLimitSlot):
            await cache.get("k", _failing(spent()))

    asyncio.run(scenario())


def test_a_write_during_the_failing_fetch_clears_the_stale_value():
    timer = Timer()

    async def scenario() -> None:
        cache = stale_cache(timer)
        await cache.get("k", _value("v1"))
        timer.now = 42.0

        async def fetch() -> str:
            cache.clear()  # a write lands while the read waits for a slot
            raise spent()

        with pytest.raises(NoRateLimitSlot):
            await cache.get("k", fetch)

    asyncio.run(scenario())


def test_readers_of_a_stale_key_share_one_fetch_and_each_is_marked():
    timer = Timer()
    calls: list[int] = []

    async def scenario() -> list[tuple[str, dict[str, float]]]:
        cache = stale_cache(timer)
        await cache.get("k", _value("v1"))
        timer.now = 100.0
        fetch = _failing(spent(), calls)
        return list(await asyncio.gather(*(_noted(cache.get("k", fetch)) for _ in range(5))))

    assert asyncio.run(scenario()) == [("v1", {"attio": 100.0})] * 5
    assert calls == [1]


def test_tenants_do_not_see_each_others_stale_values():
    timer = Timer()

    async def scenario() -> None:
        store: ReadCache[str] = stale_cache(timer)
        await store.get("k", _value("tenant one's"))
        store.tenant = "another"  # the same store under another tenant's fingerprint
        timer.now = 42.0
        with pytest.raises(NoRateLimitSlot):
            await store.get("k", _failing(spent()))

    asyncio.run(scenario())


def test_maxsize_bounds_stale_values_too():
    timer = Timer()

    async def scenario() -> None:
        cache = stale_cache(timer, maxsize=2)
        for key in ("a", "b", "c"):
            await cache.get(key, _value(key))
        timer.now = 42.0
        with pytest.raises(NoRateLimitSlot):
            await cache.get("a", _failing(spent()))  # pushed out by "c"
        assert await cache.get("c", _failing(spent())) == "c"

    asyncio.run(scenario())


def test_a_value_made_from_another_caches_stale_value_is_not_cached_as_fresh():
    """A cache of parsed blocks over the cache of responses: a block parsed from a stale
    response is as old as that response, so the next read still tries the provider."""
    timer = Timer()

    async def scenario() -> tuple[tuple[str, dict[str, float]], str]:
        responses = stale_cache(timer)
        blocks = stale_cache(timer, provider="attio")
        await responses.get("r", _value("v1"))
        timer.now = 40.0  # the response is stale, the block was never read
        outer = _noted(blocks.get("b", lambda: responses.get("r", _failing(spent()))))
        first = await outer
        timer.now = 41.0
        # The block is stale too: it is fetched again, and the provider now answers.
        again = await blocks.get("b", lambda: responses.get("r", _value("v2")))
        return first, again

    first, again = asyncio.run(scenario())
    assert first == ("v1", {"attio": 40.0})
    assert again == "v2"


# --- through the upstream client: a spent budget, either way ----------------------------------


def _cached_upstream(handler, time: FakeTime, **settings: Any):
    responses: ReadCache[Any] = ReadCache(
        "t", ttl=30.0, maxsize=10, stale_ttl=600.0, stale_on=STALE_ON, provider="crm", timer=time
    )
    return upstream_with(handler, time, responses=responses, request_deadline=5.0, **settings)


def _read_twice(upstream, time: FakeTime) -> tuple[int, dict[str, float]]:
    async def scenario() -> tuple[int, dict[str, float]]:
        await upstream.request("GET", "/things")
        time.advance(31.0)
        response, ages = await _noted(upstream.request("GET", "/things"))
        return response.json()["n"], ages

    return asyncio.run(scenario())


def test_upstream_serves_stale_when_the_limiter_has_no_slot_before_the_deadline():
    time = FakeTime()
    answers = iter(range(10))
    upstream, sent = _cached_upstream(
        lambda request: httpx.Response(200, json={"n": next(answers)}),
        time,
        rate_limits=[(1, 60.0)],
    )
    assert _read_twice(upstream, time) == (0, {"crm": 31.0})
    assert len(sent) == 1  # the second read was never sent
    assert time.slept == []  # refused at once: its turn was ~30 s past its deadline


def test_upstream_serves_stale_when_the_provider_answers_429():
    time = FakeTime()
    replies = iter(
        [httpx.Response(200, json={"n": 0})]
        + [httpx.Response(429, headers={"Retry-After": "3600"}, json={})] * 3
    )
    upstream, sent = _cached_upstream(lambda request: next(replies), time, rate_limit=False)
    assert _read_twice(upstream, time) == (0, {"crm": 31.0})
    assert len(sent) == 2  # the 429, not retried: its Retry-After is past the deadline

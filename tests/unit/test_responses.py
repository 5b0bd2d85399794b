"""The response cache layer over a fake of the layer below: cached reads, reads that skip
the cache, and writes that clear every cached read (responses and what was parsed)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from gateway.cache import ReadCache
from gateway.calls import Call
from gateway.errors import UpstreamUnavailable
from gateway.responses import ResponseCache, uncached
from tests.unit.fake_layer import Below, ok, run


class Parsed:
    """A cache of what was parsed from responses: how often it was cleared."""

    def __init__(self) -> None:
        self.cleared = 0

    def clear(self) -> None:
        self.cleared += 1


def cache_over(below: Below, *derived: Parsed) -> ResponseCache:
    store: ReadCache[httpx.Response] = ReadCache("tenant", ttl=30.0, maxsize=10)
    return ResponseCache(below, store, derived=derived)


def twice(layer: ResponseCache, call: Call) -> list[Any]:
    async def both() -> list[Any]:
        return [await layer.send(call), await layer.send(call)]

    return asyncio.run(both())


def test_an_idempotent_read_is_sent_once_then_served_from_the_cache():
    below = Below(ok(), ok())
    first, second = twice(cache_over(below), Call("POST", "/search", json_body={"q": 1}))
    assert first is second
    assert len(below.calls) == 1
    other = Call("POST", "/search", json_body={"q": 2})  # another body: another read
    assert run(cache_over(Below(ok())).send(other)).status_code == 200


def test_reads_that_must_see_the_current_state_skip_the_cache():
    below = Below(ok(), ok(), ok(), ok())
    layer = cache_over(below)
    twice(layer, Call("GET", "/x", cached=False))
    assert len(below.calls) == 2

    async def inside() -> None:
        with uncached():
            await layer.send(Call("GET", "/y"))
            await layer.send(Call("GET", "/y"))

    asyncio.run(inside())
    assert len(below.calls) == 4


def test_a_write_clears_every_cached_read_even_when_it_failed():
    parsed = Parsed()
    below = Below(ok(), UpstreamUnavailable("down", provider="crm"), ok())
    layer = cache_over(below, parsed)
    run(layer.send(Call("GET", "/x")))
    error = run(layer.send(Call("POST", "/x", idempotent=False)))
    assert isinstance(error, UpstreamUnavailable)  # it may have been applied all the same
    assert parsed.cleared == 1
    run(layer.send(Call("GET", "/x")))
    assert len(below.calls) == 3  # the read was sent again


def test_without_a_store_every_read_is_sent():
    below = Below(ok(), ok())
    twice(ResponseCache(below), Call("GET", "/x"))
    assert len(below.calls) == 2

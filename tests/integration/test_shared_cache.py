"""Read caches of two replicas through one real Redis: entries shared with their TTL, a write
through one hides older entries from both, and Redis away means local caching, not failures."""

from __future__ import annotations

import logging

import pytest

from gateway.blocks import BlockCache
from gateway.cache import ReadCache
from gateway.errors import UpstreamRateLimited
from gateway.servers import RedisProcess
from gateway.shared import RedisState, SharedCache
from tests.unit.fake_time import FakeTime

pytestmark = pytest.mark.integration

SECRET = b"test-cursor-secret-kQ3vX8wZ"


class Replica:
    """One process's view: its own Redis connection and cache over the shared tenant."""

    def __init__(self, url: str, time: FakeTime, **options: float) -> None:
        self.state = RedisState(url, SECRET, clock=time, retry_after=5.0, timeout=5.0)
        self.shared = SharedCache(self.state, "tenant1", wall=time)
        self.cache: ReadCache[str] = ReadCache(
            "tenant1",
            ttl=options.get("ttl", 60.0),
            stale_ttl=options.get("stale_ttl", 0.0),
            stale_on=(UpstreamRateLimited,),
            maxsize=100,
            provider="p",
            timer=time,
            shared=self.shared,
            name="blocks",
        )
        self.fetches = 0

    async def read(self, key: str, value: str = "fresh") -> str:
        async def fetch() -> str:
            self.fetches += 1
            return value

        return await self.cache.get(key, fetch)


async def test_a_read_through_one_replica_is_a_hit_on_the_other(redis_server: RedisProcess):
    time = FakeTime()
    one, two = Replica(redis_server.url, time), Replica(redis_server.url, time)
    assert await one.read("k", "v1") == "v1"
    assert await two.read("k", "v2") == "v1"
    assert (one.fetches, two.fetches) == (1, 0)
    assert two.cache.counts == (1, 0, 0)
    # Kept in Redis for the TTL plus the stale window, named by tenant and cache.
    client = one.state.client()
    keys = await client.keys("crm-gateway:tenant1:blocks:*")
    assert len(keys) == 1
    assert 59_000 < await client.pttl(keys[0]) <= 60_000
    await one.state.close()
    await two.state.close()


async def test_an_entry_ages_by_when_it_was_stored_on_any_replica(redis_server: RedisProcess):
    time = FakeTime()
    one, two = Replica(redis_server.url, time), Replica(redis_server.url, time)
    await one.read("k", "old")
    time.now += 61  # past the TTL (Redis still holds it: the fake clock does not move Redis)
    assert await two.read("k", "new") == "new"
    assert two.fetches == 1
    await one.state.close()
    await two.state.close()


async def test_a_write_through_one_replica_is_seen_by_the_other(redis_server: RedisProcess):
    time = FakeTime()
    one, two = Replica(redis_server.url, time), Replica(redis_server.url, time)
    await one.read("k", "before")
    store: ReadCache[object] = ReadCache(
        "tenant1", ttl=60, maxsize=10, shared=one.shared, name="blocks"
    )
    blocks = BlockCache(store, ttl=60)
    blocks.links["hint"] = "learnt before the write"
    assert await one.read("k") == "before"  # the replica notes the current generation
    await two.shared.bump()  # replica 2 wrote
    assert await one.read("k", "after") == "after"
    assert one.fetches == 2
    assert "hint" not in blocks.links  # links learnt before another replica's write are dropped
    await one.state.close()
    await two.state.close()


async def test_a_value_read_before_a_write_is_not_served_stale(redis_server: RedisProcess):
    time = FakeTime()
    one, two = Replica(redis_server.url, time, stale_ttl=300), Replica(redis_server.url, time)
    await one.read("k", "before")
    time.now += 61

    async def spent() -> str:
        raise UpstreamRateLimited("budget spent", provider="p")

    await two.shared.bump()
    with pytest.raises(UpstreamRateLimited):  # after a write, the old value is never served
        await one.cache.get("k", spent)
    await one.state.close()
    await two.state.close()


async def test_stale_if_error_serves_what_another_replica_read(redis_server: RedisProcess):
    time = FakeTime()
    one, two = (
        Replica(redis_server.url, time, stale_ttl=300),
        Replica(redis_server.url, time, stale_ttl=300),
    )
    await one.read("k", "kept")
    time.now += 61

    async def spent() -> str:
        raise UpstreamRateLimited("budget spent", provider="p")

    assert await two.cache.get("k", spent) == "kept"
    assert two.cache.stale == 1
    await one.state.close()
    await two.state.close()


async def test_redis_away_means_local_caching_then_back_to_redis(
    redis_server: RedisProcess, caplog: pytest.LogCaptureFixture
):
    time = FakeTime()
    one, two = Replica(redis_server.url, time), Replica(redis_server.url, time)
    await one.read("shared", "in redis")
    redis_server.stop()
    with caplog.at_level(logging.INFO, logger="gateway"):
        assert await one.read("k", "local") == "local"
        assert one.state.status == "degraded"
        assert await one.read("k", "again") == "local"  # the local store serves meanwhile
        await two.shared.bump()  # a write while Redis is away: announced when it returns
        assert one.fetches == 2
        redis_server.start()  # empty: nothing was persisted
        assert await one.read("k2", "still local") == "still local"  # before its retry time
        assert one.state.status == "degraded"
        time.now += 5
        await two.read("probe")  # replica 2 is back first, and announces its write
        assert await two.state.client().get(two.shared.generation_key) == b"1"
        assert await one.read("k3", "from redis") == "from redis"
        assert one.state.status == "ok"
        assert await two.read("k3") == "from redis"  # shared again
    downs = [r for r in caplog.records if "unreachable" in r.getMessage()]
    backs = [r for r in caplog.records if "is back" in r.getMessage()]
    assert len(downs) == 2  # once per replica that noticed, not once per call
    assert len(backs) == 2
    assert str(redis_server.port) not in caplog.text
    await one.state.close()
    await two.state.close()

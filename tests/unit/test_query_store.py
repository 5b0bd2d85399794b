"""The APQ store: bounded in entries and bytes, and never fooled by what Redis holds."""

from __future__ import annotations

from typing import Any, cast

from gateway.manifest import sha256_hex
from gateway.query_store import REDIS_TTL, QueryStore
from gateway.shared import RedisDown


def text(n: int, size: int = 100) -> str:
    head = f"query Q{n} {{ __typename }}"
    return head + "#" * (size - len(head))


def store(**bounds: Any) -> QueryStore:
    return QueryStore(**{"max_entries": 10, "max_bytes": 10_000, "max_document": 5_000, **bounds})


async def put(target: QueryStore, n: int, size: int = 100) -> str:
    query = text(n, size)
    await target.put(sha256_hex(query), query)
    return query


async def test_a_registered_text_comes_back_by_its_hash_only() -> None:
    target = store()
    query = await put(target, 1)
    assert await target.get(sha256_hex(query)) == query
    assert await target.get(sha256_hex(query + " ")) is None


async def test_the_least_recently_used_texts_go_past_the_entry_bound() -> None:
    target = store(max_entries=3)
    first, second = await put(target, 1), await put(target, 2)
    await put(target, 3)
    assert await target.get(sha256_hex(first)) == first  # used: the most recent now
    await put(target, 4)
    assert len(target) == 3
    assert await target.get(sha256_hex(second)) is None
    assert await target.get(sha256_hex(first)) == first


async def test_the_texts_held_stay_within_the_byte_bound() -> None:
    target = store(max_entries=1000, max_bytes=1000)
    for n in range(30):
        await put(target, n, size=100)
    assert target.size <= 1000
    assert len(target) == 10


async def test_a_text_over_the_request_size_is_never_stored() -> None:
    target = store(max_document=500)
    query = await put(target, 1, size=501)
    assert len(target) == 0
    assert await target.get(sha256_hex(query)) is None
    assert await target.get(sha256_hex(await put(target, 2, size=500))) is not None


class FakeRedis:
    """Redis as `RedisState.run` hands it to a call: get and set."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}
        self.expiry: dict[str, int] = {}
        self.down = False

    async def run(self, call: Any) -> Any:
        if self.down:
            raise RedisDown
        return await call(self)

    async def get(self, key: str) -> bytes | None:
        return self.values.get(key)

    async def set(self, key: str, value: bytes, ex: int) -> None:
        self.values[key], self.expiry[key] = value, ex


def replicas(redis: FakeRedis) -> tuple[QueryStore, QueryStore]:
    return store(redis=cast(Any, redis)), store(redis=cast(Any, redis))


async def test_replicas_share_registrations_through_redis_for_a_day() -> None:
    redis = FakeRedis()
    one, two = replicas(redis)
    query = await put(one, 1)
    key = f"crm-gateway:apq:{sha256_hex(query)}"
    assert redis.values[key] == query.encode()
    assert redis.expiry[key] == REDIS_TTL
    assert await two.get(sha256_hex(query)) == query


async def test_a_text_in_redis_under_another_texts_hash_is_never_given() -> None:
    redis = FakeRedis()
    one, two = replicas(redis)
    honest = await put(one, 1)
    digest = sha256_hex(honest)
    redis.values[f"crm-gateway:apq:{digest}"] = b'mutation { deleteContact(input: {id: "x"}) }'
    assert await two.get(digest) is None
    redis.values[f"crm-gateway:apq:{digest}"] = b"\xff\xfe"
    assert await two.get(digest) is None
    assert await one.get(digest) == honest  # its own copy, checked when it was stored


async def test_without_redis_each_replica_keeps_its_own() -> None:
    redis = FakeRedis()
    redis.down = True
    one, two = replicas(redis)
    query = await put(one, 1)
    assert await one.get(sha256_hex(query)) == query
    assert await two.get(sha256_hex(query)) is None

"""Changes cross replicas through one real Redis: each replica's listeners hear the others'
changes once, publishing never waits for an absent Redis, and the channel comes back."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime

import pytest

from gateway.live.changes import ChangeKind, ChangeSource, RecordChange
from gateway.live.hub import ChangeHub
from gateway.records import Entity
from gateway.servers import RedisProcess
from gateway.shared import RedisState
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

SECRET = b"test-cursor-secret"


def change(record_id: str, source: ChangeSource = ChangeSource.WEBHOOK) -> RecordChange:
    at = datetime(2026, 12, 8, tzinfo=UTC)
    return RecordChange("attio", Entity.CONTACT, record_id, ChangeKind.UPDATED, source, at)


@asynccontextmanager
async def replicas(url: str, secret: bytes = SECRET) -> AsyncIterator[list[ChangeHub]]:
    async with AsyncExitStack() as stack:
        hubs = []
        for _ in range(2):
            state = RedisState(url, secret, timeout=2.0, retry_after=0.2)
            stack.push_async_callback(state.close)
            hub = ChangeHub()
            await stack.enter_async_context(hub.fanned_out(state))
            hubs.append(hub)
        yield hubs


async def heard(queue: asyncio.Queue[RecordChange]) -> RecordChange:
    async with asyncio.timeout(10):
        return await queue.get()


async def test_a_change_on_one_replica_reaches_the_other_once(redis_server: RedisProcess):
    async with (
        replicas(redis_server.url) as (one, two),
        one.listen() as mine,
        two.listen() as theirs,
    ):
        await one.publish(change("1"))
        assert (await heard(theirs)).id == "1"
        assert (await heard(mine)).id == "1"
        two.written(change("2", ChangeSource.GATEWAY))
        assert (await heard(mine)).source is ChangeSource.GATEWAY
        await asyncio.sleep(0.2)  # whatever came back of its own would be here by now
        assert mine.empty()
        assert (await heard(theirs)).id == "2"
        assert theirs.empty()


async def test_an_echo_on_another_replica_is_not_heard_twice(redis_server: RedisProcess):
    async with replicas(redis_server.url) as (one, two), two.listen() as queue:
        one.written(change("1", ChangeSource.GATEWAY))
        assert (await heard(queue)).source is ChangeSource.GATEWAY
        await two.publish(change("1"))  # its webhook arrives at the other replica
        await one.publish(change("2"))
        assert (await heard(queue)).id == "2"


async def test_a_change_signed_with_another_secret_is_dropped(redis_server: RedisProcess):
    async with (
        replicas(redis_server.url) as (one, _),
        replicas(redis_server.url, b"x") as (other, _),
        one.listen() as queue,
    ):
        await other.publish(change("forged"))
        await asyncio.sleep(0.2)  # what another replica sends arrives well within this
        assert queue.empty()


async def test_publishing_never_waits_for_redis_and_the_channel_comes_back(
    redis_server: RedisProcess,
):
    async with replicas(redis_server.url) as (one, two):
        fanout = two._fanout
        assert fanout is not None
        async with one.listen() as mine, two.listen() as theirs:
            redis_server.stop()
            await asyncio.to_thread(
                wait_until, lambda: not fanout.subscribed.is_set(), what="the channel lost"
            )
            start = time.monotonic()
            for n in range(5):
                await one.publish(change(f"away-{n}"))
            assert time.monotonic() - start < 0.1
            assert [(await heard(mine)).id for _ in range(5)] == [f"away-{n}" for n in range(5)]
            await asyncio.to_thread(redis_server.start)
            async with asyncio.timeout(20):
                await fanout.subscribed.wait()
            # The sender finds Redis back at its next try (every `retry_after`); until then
            # what it sends is dropped, never waited for.
            for _ in range(40):
                await one.publish(change("back"))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.5):
                        while (await theirs.get()).id != "back":
                            pass
                        return
            raise AssertionError("the other replica never heard a change again")

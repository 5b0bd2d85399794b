"""Each provider's rate windows held in a real Redis, so that replicas together keep to them;
with Redis away each replica keeps to its share (the limit over `replicas_hint`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import suppress

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.datasources import source_class
from gateway.demo import demo_provider
from gateway.errors import NoRateLimitSlot, UpstreamRateLimited
from gateway.limiter import RateLimiter, Share, Window, sharing
from gateway.servers import RedisProcess, ServerThread
from gateway.shared import RedisDown, RedisState
from gateway.shared_budget import SharedBudget
from gateway.upstream import Replicas, Upstream, build_upstream, open_client
from tests.support.kinds import RATE_LIMITED_KINDS

pytestmark = pytest.mark.integration

SECRET = b"test-cursor-secret-kQ3vX8wZ"
# Seconds a Redis call may take here: a busy machine must not look like Redis away.
REDIS_TIMEOUT = 5.0
LIMIT, SECONDS = 5, 2.0
SPAN = Window(LIMIT, SECONDS).span


class FakeTime:
    """One clock for both replicas and Redis's windows; waiting moves it on."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisProcess]:
    with RedisProcess() as server:
        yield server


@pytest.fixture(scope="module")
def provider() -> Iterator[dict[str, int]]:
    """A real HTTP server that answers every request, and counts them."""
    counts = {"requests": 0}

    async def answer(_: Request) -> JSONResponse:
        counts["requests"] += 1
        return JSONResponse({})

    app = Starlette(routes=[Route("/{path:path}", answer)])
    with ServerThread(app) as server:
        counts["url"] = server.url  # type: ignore[assignment]
        yield counts


def most_in_a_window(moments: list[float], span: float) -> int:
    """The most of `moments` inside any window of `span` seconds (as the provider counts)."""
    moments = sorted(moments)
    return max(
        (sum(1 for m in moments[i:] if m < start + span) for i, start in enumerate(moments)),
        default=0,
    )


@settings(
    max_examples=40,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.sampled_from([0, 0, 10, 300, 900, 2500])), max_size=40)
)
def test_two_replicas_never_take_more_than_the_limit(
    redis: RedisProcess, steps: list[tuple[int, int]]
) -> None:
    async def run() -> None:
        time = FakeTime()
        tenant = uuid.uuid4().hex  # a fresh budget per example
        states = [RedisState(redis.url, SECRET, timeout=REDIS_TIMEOUT) for _ in range(2)]
        budgets = [SharedBudget(s, tenant, ((LIMIT, SECONDS),), clock=time) for s in states]
        granted: list[float] = []
        try:
            for replica, advance_ms in steps:
                time.now += advance_ms / 1000
                wait = await budgets[replica].reserve()
                if wait == 0:
                    granted.append(time.now)
                    continue
                # Refused only when the window is full, and told how long until it is not.
                recent = [t for t in granted if round((time.now - t) * 1000) < SECONDS * 1000]
                assert len(recent) == LIMIT
                assert wait == pytest.approx(recent[0] + SECONDS - time.now, abs=0.002)
                time.now += wait
                assert await budgets[1 - replica].reserve() == 0
                granted.append(time.now)
            assert most_in_a_window(granted, SECONDS - 0.001) <= LIMIT
        finally:
            for state in states:
                await state.close()

    asyncio.run(run())


def upstream(
    url: str,
    state: RedisState,
    tenant: str,
    time: FakeTime,
    limit: int = LIMIT,
    seconds: float = SECONDS,
    deadline: float = 30.0,
) -> Upstream:
    """A replica's upstream as a data source makes it (`replicas_hint` 2), on `time`."""
    settings = demo_provider("revyops", url).model_copy(
        update={"rate_limits": [(limit, seconds)], "request_deadline": deadline}
    )
    # Real seconds for the loopback answer (httpx's 5 s default was once too few for a
    # machine busy with the whole suite); the budget's time is `time`'s.
    client = httpx.AsyncClient(base_url=url, timeout=30)
    return build_upstream(
        settings,
        client,
        lambda _: None,
        replicas=Replicas(state, tenant, hint=2, clock=time),
        clock=time,
        sleep=time.sleep,
    )


async def test_two_upstreams_send_no_more_than_the_limit_together(
    redis: RedisProcess, provider: dict[str, int]
) -> None:
    time = FakeTime()
    tenant = uuid.uuid4().hex
    states = [RedisState(redis.url, SECRET, clock=time, timeout=REDIS_TIMEOUT) for _ in range(2)]
    replicas = [upstream(str(provider["url"]), s, tenant, time) for s in states]
    sent: list[float] = []
    try:
        for i in range(4 * LIMIT):
            # Each alone would send all its requests at once: its own limiter allows it.
            response = await replicas[i % 2].request("GET", f"/x{i}", cached=False)
            assert response.status_code == 200
            sent.append(time.now)
    finally:
        for up, state in zip(replicas, states, strict=True):
            await up.client.aclose()
            await state.close()
    assert most_in_a_window(sent, SPAN - 0.001) == LIMIT
    assert sent[-1] - sent[0] >= 3 * SPAN - 0.01  # four full windows, one after the other


async def test_without_redis_each_replica_keeps_to_its_share(
    redis_server: RedisProcess, provider: dict[str, int]
) -> None:
    url = str(provider["url"])
    # A long window: the requests below all fall in it however slow this machine is.
    settings = demo_provider("revyops", url).model_copy(
        update={"rate_limits": [(4, 60.0)], "request_deadline": 1.0, "cache_ttl": 0}
    )
    cls = source_class("revyops")

    async def send(replicas_hint: int, expected: int) -> None:
        state = RedisState(redis_server.url, SECRET, timeout=REDIS_TIMEOUT)
        async with open_client(settings, cls.client_auth(settings)) as client:
            source = cls(settings, client, redis=state, replicas_hint=replicas_hint)
            before = provider["requests"]
            for i in range(expected):
                await source.upstream.request("GET", f"/share{i}", cached=False)
            with pytest.raises(NoRateLimitSlot):
                await source.upstream.request("GET", "/one-more", cached=False)
            assert provider["requests"] - before == expected
        await state.close()

    # Redis up: this replica may take the whole budget (no other spends it here).
    await send(replicas_hint=2, expected=4)
    redis_server.stop()
    await send(replicas_hint=2, expected=2)  # 4 / 2
    await send(replicas_hint=4, expected=1)


@pytest.mark.parametrize("kind", RATE_LIMITED_KINDS)
async def test_every_provider_keeps_to_its_share_while_redis_is_away(kind: str) -> None:
    settings = demo_provider(kind, "http://127.0.0.1:9")
    cls = source_class(kind)
    state = RedisState("redis://127.0.0.1:9/0", SECRET)
    async with open_client(settings, cls.client_auth(settings)) as client:
        source = cls(settings, client, redis=state, replicas_hint=3)
    limiter = source.upstream.limiter
    assert source.upstream.shared_budget is not None
    assert limiter.windows == cls.rate_limits
    state.reachable = False
    assert [w.requests for w in limiter.windows] == [w.requests // 3 for w in cls.rate_limits]


def share_of(limit: int, weights: dict[str, int], client: str) -> float:
    return limit * weights[client] / sum(weights.values())


@settings(
    max_examples=30,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    limit=st.integers(3, 9),
    weights=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    start=st.integers(0, 3000),
    gaps=st.lists(st.sampled_from([0, 0, 0, 7, 40, 250]), min_size=1, max_size=20),
)
def test_two_clients_on_two_replicas_share_by_weight(
    redis: RedisProcess,
    limit: int,
    weights: tuple[int, int],
    start: int,
    gaps: list[int],
) -> None:
    """Client a asks through replica 1 and b through replica 2, each as often as it may
    (after a grant, a short gap); b starts late, after a took what it could alone. In any
    window once both ask, neither has more than its weighted share (plus the one request a
    share rounds up to), and in a full window neither less than its share minus one."""
    span = int(SECONDS * 1000)
    shares = {"a": weights[0], "b": weights[1]}

    async def run() -> list[tuple[int, str]]:
        ms = [1_000_000_000]
        tenant = uuid.uuid4().hex
        states = [RedisState(redis.url, SECRET, timeout=REDIS_TIMEOUT) for _ in range(2)]
        budgets = {
            client: SharedBudget(state, tenant, ((limit, SECONDS),), clock=lambda: ms[0] / 1000)
            for client, state in zip("ab", states, strict=True)
        }
        asks = {"a": ms[0], "b": ms[0] + start}
        granted: list[tuple[int, str]] = []
        try:
            for step in range(12 * limit):
                client = min(asks, key=lambda c: (asks[c], c))
                ms[0] = asks[client]
                with sharing(Share(client, shares[client])):
                    wait = await budgets[client].reserve()
                if wait == 0:
                    granted.append((ms[0], client))
                    asks[client] = ms[0] + gaps[step % len(gaps)]
                else:
                    asks[client] = ms[0] + round(wait * 1000)
        finally:
            for state in states:
                await state.close()
        return granted

    granted = asyncio.run(run())
    both = 1_000_000_000 + start  # from here b asks too
    for moment, _ in granted:
        if moment - span < both:
            continue
        recent = [c for t, c in granted if moment - span < t <= moment]
        assert len(recent) <= limit
        for client in "ab":
            mine = recent.count(client)
            share = share_of(limit, shares, client)
            assert mine < share + 1, (client, mine, share, recent)
            if len(recent) == limit:
                assert mine > share - 1, (client, mine, share, recent)
    # Even a share under one request: the flood yields to b once b waits.
    assert "b" in {c for _, c in granted}


async def test_a_pause_one_replica_set_holds_the_other(redis: RedisProcess) -> None:
    time = FakeTime()
    tenant = uuid.uuid4().hex
    states = [RedisState(redis.url, SECRET, timeout=REDIS_TIMEOUT) for _ in range(2)]
    one, two = (SharedBudget(s, tenant, ((LIMIT, SECONDS),), clock=time) for s in states)
    try:
        assert await two.reserve() == 0
        await one.pause(1.5)
        await one.pause(0.5)  # a shorter pause does not cut a longer one short
        assert await two.reserve() == pytest.approx(1.5, abs=0.002)
        time.now += 1.0
        assert await one.reserve() == pytest.approx(0.5, abs=0.002)
        time.now += 0.5
        assert await two.reserve() == 0
    finally:
        for state in states:
            await state.close()


async def test_the_reserve_holds_across_replicas(redis: RedisProcess) -> None:
    """A client that took 8 of 10 through one replica is at its cap; a newcomer asking
    through the other takes the 2 kept back, at once; the anonymous client has no cap."""
    time = FakeTime()
    tenant = uuid.uuid4().hex
    states = [RedisState(redis.url, SECRET, timeout=REDIS_TIMEOUT) for _ in range(2)]
    limiter = RateLimiter((Window(10, 60.0),), reserve=0.2)
    one, two = (SharedBudget(s, tenant, ((10, 60.0),), cap=limiter.cap, clock=time) for s in states)
    try:
        with sharing(Share("flood", 1.0)):
            for _ in range(8):
                assert await one.take() == (0, False)
            wait, by_share = await one.take()
            assert by_share  # its own cap, not the budget: CLIENT_RATE_LIMITED
            assert wait == pytest.approx(60.0, abs=0.01)  # when its first grant leaves
        with sharing(Share("newcomer", 1.0)):
            assert await two.take() == (0, False)
            assert await two.take() == (0, False)
            wait, by_share = await two.take()
            assert wait > 0
            assert not by_share  # the window is full: the budget's refusal
        other = SharedBudget(states[0], uuid.uuid4().hex, ((10, 60.0),), cap=limiter.cap)
        for _ in range(10):  # an open gateway's one client
            assert await other.take() == (0, False)
    finally:
        for state in states:
            await state.close()


@pytest.fixture(scope="module")
def throttling() -> Iterator[dict[str, int]]:
    """A provider that answers 429 (Retry-After: 5) on /spent, 200 elsewhere; counts them."""
    counts = {"requests": 0}

    async def answer(request: Request) -> JSONResponse:
        counts["requests"] += 1
        if request.url.path == "/spent":
            return JSONResponse({}, status_code=429, headers={"Retry-After": "5"})
        return JSONResponse({})

    app = Starlette(routes=[Route("/{path:path}", answer)])
    with ServerThread(app) as server:
        counts["url"] = server.url  # type: ignore[assignment]
        yield counts


async def test_a_429_one_replica_met_pauses_the_other(
    redis: RedisProcess, throttling: dict[str, int]
) -> None:
    time = FakeTime()
    tenant = uuid.uuid4().hex
    states = [RedisState(redis.url, SECRET, clock=time, timeout=REDIS_TIMEOUT) for _ in range(2)]
    # A deadline shorter than the Retry-After: nobody waits it out here.
    one, two = (upstream(str(throttling["url"]), s, tenant, time, deadline=3.0) for s in states)
    try:
        with pytest.raises(UpstreamRateLimited):
            await one.request("GET", "/spent", cached=False)
        before = throttling["requests"]
        with pytest.raises(NoRateLimitSlot):
            await two.request("GET", "/fine", cached=False)
        assert throttling["requests"] == before  # replica 2 sent nothing while paused
        time.now += 5.0
        assert (await two.request("GET", "/fine", cached=False)).status_code == 200
    finally:
        for up, state in zip((one, two), states, strict=True):
            await up.client.aclose()
            await state.close()


async def test_grants_made_while_redis_was_away_count_when_it_is_back(
    redis_server: RedisProcess,
) -> None:
    time = FakeTime()
    tenant = uuid.uuid4().hex
    states = [
        RedisState(redis_server.url, SECRET, clock=time, timeout=REDIS_TIMEOUT) for _ in range(2)
    ]
    one, two = (SharedBudget(s, tenant, ((LIMIT, 60.0),), clock=time) for s in states)
    try:
        assert await one.reserve() == 0
        redis_server.stop()
        for _ in range(2):  # sent on replica 1's local share
            with pytest.raises(RedisDown):
                await one.reserve()
            time.now += 1.0
        redis_server.start()
        time.now += states[0].retry_after
        # A new Redis (this one keeps nothing on disk): replica 1 tells it of its three.
        assert await one.reserve() == 0
        assert await two.reserve() == 0
        assert await two.reserve() > 0  # 1 + 2 + 1 + 1: the window is full
    finally:
        for state in states:
            await state.close()


async def send_all(up: Upstream, sent: list[float], time: FakeTime, most: int = 1000) -> int:
    """Send through `up` until its limiter refuses (or `most` went); how many went."""
    for count in range(most):
        try:
            await up.request("GET", f"/n{len(sent)}", cached=False)
        except NoRateLimitSlot:
            return count
        sent.append(time.now)
    return most


async def test_replicas_leave_each_other_their_grants_across_an_outage(
    redis_server: RedisProcess, provider: dict[str, int]
) -> None:
    """Replica 1 used 7 of 10 before Redis went away, more than its share (5): replica 2
    takes only what is left (3 in all, not its share), nor more when a new Redis is back
    before replica 1 has told it of its 7."""
    time = FakeTime()
    tenant = uuid.uuid4().hex
    states = [
        RedisState(redis_server.url, SECRET, clock=time, timeout=REDIS_TIMEOUT) for _ in range(2)
    ]
    url = str(provider["url"])
    one, two = (upstream(url, s, tenant, time, limit=10, seconds=60.0) for s in states)
    sent: list[float] = []
    try:
        assert await send_all(one, sent, time, 7) == 7
        time.now += 10.0
        assert await send_all(two, sent, time, 1) == 1  # and hears that the others hold 7
        redis_server.stop()
        assert await send_all(one, sent, time) == 0  # its 7 are over its share
        assert await send_all(two, sent, time) == 2  # 1 + 2 + 7 = 10
        redis_server.start()  # a new Redis: it knows of no grant
        time.now += states[1].retry_after
        assert await send_all(two, sent, time) == 0  # it has not heard of replica 1's 7 yet
        time.now += 2 * states[1].retry_after
        await states[0].run(lambda redis: redis.ping())  # replica 1 finds Redis back
        assert await send_all(two, sent, time) == 0  # its 3 and replica 1's 7, told meanwhile
        time.now += 2 * states[0].retry_after
        assert await send_all(one, sent, time) == 0
        time.now = sent[0] + Window(10, 60.0).span  # replica 1's 7 leave the window
        before = len(sent)
        assert await send_all(one, sent, time, 4) + await send_all(two, sent, time, 3) == 7
        assert sent[before:] == [time.now] * 7  # at once: Redis counts only what went
        assert await send_all(one, sent, time) > 0  # after a wait
        assert most_in_a_window(sent, 60.0) == 10
    finally:
        for up, state in zip((one, two), states, strict=True):
            await up.client.aclose()
            await state.close()


async def send_one(up: Upstream, sent: list[float], time: FakeTime) -> None:
    with suppress(NoRateLimitSlot):
        await up.request("GET", f"/n{len(sent)}", cached=False)
        sent.append(time.now)


STEPS = st.lists(
    st.tuples(st.integers(0, 1), st.sampled_from([0.0, 0.0, 0.0, 1.0, 4.0, 15.0, 40.0])),
    max_size=12,
)


@settings(
    max_examples=15,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(before=STEPS, during=STEPS, after=STEPS)
# Redis restarted empty and found back by a cache read, not a grant: the grants made before
# it went away were told to it only by a replica that had failed a grant meanwhile.
@example(
    before=[(0, 40.0), (0, 0.0), (0, 0.0), (1, 0.0)],
    during=[],
    after=[(0, 0.0), (1, 15.0), (0, 0.0), (0, 0.0)],
)
# Redis restarted while replica 1 alone saw it go: replica 0's client reconnected silently
# (redis-py does), so it took the new, empty Redis for the old one and spent the whole window.
@example(before=[], during=[(1, 0.0)], after=[(0, 0.0)] * 6)
def test_two_replicas_keep_to_the_limit_across_an_outage(
    redis_server: RedisProcess,
    provider: dict[str, int],
    before: list[tuple[int, float]],
    during: list[tuple[int, float]],
    after: list[tuple[int, float]],
) -> None:
    """Any split of the grants before Redis goes away, any requests while it is away and
    once a new one is back (each step: a replica asks, then time passes): the two never
    send more than the limit in any window.

    Two things hold here as they do under load, where every request asks Redis (for its
    slot, or for the cache): what the others hold when Redis goes away is what each
    replica last heard (grants taken after that it cannot know of), and once Redis is back
    each replica calls it soon (and so finds out, and tells it of its grants)."""
    limit, seconds = 6, 60.0

    async def run() -> list[float]:
        time = FakeTime()
        tenant = uuid.uuid4().hex
        states = [
            RedisState(redis_server.url, SECRET, clock=time, timeout=REDIS_TIMEOUT)
            for _ in range(2)
        ]
        url = str(provider["url"])
        replicas = [upstream(url, s, tenant, time, limit, seconds) for s in states]
        sent: list[float] = []
        down = False
        try:
            for phase, steps in enumerate((before, during, after)):
                for replica, advance in steps:
                    if phase == 2:  # both read their caches in Redis
                        for state in states:
                            with suppress(RedisDown):
                                await state.run(lambda redis: redis.ping())
                    await send_one(replicas[replica], sent, time)
                    time.now += advance
                if phase == 0:
                    for up in replicas:  # each hears what the other holds (taking a slot)
                        assert up.shared_budget is not None
                        await up.shared_budget.take()
                        up.limiter.elsewhere(up.shared_budget.others)
                    redis_server.stop()
                    down = True
                elif phase == 1:
                    redis_server.start()
                    down = False
        finally:
            if down:
                redis_server.start()
            for up, state in zip(replicas, states, strict=True):
                await up.client.aclose()
                await state.close()
        return sent

    sent = asyncio.run(run())
    assert most_in_a_window(sent, seconds) <= limit

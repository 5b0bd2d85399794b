"""The rate limiter's fair shares among clients, and the reserve it keeps for newcomers,
on a fake clock."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.limiter import RateLimiter, Refused, Share, Slot, Window, _padded, sharing
from tests.unit.fake_time import SteppedTime
from tests.unit.test_limiter import START, limiter_on, most_in_any_window

# --- the limiter's fair shares among clients ------------------------------------------------


@dataclass
class Sent:
    client: str
    called: float
    granted: float


def flood(
    limiter: RateLimiter,
    time: SteppedTime,
    clients: dict[str, tuple[float, int]],
    until: float,
    duration: float = 0.0,
) -> list[Sent]:
    """Each client (name: weight, workers) keeps `workers` requests waiting for the limiter
    until `until`, each in flight for `duration` once granted."""
    sent: list[Sent] = []

    async def worker(name: str, weight: float) -> None:
        with sharing(Share(name, weight)):
            while time.now < until:
                called = time.now
                slot = await limiter.acquire(math.inf)
                assert slot is not None
                sent.append(Sent(name, called, time.now))
                await time.sleep(duration)
                limiter.done(slot)

    async def run() -> None:
        tasks = [
            asyncio.create_task(worker(name, weight))
            for name, (weight, workers) in clients.items()
            for _ in range(workers)
        ]
        await time.run_out()
        await asyncio.gather(*tasks)

    asyncio.run(run())
    return sent


@settings(max_examples=15)
@example(limit=24, seconds=1.0, light=1.7840398407366225, ratio=5.0, workers=(3, 1))  # 4.0000001
@given(
    limit=st.integers(8, 24),
    seconds=st.floats(0.5, 60, allow_nan=False),
    light=st.floats(0.5, 3, allow_nan=False),
    ratio=st.sampled_from([1.0, 2.0, 3.0, 5.0]),
    workers=st.tuples(st.integers(1, 4), st.integers(1, 4)),
)
def test_clients_flooding_share_the_budget_by_weight(limit, seconds, light, ratio, workers):
    """Two clients always waiting, weights w and r·w: the grants split about 1 : r, each
    window's limit still holding."""
    time = SteppedTime(START)
    window = Window(limit, seconds)
    until = START + 8 * _padded(seconds)
    sent = flood(
        limiter_on(time, (window,)),
        time,
        {"a": (light, workers[0]), "b": (light * ratio, workers[1])},
        until=until,
    )
    grants = sorted(s.granted for s in sent)
    assert most_in_any_window(grants, seconds) <= limit
    # Whatever is still waiting at `until` is granted then, both clients no longer flooding.
    sent = [s for s in sent if s.granted < until]
    a = sum(1 for s in sent if s.client == "a")
    windows = len(sent) / limit  # about how many windows' worth were granted
    # The shares are whole requests: a window may give a client one more or one fewer.
    assert abs(a - len(sent) / (1 + ratio)) <= windows + 2


def test_weights_one_and_three_get_one_grant_in_four():
    time = SteppedTime(START)
    sent = flood(
        limiter_on(time, (Window(20, 1.0),)),
        time,
        {"a": (1.0, 8), "b": (3.0, 8)},
        until=START + 50 * _padded(1.0),
    )
    a = sum(1 for s in sent if s.client == "a")
    assert len(sent) >= 50 * 20
    assert a / len(sent) == pytest.approx(0.25, abs=0.01)


def test_an_idle_clients_share_is_borrowed():
    """Alone, a client takes each whole window even though another has a share; once that
    one is idle again (nothing of its own left in the window), the whole budget is back."""
    time = SteppedTime(START)
    limiter = limiter_on(time, (Window(10, 1.0),))
    span = _padded(1.0)
    sent = flood(limiter, time, {"a": (1.0, 4)}, until=START + 5 * span)
    assert len(sent) >= 5 * 10
    assert most_in_any_window([s.granted for s in sent], 1.0) == 10

    async def one_of_b() -> None:
        with sharing(Share("b", 1.0)):
            slot = await limiter.acquire(math.inf)
            assert slot is not None
            limiter.done(slot)

    time2 = SteppedTime(START)
    limiter = limiter_on(time2, (Window(10, 1.0),))
    asyncio.run(one_of_b())  # b is active for one window...
    sent = flood(limiter, time2, {"a": (1.0, 4)}, until=START + 4 * span)
    first = [s.granted for s in sent if s.granted < START + span]
    assert len(first) == 5 - 1 + 1  # ...where a keeps to its half: 5 (b used 1 of its 5)
    later = [s.granted for s in sent if s.granted >= START + span]
    assert most_in_any_window(later, 1.0) == 10  # then b is idle: a borrows its share


light_strategy = st.lists(
    st.tuples(st.floats(0.05, 0.9, allow_nan=False), st.floats(0, 0.2, allow_nan=False)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=25)
@given(
    limit=st.integers(2, 20),
    seconds=st.floats(0.5, 60, allow_nan=False),
    weights=st.tuples(st.floats(0.5, 5, allow_nan=False), st.floats(0.5, 5, allow_nan=False)),
    workers=st.integers(1, 8),
    requests=light_strategy,
    late=st.booleans(),
)
def test_a_light_client_never_waits_behind_a_flooding_one(
    limit, seconds, weights, workers, requests, late
):
    """Client b sends single requests (one at a time, gaps shorter than the window) while
    a floods: b never waits longer than for the next slot that frees; and while b has been
    active since before the flood and stays below its share, it never waits at all.
    (`late`: b first comes once a has borrowed the whole window.)"""
    time = SteppedTime(START)
    window = Window(limit, seconds)
    span = _padded(seconds)
    limiter = limiter_on(time, (window,))
    share_b = limit * weights[1] / sum(weights)
    light: list[Sent] = []
    start = START + (span / 2 if late else 0.0)
    done_flooding = START + (len(requests) + 2) * span

    async def client_b() -> None:
        with sharing(Share("b", weights[1])):
            if late:
                await time.sleep(start - START)
            for gap, duration in requests:
                called = time.now
                slot = await limiter.acquire(math.inf)
                assert slot is not None
                light.append(Sent("b", called, time.now))
                await time.sleep(duration * span)
                limiter.done(slot)
                await time.sleep(gap * span)

    async def client_a() -> None:
        with sharing(Share("a", weights[0])):
            while time.now < done_flooding:
                slot = await limiter.acquire(math.inf)
                assert slot is not None
                heavy.append(time.now)
                limiter.done(slot)

    heavy: list[float] = []

    async def run() -> None:
        tasks = [asyncio.create_task(client_b())]
        await time.settle()
        tasks += [asyncio.create_task(client_a()) for _ in range(workers)]
        await time.run_out()
        await asyncio.gather(*tasks)

    asyncio.run(run())
    assert most_in_any_window(sorted(heavy + [s.granted for s in light]), seconds) <= limit
    # Once its previous request has left the window, b is below its share: it waits at
    # most for the next slot that frees (a share below one request a window means a wait
    # for b's own slot to leave first).
    free_from = START
    for sent, (_, duration) in zip(light, requests, strict=True):
        assert sent.granted <= max(sent.called, free_from) + span + 1e-6
        free_from = sent.granted + duration * span + span
    if late:
        return
    # Each of b's requests would count from its call until a window after it finished. While
    # b never has more counting than the whole requests of its share, a keeps to its own
    # (its whole requests at most, one more when its share is a fraction), so there is
    # always room for b, which never waits.
    held = []
    for sent, (_, duration) in zip(light, requests, strict=True):
        held += [(sent.called, 1), (sent.called + duration * span + span, -1)]
    most, count = 0, 0
    for _, step in sorted(held, key=lambda h: (h[0], h[1])):
        count += step
        most = max(most, count)
    if most <= math.floor(share_b + 1e-9):
        assert all(s.granted == s.called for s in light)


def test_a_client_over_its_share_is_refused_for_its_share_with_a_retry_after():
    """a has used its half of the window while b is active: a's next request, which
    must go within a second, is refused as a's share (b's is still free); alone, the same
    refusal would be the provider's budget."""
    time = SteppedTime(START)
    limiter = limiter_on(time, (Window(4, 10.0),))
    span = _padded(10.0)

    async def take(client: str, deadline: float) -> Slot | Refused:
        with sharing(Share(client, 1.0)):
            outcome = await limiter.take(deadline)
            if isinstance(outcome, Slot):
                limiter.done(outcome)
            return outcome

    async def run() -> list[Slot | Refused]:
        return [
            await take("b", math.inf),
            await take("a", math.inf),
            await take("a", math.inf),
            await take("a", time.now + 1.0),  # a's share (2) is spent; b has 1 left
            await take("b", time.now + 1.0),  # b may still take its own
            await take("b", time.now + 1.0),  # the window is full: the budget's refusal
        ]

    outcomes = asyncio.run(run())
    assert [isinstance(o, Slot) for o in outcomes] == [True, True, True, False, True, False]
    refused_a, refused_b = outcomes[3], outcomes[5]
    assert isinstance(refused_a, Refused)
    assert isinstance(refused_b, Refused)
    assert refused_a.by_share
    assert refused_a.retry_after == pytest.approx(span)  # when a's first slot leaves
    assert not refused_b.by_share  # alone it would have had to wait just as long

    alone = SteppedTime(START)
    limiter = limiter_on(alone, (Window(1, 10.0),))
    assert isinstance(asyncio.run(take("", math.inf)), Slot)
    refused = asyncio.run(take("", alone.now + 1.0))
    assert isinstance(refused, Refused)
    assert not refused.by_share


# --- the reserve ----------------------------------------------------------------------------


@settings(max_examples=40)
# b is held by its own cap too: with half a window kept back, a and b each hold one of three.
@example(limit=3, seconds=1.0, reserve=0.5, workers=1, arrival=1.0, gaps=[0.0, 0.0])
@given(
    limit=st.integers(2, 30),
    seconds=st.floats(0.5, 60, allow_nan=False),
    reserve=st.floats(0.05, 0.5, allow_nan=False),
    workers=st.integers(1, 6),
    arrival=st.floats(0.5, 4, allow_nan=False),
    gaps=st.lists(st.floats(0, 0.3, allow_nan=False), min_size=1, max_size=8),
)
def test_a_newcomer_finds_the_reserve_free(limit, seconds, reserve, workers, arrival, gaps):
    """Client a floods alone, then b arrives at any moment (after a has had whole windows to
    itself) and asks now and then: a never holds more than its cap of a window, and b's
    first requests, as many as the reserve holds (and b's own cap allows), are each granted
    the moment they are asked for: b never waits for the next window because a used this
    one."""
    time = SteppedTime(START)
    window = Window(limit, seconds)
    span = _padded(seconds)
    limiter = RateLimiter((window,), reserve=reserve, clock=time, sleep=time.sleep)
    cap = limiter.cap(limit, "a")
    assert cap == max(1, math.floor((1 - reserve) * limit + 1e-9))
    kept = min(limit - cap, cap)  # what b may count on at once: the reserve, within its own cap
    heavy: list[float] = []
    light: list[Sent] = []
    start = START + arrival * span
    until = start + (len(gaps) + 2) * span

    async def client_a() -> None:
        with sharing(Share("a", 1.0)):
            while time.now < until:
                slot = await limiter.acquire(math.inf)
                assert slot is not None
                heavy.append(time.now)
                limiter.done(slot)

    async def client_b() -> None:
        await time.sleep(start - START)
        with sharing(Share("b", 1.0)):
            for gap in gaps[:kept]:
                called = time.now
                slot = await limiter.acquire(math.inf)
                assert slot is not None
                light.append(Sent("b", called, time.now))
                limiter.done(slot)
                await time.sleep(gap * span / max(1, kept))

    async def run() -> None:
        tasks = [asyncio.create_task(client_b())]
        tasks += [asyncio.create_task(client_a()) for _ in range(workers)]
        await time.run_out()
        await asyncio.gather(*tasks)

    asyncio.run(run())
    assert most_in_any_window(heavy, seconds) <= cap
    assert most_in_any_window(sorted(heavy + [s.granted for s in light]), seconds) <= limit
    assert len(light) == min(len(gaps), kept)
    assert all(s.granted == s.called for s in light), light


def test_the_anonymous_client_of_an_open_gateway_keeps_the_whole_window():
    """Nobody else can come to an open gateway: nothing is kept back from its one client."""
    time = SteppedTime(START)
    limiter = RateLimiter((Window(10, 1.0),), reserve=0.2, clock=time, sleep=time.sleep)
    assert limiter.cap(10, "") == 10
    assert limiter.cap(10, "etl") == 8
    assert limiter.cap(1, "etl") == 1  # a window of one keeps nothing back
    sent = flood(limiter, time, {"": (1.0, 4)}, until=START + 3 * _padded(1.0))
    assert most_in_any_window([s.granted for s in sent], 1.0) == 10


def test_a_client_held_by_its_cap_is_refused_for_its_share():
    """Alone at its cap, a client's refusal is its own limit, not the provider's budget."""
    time = SteppedTime(START)
    limiter = RateLimiter((Window(5, 10.0),), reserve=0.2, clock=time, sleep=time.sleep)

    async def run() -> list[Slot | Refused]:
        outcomes: list[Slot | Refused] = []
        with sharing(Share("a", 1.0)):
            for _ in range(5):
                outcome = await limiter.take(time.now + 1.0)
                if isinstance(outcome, Slot):
                    limiter.done(outcome)
                outcomes.append(outcome)
        return outcomes

    outcomes = asyncio.run(run())
    assert [isinstance(o, Slot) for o in outcomes] == [True] * 4 + [False]
    refused = outcomes[-1]
    assert isinstance(refused, Refused)
    assert refused.by_share
    assert refused.retry_after == pytest.approx(_padded(10.0))

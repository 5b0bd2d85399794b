"""The rate limiter on its own, on a fake clock: its windows and its queue (arrival
order, deadlines)."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.limiter import RateLimiter, Window, _padded
from tests.unit.fake_time import FakeTime, SteppedTime

# --- the limiter ----------------------------------------------------------------------------

# One request: when it reaches the gateway, how long it is in flight once granted, and where
# in that flight it reaches the provider (0: at once, 1: just before its answer comes back).
Request = tuple[float, float, float]


def simulate(
    limiter: RateLimiter, time: FakeTime, requests: list[Request], *, count_at_grant: bool = False
) -> tuple[list[float], list[float]]:
    """Send `requests` through `limiter` on fake time; their grant and provider arrival times.

    Requests queue for the limiter in arrival order, as they do behind its lock; each one
    finishes `duration` after its grant, possibly while later ones wait for a slot.
    `count_at_grant` makes a broken limiter that counts a slot from its grant (the bug).
    """
    grants: list[float] = []
    arrivals: list[float] = []

    async def run() -> None:
        for arrival, duration, reach in sorted(requests):
            time.advance_to(arrival)
            slot = await limiter.acquire(math.inf)
            assert slot is not None
            grants.append(time.now)
            arrivals.append(time.now + reach * duration)
            if count_at_grant:
                limiter.done(slot)
            else:
                time.at(time.now + duration, lambda slot=slot: limiter.done(slot))  # type: ignore[misc]
        time.advance(10**6)

    asyncio.run(run())
    return grants, sorted(arrivals)


def most_in_any_window(times: list[float], seconds: float) -> int:
    """The most of `times` (sorted) inside any half-open window [t, t + seconds)."""
    most, first = 0, 0
    for last, moment in enumerate(times):
        while moment - times[first] >= seconds:
            first += 1
        most = max(most, last - first + 1)
    return most


def limiter_on(
    time: FakeTime | SteppedTime, windows: tuple[Window, ...], enabled: bool = True
) -> RateLimiter:
    return RateLimiter(windows, enabled=enabled, clock=time, sleep=time.sleep)


requests_strategy = st.lists(
    st.tuples(
        st.floats(0, 200, allow_nan=False),
        st.floats(0, 5, allow_nan=False),
        st.floats(0, 1, allow_nan=False),
    ),
    max_size=120,
)
windows_strategy = st.lists(
    st.builds(Window, st.integers(1, 15), st.floats(0.1, 60, allow_nan=False)),
    min_size=1,
    max_size=3,
).map(tuple)


@settings(max_examples=200)
@given(windows=windows_strategy, requests=requests_strategy)
def test_never_more_than_n_in_any_window(windows, requests):
    """Whatever the arrival pattern and however late requests reach the provider, no window
    of the provider's length ever holds more than its limit, by grant or by arrival."""
    time = FakeTime()
    grants, arrivals = simulate(limiter_on(time, windows), time, requests)
    assert len(grants) == len(requests)
    for window in windows:
        assert most_in_any_window(grants, window.seconds) <= window.requests
        assert most_in_any_window(arrivals, window.seconds) <= window.requests


# Bursts of traffic: (seconds since the previous burst, requests in it).
bursts_strategy = st.lists(
    st.tuples(st.floats(0, 900, allow_nan=False), st.integers(1, 300)), min_size=1, max_size=8
)


@settings(max_examples=15)
@given(bursts=bursts_strategy, duration=st.floats(0, 3, allow_nan=False))
def test_attio_windows_hold_under_bursts(bursts, duration):
    """Attio's and hasteCRM's documented limits: 100 a minute and 1,000 an hour at once."""
    windows = (Window(100, 60.0), Window(1000, 3600.0))
    requests, moment = [], 0.0
    for gap, count in bursts:
        moment += gap
        requests += [(moment, duration, 1.0)] * count
    time = FakeTime()
    _, arrivals = simulate(limiter_on(time, windows), time, requests)
    for window in windows:
        assert most_in_any_window(arrivals, window.seconds) <= window.requests


def test_the_property_catches_a_limiter_that_is_off():
    windows = (Window(5, 1.0),)
    burst = [(0.0, 0.01, 0.0)] * 6
    time = FakeTime()
    grants, _ = simulate(limiter_on(time, windows, enabled=False), time, burst)
    assert most_in_any_window(grants, 1.0) == 6


def test_the_property_catches_counting_a_slot_at_its_grant():
    """The flaky load test's cause: a slot counted when granted, while the provider counts
    the request when it arrives; a request that leaves late lands in the next window."""
    windows = (Window(2, 1.0),)
    # Two requests at once, the first reaching the provider only 2 s later; then two more.
    requests = [(0.0, 2.0, 1.0), (0.0, 0.0, 0.0), (1.3, 0.0, 0.0), (1.4, 0.0, 0.0)]
    time = FakeTime()
    _, arrivals = simulate(limiter_on(time, windows), time, requests, count_at_grant=True)
    assert most_in_any_window(arrivals, 1.0) == 3
    time = FakeTime()
    _, arrivals = simulate(limiter_on(time, windows), time, requests)
    assert most_in_any_window(arrivals, 1.0) == 2


def test_limiter_delays_past_every_window():
    time = FakeTime(100.0)
    limiter = limiter_on(time, (Window(3, 1.0), Window(5, 10.0)))
    one, ten = _padded(1.0), _padded(10.0)  # a little longer than the provider's windows

    async def take(count: int) -> None:
        for _ in range(count):
            slot = await limiter.acquire(math.inf)
            assert slot is not None
            limiter.done(slot)

    asyncio.run(take(3))
    assert time.slept == []
    assert limiter.delay(time.now) == pytest.approx(one)  # the 1 s window is full
    asyncio.run(take(2))
    assert time.slept == [pytest.approx(one)]
    assert limiter.delay(time.now) == pytest.approx(ten - one)  # now the 10 s window is full


def test_a_request_in_flight_holds_its_slot():
    time = FakeTime()
    limiter = limiter_on(time, (Window(1, 1.0),))
    slot = asyncio.run(limiter.acquire(math.inf))
    assert slot is not None
    time.advance(60)  # still not answered a minute later: it may yet reach the provider
    assert limiter.delay(time.now) == pytest.approx(_padded(1.0))
    limiter.done(slot)
    time.advance(_padded(1.0))
    assert limiter.delay(time.now) == 0


def test_limiter_gives_up_rather_than_miss_the_deadline():
    time = FakeTime()
    limiter = limiter_on(time, (Window(1, 60.0),))

    async def scenario() -> tuple[bool, bool]:
        first = await limiter.acquire(time.now + 1)
        second = await limiter.acquire(time.now + 1)
        return first is not None, second is not None

    assert asyncio.run(scenario()) == (True, False)
    assert time.slept == []  # it said so at once instead of waiting


def test_limiter_pauses_when_the_provider_says_so():
    limiter = RateLimiter((), enabled=False)
    limiter.pause_until(50.0)
    assert limiter.delay(45.0) == pytest.approx(5.0)
    assert limiter.delay(51.0) == 0


# --- the limiter's queue: arrival order, deadlines ------------------------------------------

# One request: when it reaches the limiter, how long it may wait (its deadline), and how long
# it is in flight once granted.
Queued = tuple[float, float, float]


@dataclass
class Outcome:
    called: float
    deadline: float
    granted: float | None = None
    refused: float | None = None


def queue_through(limiter: RateLimiter, time: SteppedTime, requests: list[Queued]) -> list[Outcome]:
    """Send `requests` (by arrival) at the limiter concurrently, each as its own task."""
    outcomes: list[Outcome] = []

    async def one(outcome: Outcome, duration: float) -> None:
        slot = await limiter.acquire(outcome.deadline)
        if slot is None:
            outcome.refused = time.now
            return
        outcome.granted = time.now
        if duration:
            await time.sleep(duration)
        limiter.done(slot)

    async def run() -> None:
        tasks = []
        for arrival, patience, duration in sorted(requests):
            await time.advance_to(time.now if not outcomes else arrival + START)
            outcome = Outcome(called=time.now, deadline=time.now + patience)
            outcomes.append(outcome)
            tasks.append(asyncio.create_task(one(outcome, duration)))
            await time.settle()
        await time.run_out()
        await asyncio.gather(*tasks)

    asyncio.run(run())
    return outcomes


START = 1000.0


def earliest_slot(windows: tuple[Window, ...], grants: list[float], after: float) -> float:
    """The first moment at or after `after` (itself at or after every grant) where every
    window holds fewer than its limit of `grants` (which finished at once): found by trying
    every moment a grant leaves a window, independently of the limiter's arithmetic."""
    candidates = sorted(
        {after}
        | {
            g + _padded(w.seconds)
            for g in grants
            for w in windows
            if g + _padded(w.seconds) > after
        }
    )
    for moment in candidates:
        if all(
            # (less an ulp's worth: g + span - g may round below span)
            sum(1 for g in grants if moment - g < _padded(w.seconds) - 1e-9) < w.requests
            for w in windows
        ):
            return moment
    raise AssertionError("no moment frees every window")


queued_strategy = st.lists(
    st.tuples(
        st.floats(0, 200, allow_nan=False),
        st.floats(0, 100, allow_nan=False),
        st.just(0.0),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=150)
@given(windows=windows_strategy, requests=queued_strategy)
def test_queued_requests_get_the_earliest_slot_in_arrival_order_or_are_refused_at_once(
    windows, requests
):
    """Requests that finish as soon as granted (so nothing is unknown): each gets exactly
    the earliest slot after those ahead of it, in arrival order and never after its
    deadline; one is refused only when that slot would come after its deadline, and then
    at once."""
    time = SteppedTime(START)
    outcomes = queue_through(limiter_on(time, windows), time, requests)
    grants: list[float] = []
    for outcome in outcomes:
        after = max([outcome.called, *grants[-1:]])
        slot = earliest_slot(windows, grants, after)
        if outcome.granted is not None:
            assert outcome.granted == pytest.approx(slot, abs=1e-6)
            assert outcome.granted <= outcome.deadline + 1e-6
            grants.append(outcome.granted)
        else:
            assert slot > outcome.deadline - 1e-6
            assert outcome.refused == outcome.called  # it did not wait to learn it
    assert grants == sorted(grants)  # FIFO
    for window in windows:
        assert most_in_any_window(grants, window.seconds) <= window.requests


@settings(max_examples=100)
@given(
    windows=windows_strategy,
    requests=st.lists(
        st.tuples(
            st.floats(0, 200, allow_nan=False),
            st.floats(0, 100, allow_nan=False),
            st.floats(0, 5, allow_nan=False),
        ),
        min_size=1,
        max_size=40,
    ),
)
def test_queued_requests_in_flight_keep_order_deadlines_and_windows(windows, requests):
    """Requests in flight for a while (their end unknown to the limiter in advance): still
    granted in arrival order, never after their deadline, never refused after it, and never
    more than a window's limit counted from when they finished."""
    time = SteppedTime(START)
    outcomes = queue_through(limiter_on(time, windows), time, requests)
    order = sorted(requests)
    granted = [o.granted for o in outcomes if o.granted is not None]
    assert granted == sorted(granted)
    finishes = []
    for outcome, (_, _, duration) in zip(outcomes, order, strict=True):
        if outcome.granted is not None:
            assert outcome.granted <= outcome.deadline + 1e-6
            finishes.append(outcome.granted + duration)
        else:
            assert outcome.refused is not None
            assert outcome.refused <= outcome.deadline + 1e-6
    finishes.sort()
    for window in windows:
        assert most_in_any_window(finishes, window.seconds) <= window.requests
        assert most_in_any_window(granted, window.seconds) <= window.requests


def test_a_request_whose_turn_comes_too_late_is_refused_at_once():
    """One slot a minute: the second request waits its turn; a third, whose turn would come
    after the second's, is refused on arrival even though the next slot is within its
    deadline (it is the second's); a fourth, patient enough, is served after the second."""
    time = SteppedTime(START)
    minute = _padded(60.0)
    requests = [
        (0.0, 1.0, 0.0),
        (1.0, 100.0, 0.0),
        (2.0, minute + 10.0, 0.0),
        (3.0, 3 * minute, 0.0),
    ]
    outcomes = queue_through(limiter_on(time, (Window(1, 60.0),)), time, requests)
    assert [o.granted for o in outcomes] == [
        START,
        pytest.approx(START + minute),
        None,
        pytest.approx(START + 2 * minute),
    ]
    assert outcomes[2].refused == START + 2.0


def test_a_waiter_that_leaves_the_queue_gives_up_its_place():
    """Cancelled while waiting (the operation's deadline), first in line or behind: those
    behind move up, and the one that left takes no slot."""
    time = SteppedTime(START)
    limiter = limiter_on(time, (Window(1, 10.0),))
    ten = _padded(10.0)
    grants: dict[str, float] = {}

    async def take(name: str) -> None:
        slot = await limiter.acquire(math.inf)
        assert slot is not None
        grants[name] = time.now
        limiter.done(slot)

    async def run() -> None:
        await take("a")
        tasks = {name: asyncio.create_task(take(name)) for name in "bcde"}
        await time.settle()
        tasks["b"].cancel()  # first in line, asleep until the window frees
        tasks["d"].cancel()  # behind
        await time.run_out()
        await asyncio.gather(*tasks.values(), return_exceptions=True)

    asyncio.run(run())
    assert grants == {
        "a": START,
        "c": pytest.approx(START + ten),
        "e": pytest.approx(START + 2 * ten),
    }


def test_a_slower_queue_refuses_those_behind_before_their_deadline():
    """The first in line finds the window still full when it wakes (a request in flight
    finished late): a waiter behind it that can no longer make its deadline is told then,
    not at its deadline."""
    time = SteppedTime(START)
    limiter = limiter_on(time, (Window(1, 10.0),))
    ten = _padded(10.0)
    outcome: dict[str, float | None] = {}

    async def run() -> None:
        first = await limiter.acquire(math.inf)
        assert first is not None  # in flight: the limiter foresees it finishing at once

        async def wait(name: str, deadline: float) -> None:
            slot = await limiter.acquire(deadline)
            outcome[name] = time.now if slot is not None else -time.now
            if slot is not None:
                limiter.done(slot)

        second = asyncio.create_task(wait("second", math.inf))
        await time.settle()
        third = asyncio.create_task(wait("third", START + 2 * ten + 5.0))
        await time.settle()
        await time.advance_to(START + 30.0)  # the first request is still in flight
        limiter.done(first)
        await time.run_out()
        await asyncio.gather(second, third)

    asyncio.run(run())
    assert outcome["second"] == pytest.approx(START + 30.0 + ten)
    # Refused at the second's first wake-up (START + ten), long before its own deadline.
    assert outcome["third"] == pytest.approx(-(START + ten))

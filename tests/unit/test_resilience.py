"""The limiter (its windows and its queue), the retry backoff and the circuit breaker, on
their own, on a fake clock."""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.resilience import (
    CircuitBreaker,
    CircuitState,
    RateLimiter,
    Refused,
    RetryPolicy,
    Share,
    Slot,
    Window,
    _padded,
    sharing,
)
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


# --- retries --------------------------------------------------------------------------------


def test_backoff_is_full_jitter_capped():
    policy = RetryPolicy(max_retries=5, base_delay=0.1, max_delay=1.0)
    rng = random.Random(1)
    for attempt in range(6):
        ceiling = min(1.0, 0.1 * 2**attempt)
        samples = [policy.backoff(attempt, rng) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8  # spread over the whole range, not fixed


# --- the breaker ----------------------------------------------------------------------------


def state(breaker: CircuitBreaker) -> CircuitState:
    return breaker.state  # read afresh each time (mypy would narrow a property): it moves


def breaker_on(time: FakeTime, **options: float) -> CircuitBreaker:
    defaults: dict[str, float] = {
        "failure_ratio": 0.5,
        "min_requests": 10,
        "window": 30.0,
        "cooldown": 10.0,
    }
    defaults.update(options)
    return CircuitBreaker(
        failure_ratio=defaults["failure_ratio"],
        min_requests=int(defaults["min_requests"]),
        window=defaults["window"],
        cooldown=defaults["cooldown"],
        clock=time,
    )


def test_breaker_opens_on_a_failure_ratio_once_there_is_volume():
    time = FakeTime()
    breaker = breaker_on(time)
    for _ in range(5):
        breaker.success()
    for _ in range(4):
        breaker.failure()
    assert state(breaker) is CircuitState.CLOSED  # 4 of 9: too few requests to judge
    breaker.failure()
    assert state(breaker) is CircuitState.OPEN  # 5 of 10
    assert not breaker.allow()


def test_breaker_does_not_open_on_five_failures_in_a_row_among_many_successes():
    time = FakeTime()
    breaker = breaker_on(time)
    for _ in range(20):
        breaker.success()
        time.advance(0.1)
    for _ in range(9):
        breaker.failure()
    assert state(breaker) is CircuitState.CLOSED  # 9 of 29
    assert breaker.allow()


def test_breaker_needs_the_minimum_volume():
    time = FakeTime()
    breaker = breaker_on(time, min_requests=10)
    for _ in range(9):
        breaker.failure()
    assert state(breaker) is CircuitState.CLOSED  # all failed, but only 9 requests
    breaker.failure()
    assert state(breaker) is CircuitState.OPEN


def test_breaker_forgets_outcomes_older_than_its_window():
    time = FakeTime()
    breaker = breaker_on(time, window=30.0)
    for _ in range(9):
        breaker.failure()
    time.advance(30)
    breaker.failure()
    assert state(breaker) is CircuitState.CLOSED  # the first nine fell out of the window


def test_client_caused_answers_count_neither_way():
    time = FakeTime()
    breaker = breaker_on(time)
    for _ in range(100):
        breaker.answered()  # 400, 404, 409, 422, 429 ...
    for _ in range(9):
        breaker.failure()
    assert state(breaker) is CircuitState.CLOSED  # the 4xx neither opened it...
    breaker.failure()
    assert state(breaker) is CircuitState.OPEN  # ...nor diluted the failures


def test_breaker_lets_one_probe_through_after_the_cooldown():
    time = FakeTime()
    breaker = breaker_on(time, min_requests=1, cooldown=10.0)
    breaker.failure()
    assert state(breaker) is CircuitState.OPEN
    assert breaker.retry_in() == pytest.approx(10.0)
    time.advance(9.9)
    assert not breaker.allow()
    time.advance(0.1)
    assert state(breaker) is CircuitState.HALF_OPEN
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one
    breaker.failure()  # the probe failed: open again, for a whole cooldown
    assert state(breaker) is CircuitState.OPEN
    time.advance(10)
    assert breaker.allow()
    breaker.release()  # that probe was never sent (no rate-limit slot): another may go
    assert breaker.allow()
    breaker.answered()  # a 404 still shows the provider answers
    assert state(breaker) is CircuitState.CLOSED
    assert breaker.allow()


def test_a_lost_probe_does_not_jam_the_breaker():
    time = FakeTime()
    breaker = breaker_on(time, min_requests=1, cooldown=10.0)
    breaker.failure()
    time.advance(10)
    assert breaker.allow()  # a probe whose task is then cancelled, with no outcome
    time.advance(5)
    assert not breaker.allow()
    time.advance(5)
    assert breaker.allow()
    breaker.success()
    assert state(breaker) is CircuitState.CLOSED


def test_late_outcomes_do_not_decide_an_open_breaker():
    time = FakeTime()
    breaker = breaker_on(time, min_requests=1, cooldown=10.0)
    breaker.failure()
    breaker.success()  # a request sent before it opened, answered now
    assert state(breaker) is CircuitState.OPEN


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

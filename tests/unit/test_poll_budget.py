"""The poller's part of a provider's budget, on a fake clock: at most its share of each
rate window, and nothing while clients wait for the provider's limiter."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Coroutine
from typing import Any

from gateway.limiter import RateLimiter, Share, Window, _padded, sharing
from gateway.live.budget import PollBudget, shares
from tests.unit.fake_time import SteppedTime
from tests.unit.test_limiter import most_in_any_window


async def requests(
    limiter: RateLimiter, budget: PollBudget | None, time: SteppedTime, until: float
) -> list[float]:
    """Grant times of requests sent back to back until `until`: the poller's (each first
    waiting for its `budget`), or a client's (no budget)."""
    granted: list[float] = []
    with sharing(Share("~poller", 0.1) if budget else Share("client")):
        while time.now < until:
            if budget is not None:
                await budget.wait()
            slot = await limiter.acquire(math.inf)
            assert slot is not None
            granted.append(time.now)
            limiter.done(slot)
    return granted


def run(time: SteppedTime, *work: Coroutine[Any, Any, list[float]]) -> list[list[float]]:
    """What each of `work` gave, time stepping from one sleeper to the next."""

    async def all_of() -> list[list[float]]:
        tasks = [asyncio.create_task(w) for w in work]
        await time.run_out()
        return list(await asyncio.gather(*tasks))

    return asyncio.run(all_of())


def test_a_share_is_each_window_scaled_down_and_never_nothing() -> None:
    windows = (Window(10, 1.0), Window(180, 60.0), Window(5, 60.0))
    assert shares(windows, 0.1) == (Window(1, 1.0), Window(18, 60.0), Window(1, 60.0))
    assert shares((Window(30, 1.0),), 0.1) == (Window(3, 1.0),)  # 30 x 0.1 is 3, not 2.999


def test_the_poller_takes_at_most_its_share_of_each_window() -> None:
    time = SteppedTime()
    windows = (Window(10, 1.0), Window(100, 60.0))
    limiter = RateLimiter(windows, clock=time, sleep=time.sleep)
    budget = PollBudget(limiter, 0.1)
    [granted] = run(time, requests(limiter, budget, time, until=time.now + 130))
    assert most_in_any_window(granted, _padded(1.0)) <= 1
    assert most_in_any_window(granted, _padded(60.0)) <= 10
    assert len(granted) >= 20  # and it gets its share: two 60 s windows' worth, and more
    assert budget.waited > 100


def test_clients_waiting_for_the_provider_go_first() -> None:
    time = SteppedTime()
    limiter = RateLimiter((Window(5, 1.0),), clock=time, sleep=time.sleep)
    budget = PollBudget(limiter, 1.0)  # the whole budget: only the clients hold it back
    start = time.now
    *flood, granted = run(
        time,
        *(requests(limiter, None, time, start + 10) for _ in range(3)),
        requests(limiter, budget, time, start + 20),
    )
    clients = sorted(t for times in flood for t in times)
    assert len(clients) > 40  # the clients had the budget to themselves...
    assert granted
    assert min(granted) >= max(clients)  # ...and the poller came after them
    assert most_in_any_window(sorted(clients + granted), _padded(1.0)) <= 5


def test_without_rate_limits_nothing_waits() -> None:
    time = SteppedTime()
    limiter = RateLimiter((Window(10, 1.0),), enabled=False, clock=time, sleep=time.sleep)
    budget = PollBudget(limiter, 0.1)

    async def five() -> None:
        for _ in range(5):
            await budget.wait()

    asyncio.run(five())
    assert budget.waited == 0

"""The emulators' shared tenants and rate windows, on a fake clock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from emulators import EmulatorOptions
from emulators.tenants import FixedWindow, SlidingLog, tenant_worlds


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_two_tenants_from_the_seed_and_the_next() -> None:
    options = EmulatorOptions(seed=7, companies=3, contacts=5, deals=2, notes=4)
    demo, other = tenant_worlds(options)
    sizes = [len(demo.companies), len(demo.contacts), len(demo.deals), len(demo.notes)]
    assert sizes == [3, 5, 2, 4]
    assert len(other.contacts) == 5
    assert [c.email for c in demo.contacts] != [c.email for c in other.contacts]
    assert tenant_worlds(options)[0] == demo  # the same seed, the same world


def test_sliding_log_refuses_with_the_full_window_then_frees_it() -> None:
    clock = Clock()
    log = SlidingLog([(2, 10), (3, 100)], clock=clock)
    assert log.admit("a") is None
    clock.now += 1
    assert log.admit("a") is None
    full = log.admit("a")
    assert full is not None
    assert (full.limit, full.seconds, full.hits, full.now) == (2, 10, [1000.0, 1001.0], 1001.0)
    assert log.admit("b") is None  # callers are counted apart
    clock.now = 1010.0  # the first hit left the short window, not the long one
    assert log.admit("a") is None
    clock.now = 1011.0  # the short window holds one hit, the long one three
    full = log.admit("a")
    assert full is not None
    assert (full.limit, full.remaining) == (3, 0)
    log.clear()
    assert log.admit("a") is None


@given(
    gaps=st.lists(st.floats(min_value=0, max_value=3, allow_nan=False), max_size=60),
    limit=st.integers(min_value=1, max_value=5),
    seconds=st.floats(min_value=0.5, max_value=5),
)
def test_sliding_log_admits_at_most_limit_per_window(
    gaps: list[float], limit: int, seconds: float
) -> None:
    clock = Clock()
    log = SlidingLog([(limit, seconds)], clock=clock)
    admitted: list[float] = []
    for gap in gaps:
        clock.now += gap
        inside = [t for t in admitted if clock.now - t < seconds]
        refused = log.admit("k")
        # Refused exactly when the window already holds `limit` admitted hits.
        assert (refused is not None) == (len(inside) >= limit)
        if refused is None:
            admitted.append(clock.now)


def test_fixed_window_counts_from_the_first_hit_and_restarts() -> None:
    clock = Clock()
    window = FixedWindow(2, 60, clock=clock)
    span = window.current("a")
    assert (span.start, span.used, span.remaining, span.end) == (1000.0, 0, 2, 1060.0)
    window.spend("a")
    clock.now += 30
    window.spend("a")
    span = window.current("a")
    assert (span.used, span.remaining, span.now) == (2, 0, 1030.0)
    assert window.current("b").remaining == 2
    clock.now = 1060.0
    span = window.current("a")
    assert (span.start, span.used) == (1060.0, 0)
    window.spend("a")
    window.clear()
    assert window.current("a").used == 0

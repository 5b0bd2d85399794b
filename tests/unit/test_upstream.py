"""Reading each provider's way of saying "wait": seconds, HTTP dates, epoch instants."""

from __future__ import annotations

import httpx
import pytest

from gateway.upstream import RateLimitState, seconds_until

NOW = 1_780_000_000.0  # a fixed "now", Unix seconds


@pytest.mark.parametrize(
    ("value", "wait"),
    [
        ("3", 3.0),  # delay seconds (RevyOps, BasicsOS, hasteCRM Retry-After)
        ("0", 0.0),
        (str(int(NOW) + 42), 42.0),  # Unix seconds (hasteCRM X-RateLimit-Reset)
        (str(int(NOW * 1000) + 1500), 1.5),  # milliseconds since the epoch (Redivis)
        (str(int(NOW * 1000) - 5000), 0.0),  # an instant already past: no wait
        ("Thu, 28 May 2026 20:27:00 GMT", 20.0),  # HTTP date (Attio)
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_seconds_until(value, wait):
    result = seconds_until(value, NOW)
    assert result == pytest.approx(wait) if wait is not None else result is None


def test_rate_limit_state_reads_headers():
    state = RateLimitState()
    headers = httpx.Headers(
        {
            "X-RateLimit-Limit": "1000",
            "X-RateLimit-Remaining": "998",
            "X-RateLimit-Reset": str(int(NOW * 1000) + 60_000),
        }
    )
    state.update(headers, NOW)
    assert (state.limit, state.remaining) == (1000, 998)
    assert state.reset_at == pytest.approx(NOW + 60)
    state.update(httpx.Headers({}), NOW)  # a response without headers keeps what was known
    assert state.remaining == 998

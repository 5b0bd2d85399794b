"""Retries: the backoff, and the retry layer over a fake of the layer below."""

from __future__ import annotations

import random

from gateway.retry import RetryPolicy

# --- retries --------------------------------------------------------------------------------


def test_backoff_is_full_jitter_capped():
    policy = RetryPolicy(max_retries=5, base_delay=0.1, max_delay=1.0)
    rng = random.Random(1)
    for attempt in range(6):
        ceiling = min(1.0, 0.1 * 2**attempt)
        samples = [policy.backoff(attempt, rng) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8  # spread over the whole range, not fixed

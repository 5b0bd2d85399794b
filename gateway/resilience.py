"""Kept for the data sources' imports of `Window`: its home is now `gateway.limiter`.

The rest of what lived here has its own module: the rate limiter (`gateway.limiter`),
retries (`gateway.retry`) and the circuit breaker (`gateway.breaker`).
"""

from __future__ import annotations

from gateway.limiter import Window

__all__ = ["Window"]

"""One upstream call as the layers of the upstream pass it down, and what a layer is.

`gateway.upstream` stacks the layers (its docstring lists them). Each does one job and
hands the call to the layer below through the same `send`, so each can be tested alone
over a fake of the layer below (or, for the wire, over `httpx.MockTransport`). Time is a
parameter of every layer that reads it.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

# Monotonic seconds, and waiting for some of them: tests pass a fake clock.
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Call:
    """One request as the data source asked for it: what every try sends again."""

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json_body: Any = None
    ok_statuses: tuple[int, ...] = ()  # statuses >= 400 handed back, not raised
    # Whether sending it twice does no harm: only these are retried or cached.
    idempotent: bool = True
    # False: an idempotent read that must see the provider's current state.
    cached: bool = True
    # When the whole call, retries included, must be over (on the layers' clock); the
    # retry layer sets it.
    deadline: float = math.inf


class Layer(Protocol):
    """One layer of the upstream: the response to `call`, or an `UpstreamError`."""

    async def send(self, call: Call) -> httpx.Response: ...

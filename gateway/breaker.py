"""The circuit breaker: answering at once while a provider is down.

Per provider instance: a `CircuitBreaker` opens when too large a share of recent requests
failed, answers at once while open and lets one probe through now and then. `Breaker` is
its layer in the upstream: every try passes it, and its outcome is counted there.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from dataclasses import dataclass, field

import httpx

from gateway.calls import Call, Clock, Layer
from gateway.errors import CircuitOpen, UpstreamNotSent, UpstreamTimeout, UpstreamUnavailable


class CircuitState(enum.StrEnum):
    CLOSED = "CLOSED"  # requests flow
    OPEN = "OPEN"  # the provider is failing: answer at once
    HALF_OPEN = "HALF_OPEN"  # one probe request decides


# eq=False: each breaker is one provider's, compared (and hashed) by identity.
@dataclass(kw_only=True, eq=False)
class CircuitBreaker:
    """Opens when at least `failure_ratio` of the requests that finished in the last
    `window` seconds failed, once there were `min_requests` of them; after `cooldown`
    seconds lets one probe through, whose outcome closes or reopens it.

    Only what says the provider is unwell counts (5xx, timeouts, transport errors, via
    `failure`); `success` counts a good answer. Answers a client caused (4xx) or the limiter's
    business (429) go to `answered`: they count neither way, so no client can open a
    provider's circuit for everybody, nor hold it shut, by sending bad requests.
    """

    failure_ratio: float = 0.5
    min_requests: int = 10
    window: float = 30.0
    cooldown: float = 10.0
    clock: Clock = time.monotonic
    # (when, failed) for the requests that finished in the last `window` seconds.
    _outcomes: deque[tuple[float, bool]] = field(default_factory=deque, init=False, repr=False)
    _failures: int = field(default=0, init=False)
    opened_at: float | None = field(default=None, init=False)
    # A probe lost to cancellation must not jam it.
    _probe_sent: float | None = field(default=None, init=False)

    @property
    def state(self) -> CircuitState:
        if self.opened_at is None:
            return CircuitState.CLOSED
        if self.clock() - self.opened_at >= self.cooldown:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def allow(self) -> bool:
        """Whether a request may go now (in HALF_OPEN, only the one probe)."""
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        now = self.clock()
        if state is CircuitState.HALF_OPEN and (
            self._probe_sent is None or now - self._probe_sent >= self.cooldown
        ):
            self._probe_sent = now
            return True
        return False

    def retry_in(self) -> float:
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.opened_at + self.cooldown - self.clock())

    def release(self) -> None:
        """A request that `allow` let through was never sent."""
        self._probe_sent = None

    def success(self) -> None:
        """The provider answered well."""
        if self._settle(failed=False):
            self._record(failed=False)

    def failure(self) -> None:
        """A 5xx, a timeout or a transport error."""
        if self._settle(failed=True):
            self._record(failed=True)

    def answered(self) -> None:
        """The provider answered, but with what a client caused (4xx) or a 429: it is up,
        so a probe that gets this closes the circuit, but it counts neither way."""
        self._settle(failed=False)

    def _settle(self, *, failed: bool) -> bool:
        """Let an outcome decide an open circuit; True when the circuit was closed."""
        if self.opened_at is None:
            return True
        if self.state is CircuitState.HALF_OPEN:  # the probe's outcome (or a late one's)
            if failed:
                self._open()
            else:
                self.opened_at = None
                self._probe_sent = None
        # While OPEN, requests sent before it opened are still finishing: they decide nothing.
        return False

    def _record(self, *, failed: bool) -> None:
        now = self.clock()
        self._outcomes.append((now, failed))
        self._failures += failed
        while self._outcomes and now - self._outcomes[0][0] >= self.window:
            _, old = self._outcomes.popleft()
            self._failures -= old
        total = len(self._outcomes)
        if total >= self.min_requests and self._failures >= self.failure_ratio * total:
            self._open()

    def _open(self) -> None:
        self.opened_at = self.clock()
        self._probe_sent = None
        self._outcomes.clear()
        self._failures = 0


class Breaker:
    """The layer that sends nothing while `circuit` is open and tells it how each try went:
    a 5xx, a 408 or a transport failure counts against the provider, another 4xx (the
    client's mistake, or a 429) neither way, anything else for it."""

    def __init__(self, below: Layer, circuit: CircuitBreaker, *, provider: str) -> None:
        self.below = below
        self.circuit = circuit
        self.provider = provider

    async def send(self, call: Call) -> httpx.Response:
        if not self.circuit.allow():
            raise CircuitOpen(
                f"{self.provider} is failing; its circuit breaker is open "
                f"(next try in {self.circuit.retry_in():.0f} s).",
                provider=self.provider,
            )
        try:
            response = await self.below.send(call)
        except UpstreamNotSent:
            self.circuit.release()  # nothing was sent: a probe slot it took is free again
            raise
        except (UpstreamTimeout, UpstreamUnavailable):
            self.circuit.failure()  # the wire's: no answer came
            raise
        except BaseException:
            self.circuit.release()  # cancelled (or a bug): the outcome is unknown
            raise
        status = response.status_code
        if status >= 500 or status == 408:
            self.circuit.failure()
        elif status >= 400:
            self.circuit.answered()
        else:
            self.circuit.success()
        return response

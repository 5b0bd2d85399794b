"""One cheap authenticated request per provider: can the gateway reach it, and does it take
the credentials? `crm-gateway check` prints the answers; `serve` asks in the background at
start-up, so that `/readyz` knows before the first user query does.

The request is the first page of one record of the first list the provider serves, read
past the caches and through the provider's limiter like any other: a check spends one slot
of its budget, never more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from gateway.datasources import DataSource
from gateway.errors import UpstreamAuthError, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from gateway.pagination.connection import ConnectionArgs
from gateway.pagination.cursors import CursorCodec
from gateway.records import Entity

log = logging.getLogger("gateway.probe")

# Seconds between probes of a provider that failed its last one, until it passes.
RETRY_EVERY = 30.0


@dataclass(frozen=True)
class ProbeResult:
    """`reachable`: the provider answered; `accepted`: it took the credentials (None when
    it could not say); `problem`: what went wrong, in words, without secrets."""

    provider: str
    kind: str
    reachable: bool
    accepted: bool | None
    latency_ms: float
    rate_limit: str
    problem: str | None = None

    @property
    def usable(self) -> bool:
        return self.reachable and self.accepted is not False


async def probe(
    source: DataSource, *, clock: Callable[[], float] = time.perf_counter
) -> ProbeResult:
    """Send the provider one cheap authenticated request and say how it went."""
    entity = next(e for e in Entity if e in source.entities)
    codec = CursorCodec(b"probe-only: no cursor leaves it")
    started = clock()
    problem: str | None = None
    reachable: bool = True
    accepted: bool | None = True
    try:
        with source.upstream.uncached():
            await source.connection(entity, ConnectionArgs(first=1), codec)
    except UpstreamAuthError as error:
        accepted, problem = False, f"credentials refused ({error.status or 'no status'})"
    except (UpstreamUnavailable, UpstreamTimeout) as error:
        reachable, accepted, problem = False, None, str(error)
    except UpstreamError as error:
        accepted, problem = None, str(error)
    elapsed = (clock() - started) * 1000
    state = source.upstream.rate_limit
    limits = "-" if state.limit is None else f"{state.remaining}/{state.limit}"
    return ProbeResult(
        source.name, source.kind, reachable, accepted, round(elapsed, 1), limits, problem
    )


async def probe_all(sources: Mapping[str, DataSource]) -> list[ProbeResult]:
    """Every provider's probe, at once."""
    return list(await asyncio.gather(*(probe(source) for source in sources.values())))


class Probes:
    """The start-up probes of a serving gateway, and their latest results for `/readyz`.

    A provider that fails is probed again every `retry_every` seconds until it passes;
    one that passed is left to the circuit breaker, which sees every later failure."""

    def __init__(
        self,
        retry_every: float = RETRY_EVERY,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.results: dict[str, ProbeResult] = {}
        self.retry_every = retry_every
        self.sleep = sleep
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, sources: Mapping[str, DataSource]) -> None:
        for source in sources.values():
            task = asyncio.get_running_loop().create_task(self._until_usable(source))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _until_usable(self, source: DataSource) -> None:
        while True:
            try:
                result = await probe(source)
            except Exception:  # a probe must never take the server down
                log.exception("probing %s failed", source.name)
                return
            self.results[source.name] = result
            if result.usable:
                return
            log.warning("provider %s is not usable: %s", source.name, result.problem)
            await self.sleep(self.retry_every)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

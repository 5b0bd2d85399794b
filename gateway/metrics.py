"""Prometheus metrics, per-operation accounting, and the hooks the upstream client calls.

Each app has its own `Metrics` (its own registry, served at /metrics), so several
gateways in one process (tests, a host app mounting two) never mix their numbers.
The operation being executed is held in a context variable (`OperationStats`): the
upstream hooks below find through it the app's `Metrics` and the operation whose cost
they count. Tasks an operation starts (dataloader batches) inherit it.

Names (all prefixed `crm_gateway_`):
  upstream_requests_total{provider,status}        requests sent; status is the HTTP status,
                                                  or timeout / transport_error / cancelled
  upstream_request_duration_seconds{provider}     histogram
  cache_requests_total{provider,result}           result: hit / miss / stale
  rate_limiter_waits_total{provider}              requests that waited for a limiter slot
  rate_limiter_wait_seconds_total{provider}       time they waited
  circuit_state{provider,state}                   1 for the breaker's current state, else 0
  operations_total{operation,outcome}             outcome: ok, or the first error's code
  operation_duration_seconds{operation}           histogram
  operation_upstream_requests{operation}          histogram of requests an operation sent
  redis_up                                        1 while the shared Redis answers, 0 while
                                                  caches are local (only with `redis_url`)
  polls_total{provider,outcome}                   polls of one list; outcome: ok, the error's
                                                  code, or too_long (over `merge_whole_max`)
  poll_requests_total{provider}                   upstream requests the polls sent
  poll_changes_total{provider,kind}               changes they found: created / updated /
                                                  deleted
  poll_wait_seconds_total{provider}               time polls waited for their share of the
                                                  budget, behind clients included
  subscriptions_open                              subscriptions open on this replica
"""

from __future__ import annotations

import re
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol, TypeVar

import httpx
from fastapi import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest

from gateway import tracing
from gateway.breaker import CircuitBreaker, CircuitState

PREFIX = "crm_gateway"
# Operation names come from clients: past this many distinct ones, the rest count as
# "other", so no client can grow /metrics without bound.
MAX_OPERATION_NAMES = 100
# A name unseen this long gives its place (and its series) up to a new one, so names sent
# once, by mistake or on purpose, do not hold the places for good.
OPERATION_NAME_TTL = 3600.0
# A wait shorter than this is taking an uncontended lock, not waiting for the budget.
MIN_LIMITER_WAIT = 0.001
COST_BUCKETS = (0, 1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000)

M = TypeVar("M", Counter, Histogram)

_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,99}")


def operation_name(name: str | None) -> str:
    """`name` when it is a GraphQL name (they reach logs and labels), else a placeholder."""
    if name is None:
        return "anonymous"
    return name if _NAME.fullmatch(name) else "invalid"


class Counted(Protocol):
    @property
    def counts(self) -> tuple[int, int, int]:
        """Hits, misses and stale serves so far."""
        ...


class Watched(Protocol):
    """What a scrape reads of one provider instance's upstream (`gateway.upstream`)."""

    @property
    def breaker(self) -> CircuitBreaker: ...

    @property
    def cache(self) -> Counted | None: ...

    @property
    def derived(self) -> Sequence[Counted]: ...


def _no_upstreams() -> Mapping[str, Watched]:
    return {}


class Metrics:
    """One app's metrics; `upstreams` gives the live providers' upstreams (breakers, caches)."""

    # The trusted documents' operation names (set with `persisted_documents`): the only names
    # then given labels of their own.
    names: frozenset[str] | None = None

    # Read at scrape time, set by the app: whether the replicas' Redis answers (when
    # `redis_url` is set), and how many subscriptions are open.
    redis_up: Callable[[], bool] | None = None
    subscriptions_open: Callable[[], int] | None = None

    def __init__(
        self,
        upstreams: Callable[[], Mapping[str, Watched]] = _no_upstreams,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = CollectorRegistry()
        self.upstreams = upstreams
        self.clock = clock
        # Admitted operation names -> (when last seen, outcomes counted), least recent first.
        self._names: dict[str, tuple[float, set[str]]] = {}
        self._cache_events: Tally[tuple[str, str]] = Tally()
        new = self._new
        self.upstream_requests = new(
            Counter,
            "upstream_requests",
            "Upstream requests sent, by provider and HTTP status (or failure).",
            "provider",
            "status",
        )
        self.upstream_duration = new(
            Histogram,
            "upstream_request_duration_seconds",
            "Upstream request latency, by provider.",
            "provider",
        )
        self.limiter_waits = new(
            Counter,
            "rate_limiter_waits",
            "Upstream requests that waited for a rate-limiter slot.",
            "provider",
        )
        self.limiter_seconds = new(
            Counter,
            "rate_limiter_wait_seconds",
            "Seconds upstream requests waited for a rate-limiter slot.",
            "provider",
        )
        self.operations = new(
            Counter,
            "operations",
            "GraphQL operations, by name and outcome (ok, or the first error's code).",
            "operation",
            "outcome",
        )
        self.operation_duration = new(
            Histogram,
            "operation_duration_seconds",
            "GraphQL operation duration, by name.",
            "operation",
        )
        self.operation_cost = Histogram(
            f"{PREFIX}_operation_upstream_requests",
            "Upstream requests one GraphQL operation sent, by name.",
            ["operation"],
            buckets=COST_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_LiveCollector(self))

    @cached_property
    def polling(self) -> PollMetrics:
        """The poller's counters, registered when a poller first counts."""
        return PollMetrics(self)

    def _new(self, kind: type[M], name: str, documentation: str, *labels: str) -> M:
        """A `kind` metric named `crm_gateway_<name>` in this app's registry."""
        return kind(f"{PREFIX}_{name}", documentation, labels, registry=self.registry)

    def operation(
        self, name: str, outcome: str, seconds: float, cost: int, *, admit: bool = True
    ) -> None:
        """Count an operation. Its name becomes a label of its own only once `admit`ted (a
        named operation that ran), within `MAX_OPERATION_NAMES`; else it counts as "other"."""
        label = self._label(name, admit)
        if label in self._names:
            self._names[label][1].add(outcome)
        self.operations.labels(label, outcome).inc()
        self.operation_duration.labels(label).observe(seconds)
        self.operation_cost.labels(label).observe(cost)

    def _label(self, name: str, admit: bool) -> str:
        if name in ("anonymous", "invalid"):
            return name
        if self.names is not None:
            return name if name in self.names else "other"
        now = self.clock()
        known = self._names.pop(name, None)
        if known is not None:
            self._names[name] = (now, known[1])  # to the end: the most recent
            return name
        if not admit:
            return "other"
        if len(self._names) >= MAX_OPERATION_NAMES:
            oldest, (seen, outcomes) = next(iter(self._names.items()))
            if now - seen < OPERATION_NAME_TTL:
                return "other"
            del self._names[oldest]
            self._forget(oldest, outcomes)
        self._names[name] = (now, set())
        return name

    def _forget(self, name: str, outcomes: set[str]) -> None:
        for outcome in outcomes:
            self.operations.remove(name, outcome)
        self.operation_duration.remove(name)
        self.operation_cost.remove(name)

    def cache_event(self, provider: str, event: str) -> None:
        self._cache_events[provider, event] += 1

    async def endpoint(self) -> Response:
        """GET /metrics: the Prometheus text format."""
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class PollMetrics:
    """The poller's counters (`gateway.live.poller`), in `metrics`' registry."""

    def __init__(self, metrics: Metrics) -> None:
        new = metrics._new
        self.polls = new(
            Counter,
            "polls",
            "Polls of one provider's list, by outcome (ok, the error's code, or too_long).",
            "provider",
            "outcome",
        )
        self.requests = new(
            Counter, "poll_requests", "Upstream requests polls sent, by provider.", "provider"
        )
        self.changes = new(
            Counter,
            "poll_changes",
            "Changes polls found, by provider and kind (created, updated, deleted).",
            "provider",
            "kind",
        )
        self.wait = new(
            Counter,
            "poll_wait_seconds",
            "Seconds polls waited for their share of the provider's budget, behind clients.",
            "provider",
        )


class _LiveCollector:
    """Reads at scrape time what the upstreams already keep: breaker states and the read
    caches' hit and miss counts (plus the cache events reported to `cache_event`)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[Metric]:
        return []  # unknown until scraped: providers come up in the lifespan

    def collect(self) -> Iterator[Metric]:
        upstreams = self.metrics.upstreams()
        circuits = GaugeMetricFamily(
            f"{PREFIX}_circuit_state",
            "Circuit breaker state per provider: 1 for the current state, else 0.",
            labels=["provider", "state"],
        )
        cache = CounterMetricFamily(
            f"{PREFIX}_cache_requests",
            "Cached upstream reads per provider: hit, miss, or stale (served past its TTL).",
            labels=["provider", "result"],
        )
        events = Tally(self.metrics._cache_events)
        for name, upstream in upstreams.items():
            current = upstream.breaker.state
            for state in CircuitState:
                circuits.add_metric([name, state.value], 1.0 if state is current else 0.0)
            # Responses, list blocks and whole collections alike.
            for store in (upstream.cache, *upstream.derived):
                if store is not None:
                    hits, misses, stale = store.counts
                    events[name, "hit"] += hits
                    events[name, "miss"] += misses
                    events[name, "stale"] += stale
        for (provider, event), count in sorted(events.items()):
            cache.add_metric([provider, event], count)
        yield circuits
        yield cache
        yield from self._gauges()

    def _gauges(self) -> Iterator[Metric]:
        if self.metrics.redis_up is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}_redis_up",
                "1 while the Redis the replicas share answers; 0 while caches are local.",
                value=1.0 if self.metrics.redis_up() else 0.0,
            )
        if self.metrics.subscriptions_open is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}_subscriptions_open",
                "Subscriptions open on this replica, over every transport.",
                value=float(self.metrics.subscriptions_open()),
            )


@dataclass
class OperationStats:
    """What one operation spent upstream, for its metrics, log line and Server-Timing."""

    metrics: Metrics | None
    clock: Callable[[], float] = time.perf_counter
    requests: int = 0
    # Seconds during which at least one of its upstream requests was in flight: concurrent
    # requests overlap, and their sum could exceed the operation's own duration.
    upstream_seconds: float = 0.0
    _in_flight: int = field(default=0, repr=False)
    _busy_since: float = field(default=0.0, repr=False)

    def started(self) -> None:
        self.requests += 1
        if self._in_flight == 0:
            self._busy_since = self.clock()
        self._in_flight += 1

    def finished(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            self.upstream_seconds += self.clock() - self._busy_since


_operation: ContextVar[OperationStats | None] = ContextVar("operation", default=None)


def begin(stats: OperationStats) -> Token[OperationStats | None]:
    """Make `stats` the current operation's (until `end`)."""
    return _operation.set(stats)


def end(token: Token[OperationStats | None]) -> None:
    _operation.reset(token)


def current() -> OperationStats | None:
    """The running operation's stats, if any."""
    return _operation.get()


class SentRequest:
    """Filled in around one upstream request: headers to send, the status it got."""

    __slots__ = ("headers", "status")

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.status: int | None = None


@contextmanager
def upstream_request(provider: str, method: str, path: str) -> Iterator[SentRequest]:
    """Around one request sent upstream: its span (and `traceparent` in `sent.headers`),
    the operation's cost, and the request's status and latency."""
    sent = SentRequest()
    stats = _operation.get()
    if stats is not None:
        stats.started()
    outcome = "cancelled"
    start = time.perf_counter()
    try:
        with tracing.upstream_span(provider, method, path, sent.headers) as span:
            yield sent
            if sent.status is not None:
                tracing.set_status_code(span, sent.status)
                outcome = str(sent.status)
    except httpx.TimeoutException:
        outcome = "timeout"
        raise
    except httpx.TransportError:
        outcome = "transport_error"
        raise
    finally:
        elapsed = time.perf_counter() - start
        if stats is not None:
            stats.finished()
            if stats.metrics is not None:
                stats.metrics.upstream_requests.labels(provider, outcome).inc()
                stats.metrics.upstream_duration.labels(provider).observe(elapsed)


def limiter_wait(provider: str, seconds: float) -> None:
    """A request waited `seconds` for its rate-limiter slot."""
    stats = _operation.get()
    if stats is None or stats.metrics is None or seconds < MIN_LIMITER_WAIT:
        return
    stats.metrics.limiter_waits.labels(provider).inc()
    stats.metrics.limiter_seconds.labels(provider).inc(seconds)


def cache_event(provider: str, event: str) -> None:
    """Count a cache event of `provider` (e.g. "stale": served past its TTL) in the metrics
    of the app whose operation is running; hits and misses are read from `ReadCache`."""
    stats = _operation.get()
    if stats is not None and stats.metrics is not None:
        stats.metrics.cache_event(provider, event)

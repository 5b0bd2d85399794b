"""Staying within a provider's documented rate limits, shared fairly among clients.

Per provider instance (and so per credential): a sliding-window limiter over the
provider's windows, which also pauses when the provider says its budget is spent, and
divides each window among the gateway's clients by weight (`Share`, set per GraphQL
request). The limiter reads the time through an injected `clock` and waits through `sleep`.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from gateway.calls import Clock, Sleep


@dataclass(frozen=True)
class Window:
    """At most `requests` requests in any `seconds`-long window."""

    requests: int
    seconds: float

    @property
    def span(self) -> float:
        """The window a request is counted in here (padded: see `_padded`)."""
        return _padded(self.seconds)


def _padded(seconds: float) -> float:
    """A window a little longer than the provider's: requests sent in time can still arrive
    late and bunched, and the provider counts arrivals."""
    return seconds * 1.05 + 0.2


@dataclass(frozen=True)
class Share:
    """Whom a request is sent for, in the limiter's fair shares: a client of the gateway and
    its weight. Every request of an open gateway is the one anonymous client's."""

    client: str = ""
    weight: float = 1.0


# Set per GraphQL request (the endpoint knows the client): the limiter reads it in `acquire`,
# deep below the resolvers, without every data source passing it along.
current_share: ContextVar[Share | None] = ContextVar("limiter_share", default=None)
ANONYMOUS = Share()


@contextmanager
def sharing(share: Share) -> Iterator[None]:
    """Requests sent inside count against `share`'s part of each provider's budget."""
    token = current_share.set(share)
    try:
        yield
    finally:
        current_share.reset(token)


class Slot:
    """One request's place in the limiter's windows: in flight until `done`, then it counts
    from the moment the request finished."""

    __slots__ = ("client", "finished")

    def __init__(self, client: str = "") -> None:
        self.client = client
        self.finished: float | None = None


@dataclass(frozen=True)
class Refused:
    """No slot before the deadline: the next foreseen in `retry_after` seconds.
    `by_share`: the client could have had one in time if it did not share the budget."""

    retry_after: float
    by_share: bool = False


class _Waiter:
    """A request queued for a slot. `turn` says True when it is the next to be served (it
    then waits for its moment), and is replaced while others go first; `refused` is set
    when its slot can no longer come before its deadline."""

    __slots__ = ("client", "deadline", "refused", "seq", "turn")

    def __init__(self, client: str, deadline: float, seq: int) -> None:
        self.client = client
        self.deadline = deadline
        self.seq = seq
        self.turn: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.refused: Refused | None = None


class _Timeline:
    """The times the windows count (sorted), all together and per client; a request in
    flight counts as sent now. Planned grants are appended: they are never earlier."""

    __slots__ = ("earliest", "every", "mine")

    def __init__(self, earliest: float, slots: list[tuple[float, str]]) -> None:
        self.earliest = earliest
        slots.sort()
        self.every = [t for t, _ in slots]
        self.mine: dict[str, list[float]] = {}
        for moment, client in slots:
            self.mine.setdefault(client, []).append(moment)

    def add(self, client: str, moment: float) -> None:
        self.every.append(moment)
        self.mine.setdefault(client, []).append(moment)
        self.earliest = moment


def _below(usage: int, share: float) -> bool:
    """Whether `usage` is short of `share`; a share that is whole in exact arithmetic
    (4 of 24 for weights 1 : 5) must not let a fifth request through by rounding."""
    return usage < share - 1e-9


def _recent(times: list[float], moment: float, span: float) -> int:
    """How many of `times` (sorted) count at `moment` in a window of `span` seconds."""
    return len(times) - bisect.bisect_right(times, moment - span)


class RateLimiter:
    """Sliding-window limiter over several windows (e.g. 100/minute and 1,000/hour), whose
    budget its clients share by weight.

    A slot counts from when its request *finished*, not from when it was granted: the
    provider counts a request when it arrives, which is somewhere in between, however
    late the request leaves. A request still in flight counts as sent just now.

    Fair shares: in each window a client's share is the limit times its weight over the
    weights of the clients active in it (with a slot counting there, or waiting). A client
    at its share takes no slot while another active client is below its own; an idle
    client's share is borrowed, since only the active ones divide the limit. Requests wait
    in a queue per client (first come, first served within it); the next slot goes to the
    waiter that may take one soonest, and among those to the client with the smallest
    usage for its weight (weighted fair queuing). One waits for its moment at a time.

    One whose slot, given the waiters ahead of it, would come after its deadline is
    refused at once, on arrival or as soon as the queue is seen to move slower than
    foreseen; a request in flight is foreseen to finish at once, so a refusal is never
    premature. `clock` and `sleep` are parameters so tests run on a fake clock.

    `reserve`: the part of each window no one client may take, kept for a client that
    arrives later in it; borrowing idle shares would otherwise let one client spend a whole
    window and leave a newcomer to wait for the next. The anonymous client of an open
    gateway is the only one there can be, so nothing is kept back from it.

    `replicas`: how many processes may be spending these windows unbeknown to this one
    (replicas whose common budget in Redis is out of reach each keep to their share of it).
    """

    def __init__(
        self,
        windows: tuple[Window, ...],
        *,
        enabled: bool = True,
        reserve: float = 0.0,
        replicas: Callable[[], int] = lambda: 1,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.full = windows
        self.reserve = reserve
        self.enabled = enabled and bool(windows)
        self.replicas = replicas
        self._shares: dict[int, tuple[Window, ...]] = {1: windows}
        # Per provider window, the other replicas' grants in it when the common budget was last
        # heard, and the moment (on `clock`) by which they have all left it: while keeping to
        # its share, this process leaves them their room until then.
        self._elsewhere: tuple[tuple[int, float], ...] = ()
        self.clock = clock
        self.sleep = sleep
        self._slots: deque[Slot] = deque()
        self._paused_until = 0.0
        self._queues: dict[str, deque[_Waiter]] = {}
        self._weights: dict[str, float] = {}
        self._arrivals = itertools.count()

    @property
    def windows(self) -> tuple[Window, ...]:
        """The windows this process keeps to: the provider's, or its share of them."""
        replicas = max(1, self.replicas())
        if replicas not in self._shares:
            self._shares[replicas] = tuple(
                Window(max(1, w.requests // replicas), w.seconds) for w in self.full
            )
        return self._shares[replicas]

    def elsewhere(self, counts: Sequence[int]) -> None:
        """The common budget says the other replicas hold `counts` grants in the provider's
        windows (in `full`'s order). Ignored while this process keeps to its share: a Redis
        just back may not yet have heard of the grants the others made while it was away."""
        if self.replicas() > 1:
            return
        now = self.clock()
        self._elsewhere = tuple(
            (count, now + _padded(window.seconds))
            for count, window in zip(counts, self.full, strict=False)
        )

    def pause_until(self, moment: float) -> None:
        """Send nothing before `moment` (on `clock`): the provider said its budget is spent."""
        self._paused_until = max(self._paused_until, moment)

    def delay(self, now: float) -> float:
        """How long the next request must wait for room in the windows (shares aside)."""
        timeline = self._timeline(now)
        return self._room(timeline.every, timeline.earliest) - now

    def spare(self, now: float) -> float | None:
        """How long from `now` until a request could take a slot with no client kept
        waiting (0: at once): None while clients queue, since background work goes behind
        them; else the wait for room in the windows."""
        return None if self._waiting() else max(0.0, self.delay(now))

    def _timeline(self, now: float) -> _Timeline:
        earliest = max(now, self._paused_until)
        if not self.enabled:
            return _Timeline(earliest, [])
        horizon = max(_padded(w.seconds) for w in self.windows)
        while self._slots:
            finished = self._slots[0].finished
            if finished is None or now - finished < horizon:
                break
            self._slots.popleft()
        # Finished slots are not always in order (requests end out of turn); sorting a few
        # hundred floats is cheap next to an HTTP request.
        slots = [(now if s.finished is None else s.finished, s.client) for s in self._slots]
        return _Timeline(earliest, slots)

    def _room(self, times: list[float], earliest: float) -> float:
        """When the windows next have room, not before `earliest`, which is at or after every
        one of `times`: so waiting until a full window's n-th latest time has left it frees
        room in it, and waiting longer for another window only frees more."""
        moment = earliest
        if self.enabled:
            for window in self.windows:
                span = _padded(window.seconds)
                if _recent(times, earliest, span) >= window.requests:
                    moment = max(moment, times[-window.requests] + span)
            if self.replicas() > 1:
                # Its share aside, this process's grants and those the others last held must
                # fit in the provider's limit together: a replica that used more than its share
                # before Redis went away may keep on holding it.
                for window, (others, until) in zip(self.full, self._elsewhere, strict=False):
                    room = window.requests - others
                    span = _padded(window.seconds)
                    if until > earliest and _recent(times, earliest, span) >= room:
                        moment = max(moment, min(until, times[-room] + span) if room > 0 else until)
        return moment

    def _weight(self, client: str) -> float:
        return self._weights.get(client, 1.0)

    def cap(self, requests: int, client: str) -> int:
        """The most of a window of `requests` that `client` may hold: all but the reserve,
        and at least one."""
        if client == ANONYMOUS.client:
            return requests
        return max(1, math.floor((1 - self.reserve) * requests + 1e-9))

    def _fair(
        self, line: _Timeline, client: str, moment: float, waiting: set[str], capped: bool
    ) -> bool:
        """Whether `client` may take a slot at `moment` as far as the shares (and, if
        `capped`, the reserve) go."""
        for window in self.windows:
            span = _padded(window.seconds)
            usage = {c: _recent(t, moment, span) for c, t in line.mine.items()}
            if capped and usage.get(client, 0) >= self.cap(window.requests, client):
                return False
            active = {c for c, n in usage.items() if n} | waiting | {client}
            if len(active) == 1:
                continue
            per_weight = window.requests / sum(self._weight(c) for c in active)
            if _below(usage.get(client, 0), per_weight * self._weight(client)):
                continue
            if any(
                _below(usage.get(other, 0), per_weight * self._weight(other))
                for other in active
                if other != client
            ):
                return False
        return True

    def _usage(self, line: _Timeline, client: str, moment: float) -> float:
        """The client's largest part of a window's limit in use, for its weight."""
        times = line.mine.get(client, [])
        return max(
            (
                _recent(times, moment, _padded(w.seconds)) / w.requests
                for w in self.windows
                if times
            ),
            default=0.0,
        ) / self._weight(client)

    def _moment(self, line: _Timeline, client: str, waiting: set[str], capped: bool) -> float:
        """When `client` may next take a slot (the windows' room and the shares), if nothing
        else happens meanwhile: the shares only change as slots leave windows."""
        moment = self._room(line.every, line.earliest)
        if not self.enabled:
            return moment
        while not self._fair(line, client, moment, waiting, capped):
            leaving = [
                line.every[i] + span
                for span in (_padded(w.seconds) for w in self.windows)
                if (i := bisect.bisect_right(line.every, moment - span)) < len(line.every)
            ]
            if not leaving:
                break  # nothing counts any more: every share is whole
            moment = max(math.nextafter(moment, math.inf), min(leaving))
        return moment

    def _next(
        self, line: _Timeline, queues: dict[str, list[_Waiter]], capped: bool = True
    ) -> tuple[_Waiter, float]:
        """The waiter served next, among the first of each client's queue, and its moment:
        the soonest, then the least used for its weight, then the first come."""
        waiting = set(queues)
        best: tuple[float, float, int] | None = None
        chosen: tuple[_Waiter, float] | None = None
        for client, queue in queues.items():
            moment = self._moment(line, client, waiting, capped)
            key = (moment, self._usage(line, client, moment), queue[0].seq)
            if best is None or key < best:
                best, chosen = key, (queue[0], moment)
        assert chosen is not None
        return chosen

    def _waiting(self) -> dict[str, list[_Waiter]]:
        """The queues of the waiters still there (one cancelled takes no slot)."""
        queues = {
            client: [w for w in queue if not w.turn.cancelled()]
            for client, queue in self._queues.items()
        }
        return {client: queue for client, queue in queues.items() if queue}

    def _plan(
        self, now: float, queues: dict[str, list[_Waiter]], *, shared: bool = True
    ) -> list[tuple[_Waiter, float]]:
        """The foreseen moment of every waiter in `queues`, in the order they will be
        served if nobody else comes; `shared=False`: as if the queues' clients shared the
        budget with nobody (those used slots still count), so kept nothing back for others."""
        line = self._timeline(now)
        if not shared:
            for client in list(line.mine):
                if client not in queues:
                    del line.mine[client]
        queues = {client: list(queue) for client, queue in queues.items()}
        plan = []
        while queues:
            waiter, moment = self._next(line, queues, capped=shared)
            plan.append((waiter, moment))
            line.add(waiter.client, moment)
            queues[waiter.client].pop(0)
            if not queues[waiter.client]:
                del queues[waiter.client]
        return plan

    def _refusal(self, now: float, waiter: _Waiter, moment: float) -> Refused:
        """Why `waiter` gets no slot: the budget, or its share of it."""
        by_share = False
        if self.reserve or any(c != waiter.client for c in self._weights):
            own = [w for w in self._queues.get(waiter.client, ()) if not w.turn.cancelled()]
            if waiter not in own:
                own.append(waiter)
            alone = dict(self._plan(now, {waiter.client: own}, shared=False))
            by_share = alone[waiter] <= waiter.deadline
        return Refused(max(0.0, moment - now), by_share)

    async def acquire(self, deadline: float) -> Slot | None:
        """A slot for the current `Share`'s client (see `take`), or None when it would come
        after `deadline`."""
        outcome = await self.take(deadline)
        return outcome if isinstance(outcome, Slot) else None

    async def take(self, deadline: float) -> Slot | Refused:
        """Wait for a slot, in arrival order within the client; Refused (and no slot taken)
        when it would come after `deadline`.

        The caller passes the slot to `done` when its request has finished (or failed).
        """
        share = current_share.get() or ANONYMOUS
        self._weights[share.client] = share.weight
        now = self.clock()
        waiter = _Waiter(share.client, deadline, next(self._arrivals))
        queues = self._waiting()
        queues.setdefault(share.client, []).append(waiter)
        plan = self._plan(now, queues)
        moment = next(m for w, m in plan if w is waiter)
        if plan[0][0] is waiter and moment <= now:
            return self._grant(share.client)
        if moment > deadline:
            self._forget_idle()
            return self._refusal(now, waiter, moment)
        self._queues.setdefault(share.client, deque()).append(waiter)
        self._hand_turn(now)
        try:
            while True:
                await waiter.turn
                if waiter.refused is not None:
                    return waiter.refused
                now = self.clock()
                line = self._timeline(now)
                chosen, moment = self._next(line, self._waiting())
                if chosen is not waiter:  # another came that goes first: wait for it
                    waiter.turn = asyncio.get_running_loop().create_future()
                    self._hand_turn(now)
                    continue
                if moment <= now:
                    return self._grant(share.client)
                if moment > deadline:
                    return self._refusal(now, waiter, moment)
                self._refuse_late(now)
                await self.sleep(moment - now)
        finally:
            self._leave(waiter)

    def _grant(self, client: str) -> Slot:
        slot = Slot(client)
        if self.enabled:
            self._slots.append(slot)
        return slot

    def _hand_turn(self, now: float) -> None:
        """Tell the waiter served next that its turn has come."""
        queues = self._waiting()
        if queues:
            chosen, _ = self._next(self._timeline(now), queues)
            if not chosen.turn.done():
                chosen.turn.set_result(True)

    def _refuse_late(self, now: float) -> None:
        """Refuse now, rather than at their deadline, the waiters behind the next whose
        slot can no longer come in time (the queue moves slower than foreseen)."""
        plan = self._plan(now, self._waiting())
        late = [(w, m) for w, m in plan[1:] if m > w.deadline]
        for waiter, moment in late:
            waiter.refused = self._refusal(now, waiter, moment)
            self._queues[waiter.client].remove(waiter)  # takes no slot
            if not waiter.turn.done():
                waiter.turn.set_result(False)

    def _leave(self, waiter: _Waiter) -> None:
        """`waiter` is served, refused or cancelled: the next in line goes first."""
        queue = self._queues.get(waiter.client)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
        self._forget_idle()
        self._hand_turn(self.clock())

    def _forget_idle(self) -> None:
        """Drop the empty queues and the weights of clients with nothing in the windows."""
        for client in [c for c, q in self._queues.items() if not q]:
            del self._queues[client]
        counted = {s.client for s in self._slots} | set(self._queues)
        for client in [c for c in self._weights if c not in counted]:
            del self._weights[client]

    def cancel(self, slot: Slot) -> None:
        """The slot's request was not sent after all: it counts nowhere."""
        if slot in self._slots:
            self._slots.remove(slot)
        self._forget_idle()
        self._hand_turn(self.clock())

    def done(self, slot: Slot) -> None:
        """The slot's request has finished: from now on it counts from this moment."""
        if slot.finished is None:
            slot.finished = self.clock()

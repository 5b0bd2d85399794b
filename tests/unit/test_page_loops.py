"""Whole-list reads end: a repeated position or too many pages is UPSTREAM_BAD_RESPONSE.

Every data source reads some lists whole (a parent's children, a batch of ids) page
after page through `DataSource.read_pages`. An upstream that hands back a position it
already gave would keep such a read going forever, and an endless list would keep it
reading; here each provider's loop meets such an upstream (httpx.MockTransport) and
must stop with an error, within `max_pages_per_read` requests. `asyncio.wait_for`
guards every read (the fakes suspend on each request, so it can cancel), so a regression
fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from itertools import count
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.datasources import source_class
from gateway.datasources.base import DataSource
from gateway.demo import DEMO_CREDENTIALS
from gateway.errors import UpstreamBadResponse
from gateway.pagination.connection import ConnectionArgs
from gateway.pagination.cursors import CursorCodec, binding_key
from gateway.pagination.positions import SeqPage
from gateway.pagination.sequential import paginate_sequential
from gateway.records import AnyRecord, Entity
from gateway.settings import ProviderSettings

GUARD_SECONDS = 10.0


class Fake:
    """A misbehaving upstream: every page is full and names a next position.

    `repeat`: the next position is always the same one (a loop); otherwise always new
    (an endless list).
    """

    def __init__(self, repeat: bool) -> None:
        self.repeat = repeat
        self.requests: list[httpx.Request] = []
        self._numbers: Iterator[int] = count(1)

    def next_position(self) -> str:
        return "c1" if self.repeat else f"c{next(self._numbers)}"

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0)  # a real suspension, so the guard's timeout can cancel a loop
        self.requests.append(request)
        path, method = request.url.path, request.method
        nxt = self.next_position()
        if path == "/v1/notes":  # hasteCRM list
            note = {"id": "note_1", "content": "x", "companyId": "comp_1"}
            return httpx.Response(200, json={"data": [note], "meta": {"cursor": {"next": nxt}}})
        if path == "/v1/contacts/search":  # hasteCRM search
            contact = {"id": "cont_1", "company": {"id": "comp_1"}}
            return httpx.Response(200, json={"data": [contact], "meta": {"cursor": {"next": nxt}}})
        if path == "/api/v1/queries" and method == "POST":  # Redivis
            return httpx.Response(200, json={"id": "q_1", "status": "completed"})
        if path == "/api/v1/queries/q_1/rows":
            headers = {"X-Redivis-Next-Page-Token": nxt}
            return httpx.Response(200, text=json.dumps({"id": "c1"}) + "\n", headers=headers)
        if path == "/v2/notes":  # Attio: always a full page, so always another
            attio_note = {"id": {"note_id": "n1"}, "parent_object": "people"}
            return httpx.Response(200, json={"data": [attio_note] * 50})
        if path == "/public/v2/contacts":  # RevyOps: `next` always set
            return httpx.Response(
                200, json={"count": 10**6, "next": "more", "results": [{"id": 1}]}
            )
        if path == "/api/contacts":  # BasicsOS: a total that never runs out
            return httpx.Response(
                200, json=[{"id": 1}], headers={"Content-Range": "items 0-0/100000000"}
            )
        return httpx.Response(404, json={})


def source(
    kind: str,
    fake: Callable[[httpx.Request], Coroutine[None, None, httpx.Response]],
    max_pages: int = 5,
) -> DataSource:
    settings = ProviderSettings.model_validate(
        {
            "name": kind,
            "kind": kind,
            "base_url": "http://upstream.test",
            "credentials": DEMO_CREDENTIALS[kind],
            "max_pages_per_read": max_pages,
            "rate_limit": False,
            "max_retries": 0,
        }
    )
    client = httpx.AsyncClient(base_url=settings.base_url, transport=httpx.MockTransport(fake))
    return source_class(kind)(settings, client, cache=False)


def guarded(read: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(read, GUARD_SECONDS))


READS: dict[str, Callable[[Any], Awaitable[list[AnyRecord]]]] = {
    "haste list": lambda s: s._listing(Entity.NOTE, {"company": "comp_1"}),
    "haste search": lambda s: s._search({"or": []}),
    "redivis query": lambda s: s._select(Entity.CONTACT, "id = 'c1'"),
    "attio notes": lambda s: s._notes_of("people", "p1"),
    "revyops contacts": lambda s: s._all(Entity.CONTACT, {"domain": "a.com"}),
    "basicsos rows": lambda s: s._matching("contacts", "companyId", ["1"]),
}
KINDS = {
    "haste list": "haste",
    "haste search": "haste",
    "redivis query": "redivis",
    "attio notes": "attio",
    "revyops contacts": "revyops",
    "basicsos rows": "basicsos",
}
POSITIONED = ["haste list", "haste search", "redivis query"]  # reads that follow tokens


def page_requests(fake: Fake) -> int:
    return sum(1 for r in fake.requests if r.method == "GET" or "search" in r.url.path)


@pytest.mark.parametrize("read", POSITIONED)
def test_a_repeated_position_ends_the_read(read: str) -> None:
    fake = Fake(repeat=True)
    with pytest.raises(UpstreamBadResponse) as raised:
        guarded(READS[read](source(KINDS[read], fake)))
    assert "repeated" in raised.value.message
    assert raised.value.extensions["provider"] == KINDS[read]
    assert raised.value.extensions["status"] == 200
    assert page_requests(fake) == 2  # the second page gave the first page's position again


@pytest.mark.parametrize("read", list(READS))
def test_a_read_stops_at_max_pages_per_read(read: str) -> None:
    fake = Fake(repeat=False)
    with pytest.raises(UpstreamBadResponse) as raised:
        guarded(READS[read](source(KINDS[read], fake, max_pages=4)))
    assert "max_pages_per_read" in raised.value.message
    assert raised.value.extensions["code"] == "UPSTREAM_BAD_RESPONSE"
    assert page_requests(fake) == 4


def test_a_list_that_ends_is_read_whole() -> None:
    pages = {None: ("a", "t1"), "t1": ("b", "t2"), "t2": ("c", None)}

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={"id": "q_1", "status": "completed"})
        row, token = pages[request.url.params.get("pageToken")]
        headers = {"X-Redivis-Next-Page-Token": token} if token else {}
        return httpx.Response(200, text=json.dumps({"id": row}) + "\n", headers=headers)

    redivis: Any = source("redivis", handler, max_pages=3)
    rows = guarded(redivis._select(Entity.CONTACT, "id = 'a'"))
    assert [r.remote_id for r in rows] == ["a", "b", "c"]


# --- the loop itself, over any chain of positions -------------------------------------------


@given(
    chain=st.lists(st.sampled_from(["a", "b", "c", "d", "e", "f"]), max_size=12),
    cap=st.integers(min_value=1, max_value=10),
)
def test_read_pages_reads_a_chain_until_it_ends_repeats_or_hits_the_cap(
    chain: list[str], cap: int
) -> None:
    """The chain None -> chain[0] -> chain[1] ... ends after its last position."""
    fake = Fake(repeat=False)
    reader = source("haste", fake, max_pages=cap)
    response = httpx.Response(200)
    fetched: list[str | None] = []

    async def fetch(position: str | None) -> tuple[list[int], str | None, httpx.Response]:
        fetched.append(position)
        index = len(fetched) - 1
        return [index], chain[index] if index < len(chain) else None, response

    first_repeat = next((i for i, p in enumerate(chain) if p in chain[:i]), None)
    pages = len(chain) + 1  # pages the chain has, when no position repeats
    # The read meets a repeat after page first_repeat + 1; the cap stops it after page `cap`.
    stop = min(cap, first_repeat + 1 if first_repeat is not None else pages)
    try:
        items = guarded(reader.read_pages(fetch, "things"))
    except UpstreamBadResponse as error:
        assert len(fetched) == stop
        if "repeated" in error.message:
            assert first_repeat == stop - 1
        else:
            assert stop == cap
            assert cap < pages
    else:
        assert first_repeat is None
        assert pages <= cap
        assert items == list(range(pages))
        assert fetched == [None, *chain]


# --- the Relay engine paging back through `previous` ---------------------------------------


class LoopingPrevious:
    """A cursor API whose `previous` always points at the same page, which it serves
    empty: paging back from it would go round forever."""

    max_request_size = 10
    has_previous = True
    can_reverse = True

    def __init__(self) -> None:
        self.requests = 0

    def key(self, item: int) -> str:
        return str(item)

    def valid_handle(self, handle: str) -> bool:
        return handle == "f"

    def valid_position(self, position: str) -> bool:
        return position in ("p", "q")

    async def open(self, reverse: bool, after_key: str | None) -> str:
        return "f"

    async def fetch(self, handle: str, position: str | None, limit: int) -> SeqPage[int]:
        await asyncio.sleep(0)
        self.requests += 1
        if position == "q":  # the page of the `before` edge: items 5.., previous "p"
            return SeqPage(list(range(5, 5 + limit)), None, "p")
        return SeqPage([], "q", "p")  # "p": always empty, always "p" before it


def test_the_engine_stops_when_previous_repeats() -> None:
    codec = CursorCodec(b"k")
    binding = binding_key("x")
    before = codec.encode(binding, {"h": "f", "k": "6", "i": 1, "c": "q"})
    api = LoopingPrevious()
    args = ConnectionArgs(last=5, before=before)
    with pytest.raises(UpstreamBadResponse) as raised:
        guarded(paginate_sequential(args, api=api, codec=codec, binding=binding, provider="x"))
    assert raised.value.extensions["provider"] == "x"
    assert api.requests < 10

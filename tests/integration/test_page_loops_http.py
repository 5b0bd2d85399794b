"""Over HTTP: a child list whose upstream repeats a cursor, or never ends, fails quickly.

A misbehaving hasteCRM-shaped server (not the emulator, which keeps its contract)
serves one company whose notes come in pages that always name a next cursor. The
gateway must answer UPSTREAM_BAD_RESPONSE for that field, after at most
`max_pages_per_read` requests, instead of paging forever.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from gateway.app import create_app
from gateway.servers import ServerThread
from gateway.settings import ProviderSettings, Settings

pytestmark = pytest.mark.integration

MAX_PAGES = 4
QUERY = """{ companies(provider: "loopy", first: 1) { edges { node {
  remoteId notes(first: 1) { edges { node { remoteId } } } } } } }"""


def loopy_upstream(calls: dict[str, int], repeat: bool) -> FastAPI:
    app = FastAPI()
    numbers = count(1)
    end = {"next": None, "previous": None, "hasMore": False}

    @app.get("/v1/companies")
    async def companies() -> dict[str, Any]:
        return {"data": [{"id": "comp_1", "name": "Loop Ltd"}], "meta": {"cursor": end}}

    @app.get("/v1/notes")
    async def notes(request: Request) -> dict[str, Any]:
        calls["notes"] += 1
        following = "c1" if repeat else f"c{next(numbers)}"
        note = {"id": f"note_{calls['notes']}", "content": "x", "companyId": "comp_1"}
        cursor = {"next": following, "previous": None, "hasMore": True}
        return {"data": [note], "meta": {"cursor": cursor}}

    return app


@pytest.fixture(params=[True, False], ids=["repeated-cursor", "endless"])
def setup(request: pytest.FixtureRequest) -> Iterator[tuple[httpx.Client, dict[str, int]]]:
    calls = {"notes": 0}
    with ServerThread(loopy_upstream(calls, repeat=request.param)) as upstream:
        provider = ProviderSettings(
            name="loopy",
            kind="haste",
            base_url=upstream.url,
            credentials={"token": "t"},
            rate_limit=False,
            max_pages_per_read=MAX_PAGES,
        )
        settings = Settings(
            providers=[provider], cache=False, cursor_secret="page-loops-secret-Lq8vB3nD"
        )
        with (
            ServerThread(create_app(settings)) as gateway,
            httpx.Client(base_url=gateway.url, timeout=20) as client,
        ):
            yield client, calls


def test_a_child_list_that_never_ends_fails_in_bounded_requests(
    setup: tuple[httpx.Client, dict[str, int]],
) -> None:
    client, calls = setup
    response = client.post("/graphql", json={"query": QUERY})
    assert response.status_code == 200
    body = response.json()
    (error,) = body["errors"]
    assert error["path"][-1] == "notes"
    assert error["extensions"]["code"] == "UPSTREAM_BAD_RESPONSE"
    assert error["extensions"]["provider"] == "loopy"
    assert error["extensions"]["status"] == 200
    assert 2 <= calls["notes"] <= MAX_PAGES

"""A Redivis query that keeps running, over HTTP: polls see its current state (never the read
cache) and stop after a bounded number, failing the read with UPSTREAM_TIMEOUT."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response

from gateway.datasources import redivis
from gateway.demo import demo_provider
from gateway.servers import ServerThread
from gateway.settings import Settings
from tests.support.clients import GraphQLClient
from tests.support.servers import serving

pytestmark = pytest.mark.integration

ROW = {"id": "person_000001", "first_name": "Ada", "last_name": "Lovelace"}
LIST = """{ contacts(provider: "redivis", first: 5, filter: {lastName: {eq: "Lovelace"}}) {
  edges { node { remoteId } } } }"""


@dataclass
class SlowQueries:
    """A stand-in Redivis whose one query completes after `finish_after` polls (None: never)."""

    finish_after: int | None = None
    polls: int = 0


def slow_redivis(state: SlowQueries) -> FastAPI:
    app = FastAPI()

    def resource(status: str) -> dict[str, Any]:
        return {"kind": "query", "id": "q1", "status": status, "outputNumRows": 1}

    @app.post("/api/v1/queries")
    async def run(request: Request) -> dict[str, Any]:
        return resource("running")

    @app.get("/api/v1/queries/q1")
    async def poll() -> dict[str, Any]:
        state.polls += 1
        done = state.finish_after is not None and state.polls >= state.finish_after
        return resource("completed" if done else "running")

    @app.get("/api/v1/queries/q1/rows")
    async def rows() -> Response:
        return Response(json.dumps(ROW) + "\n", media_type="application/x-ndjson")

    return app


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[GraphQLClient, SlowQueries]]:
    # Count-bounded, with no pause: the test does not depend on how fast time goes.
    monkeypatch.setattr(redivis, "POLL_SECONDS", 0.0)
    monkeypatch.setattr(redivis, "MAX_POLLS", 5)
    state = SlowQueries()
    with ServerThread(slow_redivis(state)) as upstream:
        provider = demo_provider("redivis", upstream.url).model_copy(update={"rate_limit": False})
        config = Settings(providers=[provider], cursor_secret="test-cursor-secret-kQ3vX8wZ")
        with serving(config) as client:  # the read cache is on
            yield client, state


def test_polls_see_the_query_finish(world):
    client, state = world
    state.finish_after = 3
    data = client.data(LIST)
    assert [e["node"]["remoteId"] for e in data["contacts"]["edges"]] == ["person_000001"]
    assert state.polls == 3  # a cached `running` would have hidden the completion


def test_a_query_that_never_finishes_fails_with_upstream_timeout(world):
    client, state = world
    body = client.post(LIST)
    error = body["errors"][0]
    assert error["extensions"]["code"] == "UPSTREAM_TIMEOUT"
    assert error["extensions"]["provider"] == "redivis"
    assert state.polls == 5

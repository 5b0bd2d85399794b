"""The commands a newcomer runs, as subprocesses: `crm-gateway emulate` and `serve --demo`."""

from __future__ import annotations

import httpx
import pytest

from gateway.demo import DEMO_CREDENTIALS, DEMO_PORTS, demo_kinds
from gateway.servers import free_port
from tests.support.servers import running, wait_for

pytestmark = pytest.mark.integration


def test_emulate_runs_one_emulator_on_the_given_port():
    port = free_port()
    with running("emulate", "revyops", "--port", str(port)) as process:
        stats = wait_for(f"http://127.0.0.1:{port}/_emulator/stats", process)
        assert stats.json()["requests"] == 0
        listing = httpx.get(
            f"http://127.0.0.1:{port}/public/v2/contacts",
            params={"client_id": "revyops-demo-client", "page_size": 5},
        )
        assert listing.status_code == 200
        assert len(listing.json()["results"]) == 5
        stats = httpx.get(f"http://127.0.0.1:{port}/_emulator/stats").json()
        assert stats["requests"] == 1


# The demo binds the emulators' fixed ports: one worker at a time (pytest-xdist).
@pytest.mark.xdist_group("demo-ports")
def test_serve_demo_answers_graphql_for_every_provider():
    port = free_port()
    output: list[str] = []
    with running("serve", "--demo", "--port", str(port), stderr=output) as process:
        graphiql = wait_for(f"http://127.0.0.1:{port}/graphql", process)
        assert graphiql.status_code == 200
        for kind in demo_kinds():
            wait_for(f"http://127.0.0.1:{DEMO_PORTS[kind]}/_emulator/stats", process)
        page = httpx.get(f"http://127.0.0.1:{port}/graphql", headers={"Accept": "text/html"})
        assert "graphiql" in page.text.lower()
        lists = " ".join(
            f'{k}: contacts(provider: "{k}", first: 2) {{ edges {{ node {{ id }} }} }}'
            for k in demo_kinds()
        )
        query = "{ providers { name } " + lists + " }"
        body = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}).json()
        assert "errors" not in body, body
        assert [p["name"] for p in body["data"]["providers"]] == demo_kinds()
        for kind in demo_kinds():
            assert len(body["data"][kind]["edges"]) == 2
    assert_says_where_everything_is(output[0], port)


def assert_says_where_everything_is(output: str, port: int) -> None:
    """One line per emulator (URL, demo credentials) and one for GraphiQL, not uvicorn's
    start-up lines six times."""
    lines = output.splitlines()
    for kind in demo_kinds():
        url = f"http://127.0.0.1:{DEMO_PORTS[kind]}"
        [line] = [line for line in lines if url in line]
        assert kind in line
        for key, value in DEMO_CREDENTIALS[kind].items():
            assert f"{key}={value}" in line
    [graphiql] = [line for line in lines if f"http://127.0.0.1:{port}/graphql" in line]
    assert "GraphiQL" in graphiql
    # The gateway's own uvicorn lines may stay; the emulators' five copies may not.
    assert output.count("Started server process") <= 1
    assert output.count("Application startup complete") <= 1


def test_emulate_revyops_can_require_its_api_key():
    port = free_port()
    with running("emulate", "revyops", "--port", str(port), "--require-api-key") as process:
        wait_for(f"http://127.0.0.1:{port}/_emulator/stats", process)
        url = f"http://127.0.0.1:{port}/public/v2/contacts"
        params: dict[str, str | int] = {"client_id": "revyops-demo-client", "page_size": 1}
        refused = httpx.get(url, params=params)
        assert (refused.status_code, refused.json()) == (
            403,
            {"detail": "Authentication credentials were not provided."},
        )
        answered = httpx.get(url, params=params, headers={"x-api-key": "revyops-demo-key"})
        assert answered.status_code == 200

"""A bounded mixed load against emulators with faults on: the gateway stays up, every answer
is well-formed GraphQL, no write is lost or doubled, and every failed write says honestly
whether it was applied.

The providers' documented limits are scaled up here (in the emulators and in the gateway's
limiter alike) so the run takes seconds, not minutes. Whether the limiter keeps under a limit
is not judged here: in one process sharing the GIL, when a request reaches the emulator is
luck. That claim is proven on a fake clock (tests/unit/test_limiter.py); here a 429 the
emulator sends is one more fault the gateway must answer well.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from emulators import EmulatorOptions, basicsos, revyops
from gateway.app import create_app
from gateway.demo import demo_provider
from gateway.providers import create_emulator
from gateway.servers import ServerThread
from gateway.settings import Settings

pytestmark = pytest.mark.integration

SCALE = 3
OPERATIONS = 1500
CONCURRENCY = 16
CREATE = """mutation($input: CreateContactInput!) {
  createContact(input: $input) { contact { id } userErrors { field message } } }"""
READS = [
    "query($p: String!) { contacts(provider: $p, first: 20) { edges { node { name } } } }",
    "query($p: String!) { contacts(provider: $p, last: 5) { edges { node { company { name } } } } }",
    "query($p: String!) { companies(provider: $p, first: 10) { totalCount edges { node { name } } } }",
]
FAULTS = {
    "error_rate": 0.05,
    "garbage_rate": 0.02,
    "timeout_rate": 0.01,
    "timeout_seconds": 1.5,
    "latency_ms": 2,
}


@pytest.fixture
def loaded(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setattr(revyops, "RATE_LIMIT", revyops.RATE_LIMIT * SCALE)
    monkeypatch.setattr(basicsos, "RATE_LIMIT", basicsos.RATE_LIMIT * SCALE)
    with (
        ServerThread(create_emulator("revyops", EmulatorOptions(rate_limits=True))) as rev,
        ServerThread(create_emulator("basicsos", EmulatorOptions(rate_limits=True))) as bos,
    ):
        for url in (rev.url, bos.url):
            httpx.post(f"{url}/_emulator/faults", json=FAULTS).raise_for_status()
        providers = [
            demo_provider("revyops", rev.url).model_copy(
                update={"rate_limits": [(10 * SCALE, 1.0)], "read_timeout": 1.0}
            ),
            demo_provider("basicsos", bos.url).model_copy(
                update={"rate_limits": [(180 * SCALE, 60.0)], "read_timeout": 1.0}
            ),
        ]
        with ServerThread(create_app(Settings(providers=providers))) as gateway:
            yield {"gateway": gateway.url, "revyops": rev.url, "basicsos": bos.url}


def _read(url: str, **options: Any) -> Any:
    """GET from an emulator that enforces its limits, waiting out a 429 (the gateway may
    have just spent the window)."""
    for _ in range(5):
        response = httpx.get(url, **options)
        if response.status_code != 429:
            response.raise_for_status()
            return response.json()
        time.sleep(float(response.headers.get("Retry-After", "1")))
    raise AssertionError(f"{url} kept answering 429")


def _store_emails(kind: str, url: str) -> list[str]:
    """Every contact email in the emulator's store, read straight from its API."""
    httpx.post(f"{url}/_emulator/faults", json={}).raise_for_status()
    if kind == "revyops":
        emails: list[str] = []
        page, more = 1, True
        while more:
            rows = _read(
                f"{url}/public/v2/contacts",
                params={"client_id": "revyops-demo-client", "page_size": 1000, "page": page},
            )
            emails += [r["email"] for r in rows["results"]]
            page, more = page + 1, bool(rows["next"])
        return emails
    rows = _read(
        f"{url}/api/contacts",
        params={"range": json.dumps([0, 100_000])},
        headers={"Authorization": "Bearer bos_crm_demo_admin"},
    )
    return [r["email"] for r in rows]


def test_mixed_load_with_faults(loaded):
    rng = random.Random(7)
    serial = itertools.count()
    writes: list[tuple[str, str, dict[str, Any]]] = []

    async def run() -> list[httpx.Response]:
        limit = asyncio.Semaphore(CONCURRENCY)
        async with httpx.AsyncClient(
            base_url=loaded["gateway"], timeout=60, limits=httpx.Limits(keepalive_expiry=2.0)
        ) as client:

            async def one(i: int) -> httpx.Response:
                provider = rng.choice(["revyops", "basicsos"])
                if rng.random() < 0.1:
                    address = f"load.{next(serial)}@example.net"
                    payload = {
                        "query": CREATE,
                        "variables": {"input": {"provider": provider, "email": address}},
                    }
                else:
                    address = ""
                    payload = {"query": rng.choice(READS), "variables": {"p": provider}}
                async with limit:
                    response = await client.post("/graphql", json=payload)
                if address:
                    writes.append((provider, address, response.json()))
                return response

            return await asyncio.gather(*(one(i) for i in range(OPERATIONS)))

    responses = asyncio.run(run())
    assert all(r.status_code == 200 for r in responses)
    for response in responses:
        body = response.json()
        assert "data" in body
        for error in body.get("errors", []):
            assert error["extensions"]["code"] not in ("INTERNAL_SERVER_ERROR",)
            if error["extensions"]["code"].startswith("UPSTREAM"):
                assert error["extensions"]["provider"] in ("revyops", "basicsos")
    assert any("errors" in r.json() for r in responses)  # the faults did bite
    assert sum("errors" not in r.json() for r in responses) > OPERATIONS * 0.7

    stored = {kind: _store_emails(kind, loaded[kind]) for kind in ("revyops", "basicsos")}
    for provider, address, body in writes:
        copies = stored[provider].count(address)
        assert copies <= 1, f"{address} doubled"
        result = (body.get("data") or {}).get("createContact")
        if result and result["contact"]:
            assert copies == 1, f"acknowledged {address} lost"
        else:
            outcome = body["errors"][0]["extensions"].get("writeOutcome")
            if outcome == "NOT_APPLIED":
                assert copies == 0, f"{address} applied though reported not applied"
            else:
                assert outcome == "UNKNOWN"

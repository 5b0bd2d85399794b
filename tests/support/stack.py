"""The whole stack in process: the gateway's app over the emulators' apps, no sockets.

The gateway's provider clients reach each emulator through `httpx.ASGITransport` (the app
factory's `transports`), and tests reach the gateway the same way: no ports, no threads, and
the speed of a unit test. The emulators hold less data than the demo's so a full walk of a
connection stays a few requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from emulators import EmulatorOptions
from gateway.app import create_app
from gateway.demo import demo_provider
from gateway.providers import KINDS, create_emulator
from gateway.settings import ProviderSettings, Settings
from tests.support.knowledge import remote_ids as read_remote_ids

SMALL = EmulatorOptions(rate_limits=False, companies=30, contacts=90, deals=40, notes=50)
SECRET = "stack-cursor-secret-Vb7nR4tY"


def emulator_url(kind: str) -> str:
    # Any host will do: ASGITransport hands the request to the app whatever it names.
    return f"http://{kind}.emulator"


def emulator_client(
    app: FastAPI, kind: str, headers: Mapping[str, str] | None = None
) -> httpx.AsyncClient:
    """A client of an in-process emulator, sending `headers` (its credentials) each time."""
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url=emulator_url(kind), headers=headers)


@dataclass
class Stack:
    """A running gateway over in-process emulators, and clients to both."""

    emulators: dict[str, FastAPI]
    app: FastAPI
    http: httpx.AsyncClient
    direct: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code < 500, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = await self.post(query, variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    async def reset(self, kind: str) -> None:
        response = await self.direct[kind].post("/_emulator/reset")
        assert response.status_code == 200


@asynccontextmanager
async def running_stack(
    kinds: Iterable[str] = KINDS,
    *,
    options: EmulatorOptions = SMALL,
    extra: Iterable[ProviderSettings] = (),
    **settings: Any,
) -> AsyncIterator[Stack]:
    """The gateway (with its lifespan run) over one fresh emulator of each of `kinds`; `extra`
    providers are more instances of those kinds, named as they like, on the same emulators."""
    kinds = tuple(kinds)
    emulators = {kind: create_emulator(kind, options) for kind in kinds}
    providers = [demo_provider(kind, emulator_url(kind), rate_limit=False) for kind in kinds]
    providers += list(extra)
    transports: dict[str, httpx.AsyncBaseTransport] = {
        p.name: httpx.ASGITransport(app=emulators[p.kind]) for p in providers
    }
    app = create_app(
        Settings(providers=providers, cursor_secret=SECRET, **settings), transports=transports
    )
    async with AsyncExitStack() as exits:
        await exits.enter_async_context(app.router.lifespan_context(app))
        http = await exits.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://gateway", timeout=30
            )
        )
        direct = {
            kind: await exits.enter_async_context(emulator_client(emulators[kind], kind))
            for kind in kinds
        }
        yield Stack(emulators, app, http, direct)


class _SyncASGI(httpx.BaseTransport):
    """A synchronous transport to an app in process, for synchronous readers (run in a
    thread: each request runs on its own event loop)."""

    def __init__(self, app: FastAPI) -> None:
        self.transport = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def send() -> httpx.Response:
            response = await self.transport.handle_async_request(request)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=content)

        return asyncio.run(send())


async def remote_ids(app: FastAPI, kind: str, entity: str) -> list[str]:
    """The emulator's data as the provider's knowledge reads it, from the app in process."""
    with httpx.Client(transport=_SyncASGI(app), base_url=emulator_url(kind)) as client:
        return await asyncio.to_thread(read_remote_ids, kind, client, entity)

"""Clients of the gateway and of the emulators, over HTTP."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx


def answer(body: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL response without its `extensions` (every answer reports its cost there)."""
    return {k: v for k, v in body.items() if k != "extensions"}


class GraphQLClient:
    """POSTs GraphQL to the gateway over HTTP."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=30)

    def post(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.http.post("/graphql", json={"query": query, "variables": variables or {}})
        assert response.status_code < 500, response.text
        body: dict[str, Any] = response.json()
        return body

    def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = self.post(query, variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data


def emulator_requests(url: str) -> int:
    """How many API requests the emulator at `url` has answered."""
    count: int = httpx.get(f"{url}/_emulator/stats").json()["requests"]
    return count


def cost(
    emulators: Mapping[str, str], kind: str, client: GraphQLClient, query: str, **variables: Any
) -> tuple[dict[str, Any], int]:
    """The answer, and how many requests the provider's emulator received for it."""
    before = emulator_requests(emulators[kind])
    data = client.data(query, variables)
    return data, emulator_requests(emulators[kind]) - before

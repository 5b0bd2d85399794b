"""A fake of the layer below one of the upstream's layers, so each is tested alone."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import httpx

from gateway.calls import Call


class Below:
    """Answers each call with the next of `outcomes` (a response, or an exception raised);
    the calls it got in `calls`. `during` runs inside each call, while it is sent."""

    def __init__(self, *outcomes: httpx.Response | BaseException) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[Call] = []
        self.during: list[Any] = []

    async def send(self, call: Call) -> httpx.Response:
        self.calls.append(call)
        for probe in self.during:
            probe()
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def ok(status: int = 200, **headers: str) -> httpx.Response:
    """An answer as the wire hands it up (with the request it answers)."""
    request = httpx.Request("GET", "http://crm.test/x")
    return httpx.Response(
        status, json={"detail": f"said {status}"}, headers=headers, request=request
    )


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """The coroutine's result, or the exception it raised (returned, not raised)."""

    async def outcome() -> Any:
        try:
            return await coroutine
        except BaseException as error:  # cancellation too: tests look at what was raised
            return error

    return asyncio.run(outcome())

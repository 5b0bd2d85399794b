"""The request on the wire: built by the provider's `httpx.AsyncClient` and sent within the
call's deadline, with its span and metrics; a transport failure becomes the gateway's error.

Two layers of the upstream: `Sendable`, near the top, refuses what httpx cannot build
before it takes a retry or a limiter slot; `Wire`, at the bottom, sends.
"""

from __future__ import annotations

import time

import httpx

from gateway import metrics
from gateway.calls import Call, Clock, Layer
from gateway.errors import RequestNotSendable, UpstreamTimeout, UpstreamUnavailable


class Sendable:
    """The layer that refuses a request httpx cannot build (a URL past its length limit, from
    long filter values), before it spends a limiter slot."""

    def __init__(self, below: Layer, client: httpx.AsyncClient, *, provider: str) -> None:
        self.below = below
        self.client = client
        self.provider = provider

    async def send(self, call: Call) -> httpx.Response:
        try:
            self.client.build_request(call.method, call.path, params=call.params)
        except httpx.InvalidURL:
            raise RequestNotSendable(
                f"the request to {self.provider} would need a URL longer than HTTP clients "
                "allow; narrow the filter (fewer or shorter values).",
                provider=self.provider,
            ) from None
        return await self.below.send(call)


class Wire:
    """The bottom layer: sends the call with `client`, each try given the time left before
    the call's deadline (at most the client's own timeouts). Its answer is handed back
    whatever its status; a timeout or an unreachable host is raised as `UpstreamTimeout` or
    `UpstreamUnavailable`, saying whether the request surely never reached the provider."""

    def __init__(
        self, client: httpx.AsyncClient, *, provider: str, clock: Clock = time.monotonic
    ) -> None:
        self.client = client
        self.provider = provider
        self.clock = clock

    async def send(self, call: Call) -> httpx.Response:
        left = max(0.001, call.deadline - self.clock())
        try:
            with metrics.upstream_request(self.provider, call.method, call.path) as sent:
                response = await self.client.request(
                    call.method,
                    call.path,
                    params=call.params,
                    json=call.json_body,
                    headers=sent.headers,
                    timeout=httpx.Timeout(
                        min(left, self.client.timeout.read or left),
                        connect=min(left, self.client.timeout.connect or left),
                    ),
                )
                sent.status = response.status_code
        except httpx.TimeoutException as error:
            raise UpstreamTimeout(
                f"{self.provider} did not answer in time.",
                provider=self.provider,
                not_applied=isinstance(error, httpx.ConnectTimeout | httpx.PoolTimeout),
            ) from None
        except httpx.TransportError as error:
            raise UpstreamUnavailable(
                f"{self.provider} is unreachable ({type(error).__name__}).",
                provider=self.provider,
                not_applied=isinstance(error, httpx.ConnectError),
            ) from None
        return response

"""The HTTP client each data source talks through: timeouts and error normalisation.

One `httpx.AsyncClient` per provider instance, opened in the app's lifespan.
Every failure leaves here as an `UpstreamError` carrying the provider name and
status; nothing here ever puts a credential or a full URL (which may hold a
`client_id`) into a message.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from gateway.errors import (
    UpstreamBadResponse,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
    upstream_error_for_status,
)
from gateway.settings import ProviderSettings


@dataclass(frozen=True)
class ClientAuth:
    """How a provider wants its credentials: headers and/or query parameters."""

    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)


def open_client(settings: ProviderSettings, auth: ClientAuth) -> httpx.AsyncClient:
    """The long-lived client for one provider instance."""
    return httpx.AsyncClient(
        base_url=settings.base_url,
        headers={"Accept": "application/json", **auth.headers},
        params=dict(auth.params),
        timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
        limits=httpx.Limits(
            max_connections=settings.max_connections,
            max_keepalive_connections=settings.max_connections,
        ),
        follow_redirects=False,
    )


ErrorMessage = Callable[[Any], str | None]


class Upstream:
    """Sends requests for one provider instance and turns failures into UpstreamErrors."""

    def __init__(self, provider: str, client: httpx.AsyncClient, error_message: ErrorMessage):
        self.provider = provider
        self.client = client
        self._error_message = error_message

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        ok_statuses: tuple[int, ...] = (),
    ) -> httpx.Response:
        """The response, or an UpstreamError (statuses in `ok_statuses` pass through)."""
        try:
            response = await self.client.request(method, path, params=params, json=json_body)
        except httpx.TimeoutException:
            raise UpstreamTimeout(
                f"{self.provider} did not answer in time.", provider=self.provider
            ) from None
        except httpx.TransportError as error:
            raise UpstreamUnavailable(
                f"{self.provider} is unreachable ({type(error).__name__}).", provider=self.provider
            ) from None
        if response.status_code >= 400 and response.status_code not in ok_statuses:
            raise self._status_error(response)
        return response

    def _status_error(self, response: httpx.Response) -> UpstreamError:
        status = response.status_code
        detail = None
        try:
            detail = self._error_message(response.json())
        except (ValueError, TypeError, KeyError, AttributeError):
            detail = None
        message = f"{self.provider} answered {status}" + (f": {detail}" if detail else ".")
        return upstream_error_for_status(status, message, provider=self.provider)

    def json(self, response: httpx.Response) -> Any:
        """The body as JSON, or UpstreamBadResponse."""
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise self.bad_response("the body is not valid JSON", response) from None

    def bad_response(self, what: str, response: httpx.Response | None = None) -> UpstreamError:
        status = response.status_code if response is not None else None
        return UpstreamBadResponse(
            f"{self.provider} sent an unusable response: {what}.",
            provider=self.provider,
            status=status,
        )

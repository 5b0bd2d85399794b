"""The HTTP client each data source talks through: timeouts and error normalisation.

One `httpx.AsyncClient` per provider instance, opened in the app's lifespan.
Every failure leaves here as an `UpstreamError` carrying the provider name and
status; nothing here ever puts a credential or a full URL (which may hold a
`client_id`) into a message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from gateway.errors import (
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRateLimited,
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

# Above this a number is milliseconds since the epoch (Redivis), not seconds.
_EPOCH_MILLIS = 10**10
# Above this (and below the millisecond range) a number is Unix seconds, not a delay.
_EPOCH_SECONDS = 10**9


def seconds_until(value: str | None, now: float | None = None) -> float | None:
    """How long a `Retry-After` or `X-RateLimit-Reset` value says to wait, in seconds.

    Providers say it three ways: delay seconds (`120`), an HTTP date (Attio),
    or an instant as Unix seconds (hasteCRM's reset) or milliseconds (Redivis).
    """
    if value is None or not value.strip():
        return None
    now = time.time() if now is None else now
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(text).timestamp() - now)
        except (TypeError, ValueError, IndexError):
            return None
    if number >= _EPOCH_MILLIS:
        return max(0.0, number / 1000 - now)
    if number >= _EPOCH_SECONDS:
        return max(0.0, number - now)
    return max(0.0, number)


@dataclass
class RateLimitState:
    """What the provider's last rate-limit headers said (none: unknown)."""

    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None  # Unix time

    def update(self, headers: httpx.Headers, now: float | None = None) -> None:
        now = time.time() if now is None else now
        limit, remaining = headers.get("X-RateLimit-Limit"), headers.get("X-RateLimit-Remaining")
        if limit and limit.strip().isdigit():
            self.limit = int(limit)
        if remaining and remaining.strip().isdigit():
            self.remaining = int(remaining)
        wait = seconds_until(headers.get("X-RateLimit-Reset"), now)
        if wait is not None:
            self.reset_at = now + wait


class Upstream:
    """Sends requests for one provider instance and turns failures into UpstreamErrors."""

    def __init__(self, provider: str, client: httpx.AsyncClient, error_message: ErrorMessage):
        self.provider = provider
        self.client = client
        self._error_message = error_message
        self.rate_limit = RateLimitState()

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
        self.rate_limit.update(response.headers)
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
        if status == 429:
            wait = seconds_until(response.headers.get("Retry-After"))
            if wait is not None:
                message += f" Retry after {wait:.1f} s."
            return UpstreamRateLimited(message, provider=self.provider, retry_after=wait)
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

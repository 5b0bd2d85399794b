"""What a provider's answer means: an HTTP error status as the gateway's error, and how
long the provider said to wait.

Nothing here ever puts a credential or a full URL (which may hold a `client_id`) into a
message: only the provider's name, the status and the provider's own error message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from gateway.calls import Call, Layer
from gateway.errors import UpstreamError, UpstreamRateLimited, upstream_error_for_status

# A provider's error body -> its message for people, if it has one.
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


class Answers:
    """The layer that raises, for an answer of status 400 or more (other than the call's
    `ok_statuses`), the `UpstreamError` it stands for, with the provider's own message
    (`error_message` finds it in the body)."""

    def __init__(self, below: Layer, *, provider: str, error_message: ErrorMessage) -> None:
        self.below = below
        self.provider = provider
        self.error_message = error_message

    async def send(self, call: Call) -> httpx.Response:
        response = await self.below.send(call)
        if response.status_code >= 400 and response.status_code not in call.ok_statuses:
            raise self.error(response)
        return response

    def error(self, response: httpx.Response) -> UpstreamError:
        status = response.status_code
        detail, body = None, None
        try:
            body = response.json()
            detail = self.error_message(body)
        except (ValueError, TypeError, KeyError, AttributeError):
            detail = None
        message = f"{self.provider} answered {status}" + (f": {detail}" if detail else ".")
        if status == 429:
            wait = seconds_until(response.headers.get("Retry-After"))
            if wait is not None:
                message += f" Retry after {wait:.1f} s."
            return UpstreamRateLimited(
                message, provider=self.provider, status=status, retry_after=wait, body=body
            )
        return upstream_error_for_status(status, message, provider=self.provider, body=body)

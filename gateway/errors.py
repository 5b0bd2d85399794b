"""The gateway's errors, and the one place that maps them to GraphQL `extensions`.

    class                             extensions.code
    GatewayError                      GATEWAY_ERROR
    ├── BadUserInput                  BAD_USER_INPUT        (names the argument)
    ├── InvalidInput                  BAD_USER_INPUT        (a write refused: userErrors)
    ├── NotFound                      NOT_FOUND
    ├── Unsupported                   UNSUPPORTED           (provider can't do it)
    ├── Unauthenticated               UNAUTHENTICATED       (HTTP 401: no valid credentials)
    │   └── CredentialsExpired        UNAUTHENTICATED       (a subscription outlived its token)
    ├── Forbidden                     FORBIDDEN             (the client lacks the scope)
    ├── OperationTooCostly            OPERATION_TOO_COSTLY  (+ estimated, limit)
    ├── TooManySubscriptions          TOO_MANY_SUBSCRIPTIONS (+ limit)
    ├── SubscriptionsOff              SUBSCRIPTIONS_DISABLED (`subscriptions = false`)
    └── UpstreamError                 UPSTREAM_ERROR        (+ provider, status)
        ├── UpstreamAuthError         UPSTREAM_AUTH         (credentials refused)
        ├── UpstreamNotFound          NOT_FOUND
        ├── UpstreamRejected          UPSTREAM_BAD_REQUEST  (provider said 4xx)
        │   └── RequestNotSendable*   UPSTREAM_BAD_REQUEST  (e.g. a URL too long to send)
        ├── UpstreamRateLimited       UPSTREAM_RATE_LIMITED
        │   └── NoRateLimitSlot*      UPSTREAM_RATE_LIMITED (no slot before the deadline)
        │       └── ClientRateLimited* CLIENT_RATE_LIMITED  (+ retryAfter: the client's
        │                                                   share of it is spent)
        ├── UpstreamTimeout           UPSTREAM_TIMEOUT
        ├── UpstreamUnavailable       UPSTREAM_UNAVAILABLE  (connection, 5xx)
        │   └── CircuitOpen*          UPSTREAM_UNAVAILABLE  (its breaker is open)
        ├── UpstreamBadResponse       UPSTREAM_BAD_RESPONSE (not JSON, wrong shape)
        └── UpstreamNotSent           UPSTREAM_ERROR        (base of the * classes: never
                                                            sent, never retried)

Graphql-core copies an exception's `extensions` attribute onto the GraphQL
error it raises, so each class only has to say its code. Anything else a
resolver raises is a bug: the schema masks it as INTERNAL_SERVER_ERROR and
logs it.
"""

from __future__ import annotations

import math
from typing import Any


class GatewayError(Exception):
    """Base of every error the gateway means to show a client."""

    code = "GATEWAY_ERROR"

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self._extensions = {k: v for k, v in extensions.items() if v is not None}

    @property
    def extensions(self) -> dict[str, Any]:
        return {"code": self.code, **self._extensions}

    def add(self, **extensions: Any) -> None:
        """More context for the client, e.g. whether a failed write was applied."""
        self._extensions.update({k: v for k, v in extensions.items() if v is not None})


class BadUserInput(GatewayError):
    """A client argument is wrong; `argument` names it."""

    code = "BAD_USER_INPUT"

    def __init__(self, message: str, *, argument: str | None = None) -> None:
        super().__init__(message, argument=argument)
        self.argument = argument


class NotFound(GatewayError):
    code = "NOT_FOUND"


class Unsupported(GatewayError):
    """The provider cannot do what was asked (no such entity, write, order...)."""

    code = "UNSUPPORTED"

    def __init__(
        self, message: str, *, provider: str | None = None, parents: int | None = None
    ) -> None:
        super().__init__(message, provider=provider, parents=parents)


class Unauthenticated(GatewayError):
    """The request carries no valid credentials; `invalid_token` when it carried some.

    The message never says which part failed.
    """

    code = "UNAUTHENTICATED"

    def __init__(self, *, invalid_token: bool) -> None:
        super().__init__("invalid or missing credentials")
        self.invalid_token = invalid_token


class CredentialsExpired(Unauthenticated):
    """The token a subscription was opened with has expired: it ends with this error."""

    def __init__(self) -> None:
        super().__init__(invalid_token=True)
        self.message = "the token expired: subscribe again with a fresh one"
        self.args = (self.message,)


class Forbidden(GatewayError):
    """The client is known but may not do this (a write without the `write` scope)."""

    code = "FORBIDDEN"


class OperationTooCostly(GatewayError):
    """The operation is estimated to send more upstream requests than one may."""

    code = "OPERATION_TOO_COSTLY"


class TooManySubscriptions(GatewayError):
    """The client holds `max_subscriptions_per_client` subscriptions open already."""

    code = "TOO_MANY_SUBSCRIPTIONS"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"at most {limit} subscriptions may be open at once per client: stop one first.",
            limit=limit,
        )


class SubscriptionsOff(GatewayError):
    """A subscription sent to a gateway whose `subscriptions` setting is off."""

    code = "SUBSCRIPTIONS_DISABLED"


class InvalidInput(GatewayError):
    """A write the provider (or the gateway, before sending) refused as invalid.

    Mutations turn it into `userErrors`: each item a field path and a message.
    """

    code = "BAD_USER_INPUT"

    def __init__(self, problems: list[tuple[list[str], str]], *, provider: str | None = None):
        super().__init__("; ".join(m for _, m in problems) or "invalid input", provider=provider)
        self.problems = problems


class UpstreamError(GatewayError):
    """A provider call failed; carries the provider instance name and HTTP status, and how
    long the provider said to wait before the next try (`retry_after`, seconds) when it did."""

    code = "UPSTREAM_ERROR"

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        body: Any = None,
        not_applied: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, status=status)
        self.provider = provider
        self.status = status
        self.body = body  # the provider's error body, parsed, when it sent JSON
        self.retry_after = retry_after
        # Whether the request surely never took effect (refused, or never sent): a failed
        # write with `applied=False` can be sent again without doubling. Unsaid: a 4xx
        # answer (other than 408) was refused, anything else may have been applied.
        if not_applied is None:
            not_applied = status is not None and 400 <= status < 500 and status != 408
        self.not_applied = not_applied


class UpstreamAuthError(UpstreamError):
    code = "UPSTREAM_AUTH"


class UpstreamNotFound(UpstreamError):
    code = "NOT_FOUND"


class UpstreamRejected(UpstreamError):
    code = "UPSTREAM_BAD_REQUEST"


class UpstreamRateLimited(UpstreamError):
    code = "UPSTREAM_RATE_LIMITED"


class UpstreamTimeout(UpstreamError):
    code = "UPSTREAM_TIMEOUT"


class UpstreamUnavailable(UpstreamError):
    code = "UPSTREAM_UNAVAILABLE"


class UpstreamBadResponse(UpstreamError):
    code = "UPSTREAM_BAD_RESPONSE"


class UpstreamNotSent(UpstreamError):
    """The gateway never sent the request: nothing was applied, and trying again at once
    would only meet the same refusal, so it is never retried.

    Each subclass also derives from the error its client sees (its `code`).
    """

    def __init__(self, message: str, *, provider: str) -> None:
        super().__init__(message, provider=provider, status=None, not_applied=True)


class CircuitOpen(UpstreamNotSent, UpstreamUnavailable):
    """The provider has been failing and its circuit breaker is open."""


class NoRateLimitSlot(UpstreamNotSent, UpstreamRateLimited):
    """The rate limiter has no slot for the request before its deadline."""


class ClientRateLimited(NoRateLimitSlot):
    """The client has spent its share of the provider's budget (others are using theirs)
    and its next slot would come after the deadline; `retryAfter` (seconds) says when it
    is foreseen."""

    code = "CLIENT_RATE_LIMITED"

    def __init__(self, message: str, *, provider: str, retry_after: float) -> None:
        super().__init__(message, provider=provider)
        self.retry_after = retry_after
        # Rounded up to a tenth: a slot a few milliseconds out must not read as "now".
        self.add(retryAfter=max(0.1, math.ceil(round(retry_after * 10, 6)) / 10))


class RequestNotSendable(UpstreamNotSent, UpstreamRejected):
    """The request cannot be put on the wire (e.g. its URL is too long): the client's
    input has to change, so it counts as a rejection, never as the provider failing."""


def upstream_error_for_status(
    status: int, message: str, *, provider: str, body: Any = None
) -> UpstreamError:
    """The error class an upstream HTTP status stands for; `body`: the answer, parsed."""
    cls: type[UpstreamError] = UpstreamRejected
    if status in (401, 403):
        cls = UpstreamAuthError
    elif status == 404:
        cls = UpstreamNotFound
    elif status == 429:
        cls = UpstreamRateLimited
    elif status in (408, 504):
        cls = UpstreamTimeout
    elif status >= 500:
        cls = UpstreamUnavailable
    return cls(message, provider=provider, status=status, body=body)

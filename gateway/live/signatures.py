"""How providers sign their webhook deliveries, and the check of each scheme.

A scheme is declared by the provider (`gateway.datasources.webhooks.WebhookApi.signature`)
and checked here against the secret of the webhook the gateway registered. A failed check
raises `BadSignature`, whose message says what was wrong and never holds the secret or the
expected signature.
"""

from __future__ import annotations

import hashlib
import hmac
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass


class BadSignature(Exception):
    """The delivery is not signed with the webhook's secret (the message says why)."""


def hex_hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class Signature(ABC):
    """One provider's signature scheme, carried in the request header `header`."""

    header: str

    @abstractmethod
    def verify(self, headers: Mapping[str, str], body: bytes, secret: str, now: float) -> None:
        """Return if `body` was signed with `secret` (and in time, at Unix time `now`), else
        raise BadSignature."""

    def _given(self, headers: Mapping[str, str]) -> str:
        value = headers.get(self.header)
        if not value:
            raise BadSignature(f"the {self.header} header is missing")
        return value.strip()


@dataclass(frozen=True)
class BodyHmac(Signature):
    """The hex HMAC-SHA256 of the raw body (Attio's `Attio-Signature`). It holds no time, so
    a replay cannot be told from the first delivery by its signature."""

    header: str

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str, now: float) -> None:
        if not hmac.compare_digest(self._given(headers).lower(), hex_hmac(secret, body)):
            raise BadSignature(f"the {self.header} signature does not match the body")


@dataclass(frozen=True)
class TimestampedHmac(Signature):
    """`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` (hasteCRM's
    `X-Haste-Signature`); a `t` more than `tolerance` seconds from the gateway's clock is
    refused, so a captured delivery cannot be replayed later. Several `v1` may come (a
    provider rolling its secret): one matching is enough."""

    header: str
    tolerance: float = 300.0

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str, now: float) -> None:
        stamp, signatures = self._parts(self._given(headers))
        expected = hex_hmac(secret, stamp.encode() + b"." + body)
        if not any(hmac.compare_digest(given.lower(), expected) for given in signatures):
            raise BadSignature(f"the {self.header} signature does not match the body")
        if abs(now - int(stamp)) > self.tolerance:
            raise BadSignature(
                f"the {self.header} timestamp is more than {self.tolerance:g} s from the "
                "gateway's clock"
            )

    def _parts(self, value: str) -> tuple[str, list[str]]:
        stamp, signatures = None, []
        for part in value.split(","):
            key, _, item = part.strip().partition("=")
            if key == "t":
                stamp = item
            elif key == "v1":
                signatures.append(item)
        if not (stamp and len(stamp) <= 12 and stamp.isascii() and stamp.isdigit() and signatures):
            raise BadSignature(f"the {self.header} header is not t=<unix seconds>,v1=<hex>")
        return stamp, signatures

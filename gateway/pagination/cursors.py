"""The gateway's opaque cursors.

A cursor is base64url of a MAC and a small JSON payload holding the format
version, a hash binding the cursor to its query (provider, entity, filter,
order) and a position. A cursor from another query, tampered with, or garbage
is a BAD_USER_INPUT naming the argument.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from functools import lru_cache
from typing import Any

from gateway.errors import BadUserInput

CURSOR_VERSION = 1
_MAC_BYTES = 12


def binding_key(*parts: object) -> str:
    """A short, stable hash of what a cursor is bound to (provider, entity, filter, order)."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class CursorCodec:
    """Encodes and checks the gateway's opaque cursors."""

    def __init__(self, secret: bytes, *, remembered: int = 8192) -> None:
        self._secret = secret
        # A page served again hands out the same cursors: remember the latest few thousand
        # rather than sign each again (JSON, HMAC and base64 per edge).
        self._encoded = lru_cache(maxsize=remembered)(self._encode)

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, binding: str, position: dict[str, Any]) -> str:
        items = tuple(position.items())
        try:
            return self._encoded(binding, items)
        except TypeError:  # a value that cannot be a cache key (a list): sign it afresh
            return self._encode(binding, items)

    def _encode(self, binding: str, position: tuple[tuple[str, Any], ...]) -> str:
        payload = json.dumps(
            {"v": CURSOR_VERSION, "b": binding, "p": dict(position)}, separators=(",", ":")
        ).encode()
        return base64.urlsafe_b64encode(self._mac(payload) + payload).rstrip(b"=").decode()

    def decode(self, cursor: str, binding: str, argument: str) -> dict[str, Any]:
        """The position inside `cursor`, or BadUserInput naming `argument`."""
        bound, position = self.open(cursor, argument)
        if bound != binding:
            raise BadUserInput(
                f"`{argument}` belongs to another query (provider, type, filter or order "
                "differ); a cursor only works with the query that returned it.",
                argument=argument,
            )
        return position

    def open(self, cursor: str, argument: str) -> tuple[str, dict[str, Any]]:
        """The binding and position of a cursor this codec signed, whatever its query (a
        cursor held inside another, signed one, is kept as these); else BadUserInput."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            raise BadUserInput(f"`{argument}` is not a valid cursor.", argument=argument) from None
        mac, payload = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
        if len(raw) <= _MAC_BYTES or not hmac.compare_digest(mac, self._mac(payload)):
            raise BadUserInput(
                f"`{argument}` is not a cursor this gateway issued: malformed, altered, or "
                "signed by another gateway process (replicas must share "
                "CRM_GATEWAY_CURSOR_SECRET; without it each process signs with its own).",
                argument=argument,
            )
        try:
            data = json.loads(payload)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("p"), dict):
            # Only a holder of the secret gets here: still a client error, never a 500.
            raise BadUserInput(f"`{argument}` is not a valid cursor.", argument=argument)
        if data.get("v") != CURSOR_VERSION:
            raise BadUserInput(
                f"`{argument}` comes from an older cursor format; restart paging from the start.",
                argument=argument,
            )
        position: dict[str, Any] = data["p"]
        return str(data.get("b")), position

"""Plumbing the Attio, hasteCRM and Redivis emulators' routers share.

Each app keeps its state object on `app.state.emulator`; the routes reach it
through a FastAPI dependency built on `emulator_of`, never through closures.
Bodies and page tokens are read and written alike; each API keeps its own
error shape by passing the exception to raise.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from fastapi import Request


def emulator_of(request: Request) -> Any:
    """The state object of the app serving `request`."""
    return request.app.state.emulator


async def json_object(request: Request, invalid: Callable[[str], Exception]) -> dict[str, Any]:
    """The request body as a JSON object, else `invalid(message)` is raised."""
    try:
        body = await request.json()
    except ValueError:
        raise invalid("The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise invalid("The body must be a JSON object.")
    return body


def pack(data: dict[str, Any]) -> str:
    """An opaque page token: compact JSON in unpadded URL-safe base64."""
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unpack(token: str) -> Any:
    """What `pack` wrapped; ValueError when `token` is not one."""
    return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))

"""Plumbing the Attio, hasteCRM and Redivis emulators' routers share.

Each app keeps its state object on `app.state.emulator`; the routes reach it
through a FastAPI dependency built on `control.emulator_state`, never through closures.
Apps are wired alike, bodies and page tokens are read and written alike; each
API keeps its own error shape by passing its handlers or the exception to raise.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from emulators.control import (
    EmulatorControl,
    EmulatorOptions,
    ErrorHook,
    ThrottleHook,
    install_control,
)

Handler = Callable[[Request, Exception], Awaitable[Response]]
Gate = Callable[[Request, Callable[[Request], Any]], Awaitable[Response]]


class Emulator(Protocol):
    def reset(self) -> None: ...


def assemble(
    app: FastAPI,
    emulator: Emulator,
    options: EmulatorOptions,
    *,
    handlers: dict[type[Exception], Handler],
    http_error: Handler,
    validation_error: Handler,
    gate: Gate,
    hooks: tuple[ErrorHook, ThrottleHook],
    routers: Iterable[APIRouter],
) -> FastAPI:
    """`app` serving `emulator` through `routers`, behind its `gate` (auth, rate limits).

    `handlers` turn the API's exceptions into answers; `http_error` and
    `validation_error` give FastAPI's own 404, 405 and 422 the API's error shape;
    `hooks` answer injected errors and 429s in it.
    """
    for kind, handler in handlers.items():
        app.add_exception_handler(kind, handler)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    # Added before install_control, so the control middleware wraps the gate and its
    # counters also see the 401s and 429s the gate answers.
    app.middleware("http")(gate)
    return serve(app, emulator, options, hooks=hooks, routers=routers)


def serve(
    app: FastAPI,
    emulator: Emulator,
    options: EmulatorOptions,
    *,
    hooks: tuple[ErrorHook, ThrottleHook],
    routers: Iterable[APIRouter],
) -> FastAPI:
    """`app` serving `emulator` through `routers`, with the `/_emulator/*` control;
    `hooks` answer injected errors and 429s in the API's error shape."""
    app.state.emulator = emulator
    error_response, throttle_response = hooks
    control = EmulatorControl(
        reset=emulator.reset,
        error_response=error_response,
        throttle_response=throttle_response,
        options=options,
    )
    install_control(app, control)
    for router in routers:
        app.include_router(router)
    return app


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

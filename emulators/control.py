"""What every emulator has besides its API: counters, reset and fault injection.

`/_emulator/stats` counts the requests the API received, `/_emulator/reset`
restores the seed data and zeroes the counters, and `/_emulator/faults` reads
or sets injected faults (latency, errors, 429s, hangs, garbage bodies). The
faults answer in the provider's own error shape through hooks the emulator
passes in, so this module knows nothing of any one API.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import unquote_plus

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from emulators.seed import DEFAULT_SEED

CONTROL_PREFIX = "/_emulator"


class Faults(BaseModel):
    """Faults injected into the API's answers; rates are probabilities per request."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(0.0, ge=0, le=60_000, description="Delay added to every answer.")
    error_rate: float = Field(0.0, ge=0, le=1, description="Share answered 500.")
    rate_limit_rate: float = Field(0.0, ge=0, le=1, description="Share answered 429.")
    timeout_rate: float = Field(0.0, ge=0, le=1, description="Share that hang, then 504.")
    garbage_rate: float = Field(0.0, ge=0, le=1, description="Share answered 200 with a bad body.")
    timeout_seconds: float = Field(30.0, ge=0, le=300, description="How long a hang lasts.")
    only_matching: str = Field(
        "",
        max_length=1000,
        description="Faults only for requests whose path and decoded query contain this text "
        "(empty: every request).",
    )


@dataclass
class EmulatorOptions:
    """How to start an emulator: its data, whether it enforces its rate limits, faults."""

    seed: int = DEFAULT_SEED
    rate_limits: bool = True
    faults: Faults = field(default_factory=Faults)
    companies: int = 200
    contacts: int = 1000
    deals: int = 300
    notes: int = 500
    # RevyOps only (its contract, section 1): also require each workspace's `x-api-key`.
    require_api_key: bool = False


class Refused(Exception):
    """Raised where a check fails (often in a dependency); the answer is `response` as is."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


async def _answer_refused(_: Request, error: Exception) -> Response:
    assert isinstance(error, Refused)
    return error.response


def emulator_state(request: Request) -> Any:
    """The emulator's state object, for `Annotated[State, Depends(emulator_state)]`."""
    return request.app.state.emulator


ErrorHook = Callable[[int, str], Response]
ThrottleHook = Callable[[], Response]


class EmulatorControl:
    """Counters and faults of one emulator instance."""

    def __init__(
        self,
        *,
        reset: Callable[[], None],
        error_response: ErrorHook,
        throttle_response: ThrottleHook,
        options: EmulatorOptions,
    ) -> None:
        self._reset = reset
        self.error_response = error_response
        self.throttle_response = throttle_response
        self.faults = options.faults.model_copy()
        self._rng = random.Random(options.seed)
        self.requests = 0
        self.by_endpoint: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()

    def record(self, method: str, path: str) -> None:
        self.requests += 1
        self.by_endpoint[f"{method} {path}"] += 1

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_endpoint": dict(self.by_endpoint),
            "by_status": {str(k): v for k, v in self.by_status.items()},
            "faults": self.faults.model_dump(),
        }

    def reset(self) -> None:
        self._reset()
        self.requests = 0
        self.by_endpoint.clear()
        self.by_status.clear()

    def draw(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate


async def _faulty(
    control: EmulatorControl, target: str, call_next: Callable[[], Awaitable[Response]]
) -> Response:
    faults = control.faults
    if faults.only_matching not in target:
        return await call_next()
    if faults.latency_ms:
        await asyncio.sleep(faults.latency_ms / 1000)
    if control.draw(faults.timeout_rate):
        await asyncio.sleep(faults.timeout_seconds)
        return control.error_response(504, "Injected timeout.")
    if control.draw(faults.rate_limit_rate):
        return control.throttle_response()
    if control.draw(faults.error_rate):
        return control.error_response(500, "Injected server error.")
    if control.draw(faults.garbage_rate):
        # Half truncated JSON, half not JSON at all: both must become errors upstream.
        body = b'{"data": [{"id": 1, "na' if control.draw(0.5) else b"<html>oops</html>"
        return Response(body, status_code=200, media_type="application/json")
    return await call_next()


def control_of(request: Request) -> EmulatorControl:
    control: EmulatorControl = request.app.state.control
    return control


Control = Annotated[EmulatorControl, Depends(control_of)]
router = APIRouter(prefix=CONTROL_PREFIX, include_in_schema=False)


@router.get("/stats")
async def stats(control: Control) -> dict[str, Any]:
    return control.stats()


@router.post("/reset")
async def reset(control: Control) -> dict[str, Any]:
    control.reset()
    return control.stats()


@router.get("/faults")
async def get_faults(control: Control) -> Faults:
    return control.faults


@router.post("/faults")
async def set_faults(faults: Faults, control: Control) -> Faults:
    control.faults = faults
    return control.faults


async def _count_and_inject(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    if request.url.path.startswith(CONTROL_PREFIX):
        return await call_next(request)
    control = control_of(request)
    control.record(request.method, request.url.path)
    target = f"{request.url.path}?{unquote_plus(request.url.query)}"
    response = await _faulty(control, target, lambda: call_next(request))
    control.by_status[response.status_code] += 1
    return response


def install_control(app: FastAPI, control: EmulatorControl) -> None:
    """Mount `/_emulator/*` and the counting, fault-injecting middleware on `app`."""
    app.state.control = control
    app.add_exception_handler(Refused, _answer_refused)
    app.middleware("http")(_count_and_inject)
    app.include_router(router)

"""A data source or an `Upstream` whose provider is an `httpx.MockTransport`: what each
request looked like, and answers queued by the test. Nothing leaves the process."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, overload

import httpx

from gateway.datasources import DataSource, OffsetSource, SequentialSource, source_class
from gateway.settings import ProviderSettings
from gateway.upstream import open_client

Answer = httpx.Response | Callable[[httpx.Request], httpx.Response]

# One set of credentials per kind, each marked so a test can find it in a request.
CREDENTIALS = {
    "revyops": {"client_id": "cid-1", "api_key": "key-1"},
    "attio": {"api_key": "attio-key"},
    "haste": {"token": "haste-token"},
    "redivis": {"token": "redivis-token"},
    "basicsos": {"token": "basics-token"},
}


@dataclass
class Provider:
    """The mock provider: answers in order (the last one repeats), requests as sent."""

    answers: list[Answer] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.answers:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer(request) if callable(answer) else answer

    def queue(self, *answers: Answer) -> Provider:
        self.answers = list(answers)
        return self

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def ok(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def sent_json(request: httpx.Request) -> Any:
    return json.loads(request.content)


# The kinds of each pagination family, so a test of one reaches its family's fetches.
OffsetKind = Literal["revyops", "attio", "basicsos"]
SequentialKind = Literal["haste", "redivis"]


@overload
def source(
    kind: OffsetKind, credentials: dict[str, str] | None = None, **settings: Any
) -> tuple[OffsetSource, Provider]: ...
@overload
def source(
    kind: SequentialKind, credentials: dict[str, str] | None = None, **settings: Any
) -> tuple[SequentialSource, Provider]: ...
@overload
def source(
    kind: str, credentials: dict[str, str] | None = None, **settings: Any
) -> tuple[DataSource, Provider]: ...
def source(
    kind: str, credentials: dict[str, str] | None = None, **settings: Any
) -> tuple[DataSource, Provider]:
    """A data source of `kind` on a mock provider: no caches, no retries, no limiter, so
    each call's requests are exactly what it sends."""
    provider = Provider()
    options = {"max_retries": 0, "rate_limit": False, **settings}
    config = ProviderSettings(
        name="crm",
        kind=kind,
        base_url="http://crm.test/base",
        credentials=CREDENTIALS[kind] if credentials is None else credentials,
        **options,
    )
    cls = source_class(kind)
    client = open_client(config, cls.client_auth(config), transport=httpx.MockTransport(provider))
    return cls(config, client, cache=False, blocks=False), provider

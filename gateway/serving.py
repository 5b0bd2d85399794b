"""The HTTP server's own defences against slow and numerous clients, for every server this
project starts (`crm-gateway serve` and `emulate`, the tests' and benchmarks' `ServerThread`).

uvicorn bounds how long a kept-alive connection may sit idle, but not how long a client may
take to send a request: a connection that sends half a request head stays open for ever, and
enough of them use up the process's file descriptors, so legitimate requests time out with no
key needed. Its `limit_concurrency` answers 503 only once a request head is complete, so it does
not bound idle connections either. `GuardedH11Protocol` adds both: a deadline for the head, one
between the pieces of a body, and a cap on open connections checked as each is accepted.

It also turns off Nagle's algorithm on each connection. asyncio does that only for sockets whose
protocol number says TCP, which a socket made with `socket.socket(family, SOCK_STREAM)` does not:
on such a socket every kept-alive answer waited about 40 ms for the client's delayed ACK.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any, ClassVar, Literal

import h11
import uvicorn
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger("gateway.serving")

# Written raw and followed by a close: neither answers a request h11 has parsed.
_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 15\r\nconnection: close\r\n\r\nRequest Timeout"
)
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 19\r\nconnection: close\r\n\r\nService Unavailable"
)


class ServerSettings(BaseModel):
    """How long a client may take to send a request, and how many connections all clients
    may hold open."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    header_timeout: float = Field(10.0, gt=0, le=600)
    """Seconds a client has to send a request's head (request line and headers), counted from
    the connection, or from the request's first byte on a kept-alive one; then it is answered
    408 and closed."""
    body_timeout: float = Field(30.0, gt=0, le=3600)
    """Seconds the server waits for the next piece of a request body; then the connection is
    closed."""
    max_connections: int = Field(500, ge=1, le=1_000_000)
    """Client connections open at once, idle kept-alive ones included; one more is answered 503
    and closed as soon as it is accepted. Keep it under the process's open-file limit."""


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a head deadline, a body deadline and a connection cap.

    The deadline follows h11's view of the client's side after each read: waiting for a head
    (IDLE) keeps the head deadline running from the first byte, so a client trickling one byte
    at a time gains nothing; inside a body (SEND_BODY) each piece restarts the body deadline;
    once the request is read, the time is the app's and no deadline runs.
    """

    limits: ClassVar[ServerSettings] = ServerSettings()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._awaiting: Literal["head", "body"] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        _no_delay(transport)
        if len(self.connections) > self.limits.max_connections:
            # Refused as it is accepted: waiting for its head would hold the socket, and the
            # descriptor, as long as the client likes.
            logger.warning(
                "refused a connection: %d open, server.max_connections is %d",
                len(self.connections) - 1,
                self.limits.max_connections,
            )
            transport.write(_BUSY)
            transport.close()
            return
        self._await("head")

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport.is_closing():
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            if self._awaiting != "head":  # the first byte of a request on a kept-alive connection
                self._await("head")
        elif state is h11.SEND_BODY:
            self._await("body")
        else:
            self._stop()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # A pipelined request read from the buffer may have left its body unfinished. An idle
        # or half-sent head is uvicorn's: the keep-alive timeout it has just armed closes it.
        if not self.transport.is_closing() and self.conn.their_state is h11.SEND_BODY:
            self._await("body")

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop()
        super().connection_lost(exc)

    def _await(self, what: Literal["head", "body"]) -> None:
        self._stop()
        self._awaiting = what
        timeout = self.limits.header_timeout if what == "head" else self.limits.body_timeout
        self._deadline = self.loop.call_later(timeout, self._expired)

    def _stop(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = None
        self._awaiting = None

    def _expired(self) -> None:
        what = self._awaiting
        self._deadline = None
        self._awaiting = None
        if self.transport.is_closing():
            return
        if what == "body" and (
            self.flow.read_paused or self.conn.they_are_waiting_for_100_continue
        ):
            # The client waits for us (the app has not read what came, or not asked for the
            # body yet): not its delay.
            self._await("body")
            return
        logger.info("closed a connection that sent no complete request %s in time", what)
        if what == "head":
            self.transport.write(_TIMED_OUT)
        self.transport.close()


def _no_delay(transport: asyncio.BaseTransport) -> None:
    """Send each write at once: an answer's head and body go out as separate writes, and with
    Nagle's algorithm the second waits for the ACK of the first, which the client delays."""
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return  # a Unix socket has no Nagle's algorithm
    # A peer that has already gone makes some systems refuse the option; nothing to speed up.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def guarded_protocol(limits: ServerSettings) -> type[GuardedH11Protocol]:
    """The protocol class uvicorn builds each connection with, bound to `limits`."""

    class Protocol(GuardedH11Protocol):
        pass

    Protocol.limits = limits
    return Protocol


class QuietDisconnects:
    """Ends without a traceback a request whose client left while its body was read (a body
    deadline closes such connections on purpose): there is nobody left to answer, and a slow
    client should not be able to fill the error log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except ClientDisconnect:
            logger.info("a client left before its request body was read")


def uvicorn_config(
    app: ASGIApp, host: str, port: int, limits: ServerSettings, **options: Any
) -> uvicorn.Config:
    """A uvicorn config serving `app` with `limits`. The protocol is always h11 with the
    guards, whatever else is installed (uvicorn would pick httptools when present)."""
    return uvicorn.Config(
        QuietDisconnects(app), host=host, port=port, http=guarded_protocol(limits), **options
    )

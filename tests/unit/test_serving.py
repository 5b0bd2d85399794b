"""The server's guards in process: `GuardedH11Protocol` fed bytes over a fake transport, on the
test's own event loop, with deadlines of a few hundredths of a second."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope, Send
from uvicorn.server import ServerState

from gateway.serving import GuardedH11Protocol, QuietDisconnects, ServerSettings, uvicorn_config

HEAD = b"POST /graphql HTTP/1.1\r\nHost: gateway\r\nContent-Length: 10\r\n\r\n"


class Transport(asyncio.Transport):
    """Records what the protocol writes; closing it tells the protocol, as asyncio does."""

    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closing = False
        self.answered = asyncio.Event()
        self.closed = asyncio.Event()
        self.protocol: GuardedH11Protocol | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)
        self.answered.set()

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.closed.set()
            if self.protocol is not None:
                asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _body_reader(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the whole body (once `scope["state"]["gate"]` is set, if there is one), then
    answers 200: a stalled body keeps it waiting."""
    gate: asyncio.Event | None = scope["state"].get("gate")
    if gate is not None:
        await gate.wait()
    await Request(scope, receive).body()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _connect(
    limits: ServerSettings, state: ServerState | None = None, **app_state: Any
) -> tuple[GuardedH11Protocol, Transport]:
    config = uvicorn_config(_body_reader, "127.0.0.1", 0, limits, lifespan="off")
    config.load()
    protocol = config.http_protocol_class(  # type: ignore[call-arg]
        config=config, server_state=state or ServerState(), app_state=app_state
    )
    assert isinstance(protocol, GuardedH11Protocol)
    transport = Transport()
    transport.protocol = protocol
    protocol.connection_made(transport)
    return protocol, transport


async def test_a_head_trickled_byte_by_byte_still_meets_its_deadline() -> None:
    _, transport = _connect(ServerSettings(header_timeout=0.2))
    protocol = transport.protocol
    assert protocol is not None
    async with asyncio.timeout(10):
        for byte in b"GET / HTTP/1.1\r\nX-Slow: " + b"a" * 10_000:
            if transport.closing:
                break
            protocol.data_received(bytes([byte]))
            await asyncio.sleep(0.01)
    assert transport.written.startswith(b"HTTP/1.1 408 Request Timeout\r\n")


async def test_a_body_waits_while_the_app_holds_reading_then_its_deadline_runs() -> None:
    gate = asyncio.Event()
    protocol, transport = _connect(ServerSettings(body_timeout=0.05), gate=gate)
    protocol.data_received(HEAD + b"12345")
    protocol.flow.pause_reading()  # as uvicorn does when the app has not taken what came
    await asyncio.sleep(0.3)
    assert not transport.closing
    gate.set()  # the app reads, which resumes reading: now the client is late
    async with asyncio.timeout(10):
        await transport.closed.wait()
    assert transport.written == b""  # the app owns the answer to a request it has started


async def test_a_whole_request_stops_the_deadline() -> None:
    protocol, transport = _connect(ServerSettings(header_timeout=0.05, body_timeout=0.05))
    protocol.data_received(HEAD + b"1234567890")
    async with asyncio.timeout(10):
        await transport.answered.wait()
    await asyncio.sleep(0.3)  # past both deadlines: kept alive, not closed
    assert transport.written.startswith(b"HTTP/1.1 200 OK\r\n")
    assert not transport.closing
    transport.close()


async def test_a_connection_past_the_cap_is_refused_as_it_is_accepted() -> None:
    state = ServerState()
    limits = ServerSettings(max_connections=2)
    first, _ = _connect(limits, state)
    second, _ = _connect(limits, state)
    _, third = _connect(limits, state)
    assert third.written.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert third.closing
    for protocol in (first, second):
        protocol.transport.close()


async def test_a_client_gone_mid_body_ends_the_request_without_an_error() -> None:
    async def leaves(scope: Scope, receive: Receive, send: Send) -> None:
        raise ClientDisconnect

    await QuietDisconnects(leaves)({"type": "http"}, _never, _never_send)


async def test_an_accepted_connection_sends_without_delay_whatever_made_its_socket() -> None:
    # Protocol number 0, as `crm-gateway serve` once made its sockets: asyncio then leaves
    # Nagle's algorithm on, and each kept-alive answer waited ~40 ms for a delayed ACK.
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    listening.bind(("127.0.0.1", 0))
    config = uvicorn_config(_body_reader, "127.0.0.1", 0, ServerSettings(), lifespan="off")
    config.load()
    accepted: asyncio.Queue[asyncio.Transport] = asyncio.Queue()

    class Recorded(GuardedH11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            accepted.put_nowait(transport)

    def protocol() -> Recorded:
        return Recorded(config=config, server_state=ServerState(), app_state={})

    server = await asyncio.get_running_loop().create_server(protocol, sock=listening)
    async with server:
        _, writer = await asyncio.open_connection(*listening.getsockname())
        async with asyncio.timeout(10):
            transport = await accepted.get()
        sock = transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        writer.close()
        await writer.wait_closed()
        transport.close()


def test_the_protocol_is_h11_with_the_guards_whatever_is_installed() -> None:
    config = uvicorn_config(_body_reader, "127.0.0.1", 0, ServerSettings())
    assert isinstance(config, uvicorn.Config)
    assert issubclass(config.http, GuardedH11Protocol)  # type: ignore[arg-type]


async def _never() -> Any:
    raise AssertionError("not called")


async def _never_send(message: Any) -> None:
    raise AssertionError("not called")

"""Slow and idle clients over raw sockets: the server's head and body deadlines and its cap on
connections (`[server]` settings), so that clients holding sockets open cannot lock others out."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from gateway.servers import LOOPBACK, ServerThread, free_port
from gateway.serving import ServerSettings
from gateway.settings import Settings
from tests.support.servers import running, wait_for
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

HEAD = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n"
QUERY = b'{"query": "{ __typename }"}'


def _post_head(length: int) -> bytes:
    return (
        b"POST /graphql HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % length
    )


class Held:
    """A client socket, and what the server sent on it until it closed it."""

    def __init__(self, port: int, first: bytes = b"") -> None:
        self.sock = socket.create_connection((LOOPBACK, port), timeout=10)
        self.received = b""
        self.closed = False
        if first:
            self.sock.sendall(first)

    def poll(self) -> bool:
        """Whether the server has closed the connection, reading what came without waiting."""
        while not self.closed and select.select([self.sock], [], [], 0)[0]:
            try:
                data = self.sock.recv(4096)
            except ConnectionResetError:
                data = b""
            self.received += data
            self.closed = not data
        return self.closed

    def trickle(self, data: bytes) -> bool:
        """Send `data` unless the server has closed the connection; whether it has."""
        if not self.poll():
            try:
                self.sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                self.closed = True
        return self.closed

    def exchange(self, request: bytes) -> bytes:
        """Send a whole request and read its whole answer (a head and a Content-Length body)."""
        self.sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = self.sock.recv(4096)
            assert chunk, f"closed by the server after {answer!r}"
            answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(body) < length:
            body += self.sock.recv(4096)
        return head + b"\r\n\r\n" + body

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def held() -> Iterator[list[Held]]:
    sockets: list[Held] = []
    yield sockets
    for one in sockets:
        one.close()


def _serve(limits: ServerSettings) -> ServerThread:
    return ServerThread(create_app(Settings()), limits=limits)


def test_partial_requests_are_closed_while_a_whole_one_is_served(held: list[Held]) -> None:
    # Deadlines of 2 s: short for the test, long for the whole request sent meanwhile.
    with _serve(ServerSettings(header_timeout=2, body_timeout=2)) as server:
        heads = [Held(server.port, b"GET /healthz HTTP/1.1\r\nHost: gat") for _ in range(35)]
        silent = [Held(server.port) for _ in range(5)]
        bodies = [Held(server.port, _post_head(len(QUERY)) + QUERY[:9]) for _ in range(9)]
        # One header byte at a time: the head deadline runs from the first byte, not the last.
        trickler = Held(server.port, b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Slow: ")
        held += [*heads, *silent, *bodies, trickler]
        assert len(held) == 50

        answer = httpx.post(
            f"{server.url}/graphql",
            content=QUERY,
            timeout=30,
            headers={"Content-Type": "application/json"},
        )
        assert answer.json()["data"] == {"__typename": "Query"}

        def all_closed() -> bool:
            trickler.trickle(b"a")
            time.sleep(0.05)
            return all(one.poll() for one in held)

        wait_until(all_closed, what="the server to close 50 partial requests", timeout=30)
        for one in [*heads, *silent, trickler]:
            assert one.received.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), one.received
        # The app owns a request's answer once its head is read: a stalled body is just closed.
        assert all(one.received == b"" for one in bodies)


def test_a_body_sent_slowly_but_steadily_is_read_whole(held: list[Held]) -> None:
    # Each piece restarts the body deadline: 40 pieces 0.1 s apart outlast one 3 s deadline.
    with _serve(ServerSettings(body_timeout=3)) as server:
        client = Held(server.port)
        held.append(client)
        pieces = [b" "] * 40 + [QUERY]
        client.sock.sendall(_post_head(sum(map(len, pieces))))
        for piece in pieces:
            client.sock.sendall(piece)
            time.sleep(0.1)
        answer = client.exchange(b"")
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
        assert b'{"data":{"__typename":"Query"}' in answer, answer


def test_the_head_deadline_spares_an_idle_kept_alive_connection(held: list[Held]) -> None:
    # Idle between requests is the keep-alive timeout's to judge (30 s here), not the head's.
    with _serve(ServerSettings(header_timeout=2)) as server:
        client = Held(server.port)
        held.append(client)
        assert client.exchange(HEAD).startswith(b"HTTP/1.1 200 OK\r\n")
        time.sleep(3)
        assert client.exchange(HEAD).startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_connection_past_the_cap_is_answered_503_at_once(held: list[Held]) -> None:
    with _serve(ServerSettings(max_connections=5, header_timeout=60)) as server:
        for _ in range(5):
            # A request answered proves the server counts the connection; idle, it still counts.
            one = Held(server.port)
            held.append(one)
            assert one.exchange(HEAD).startswith(b"HTTP/1.1 200 OK\r\n")

        extra = Held(server.port)
        held.append(extra)
        extra.sock.settimeout(10)
        answer = b""
        while chunk := extra.sock.recv(4096):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), answer

        held[0].close()

        def served() -> bool:
            try:
                return httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(served, what="a request once a connection left", timeout=30)


def test_crm_gateway_serve_applies_the_server_settings(tmp_path: Path, held: list[Held]) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[[providers]]\nname = "crm"\nkind = "basicsos"\nbase_url = "http://127.0.0.1:9"\n'
        'credentials = { token = "bos_crm_x" }\n\n[server]\nheader_timeout = 1\n'
    )
    port = free_port()
    with running("serve", "--config", str(config), "--port", str(port)) as process:
        wait_for(f"http://{LOOPBACK}:{port}/healthz", process)
        partial = Held(port, b"GET /healthz HTTP/1.1\r\n")
        held.append(partial)
        # Well past the configured 1 s, well short of the default 10 s.
        wait_until(partial.poll, what="the gateway to close a partial request", timeout=8)
        assert partial.received.startswith(b"HTTP/1.1 408 Request Timeout\r\n")

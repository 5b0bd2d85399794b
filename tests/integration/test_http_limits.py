"""What the /graphql endpoint does with oversized, malformed or pathological bodies.

The body checks come before any resolver runs, so these gateways have no providers.
"""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.app import create_app, create_router
from gateway.endpoint import MAX_JSON_DEPTH
from gateway.servers import ServerThread
from gateway.settings import Settings
from tests.support.clients import answer

pytestmark = pytest.mark.integration

MB = 1024 * 1024
FIFTY_MB = 50 * MB
CHUNK = b" " * 65536  # JSON whitespace: a valid start of a body, so only its size is wrong


@pytest.fixture(scope="module")
def standalone() -> Iterator[str]:
    with ServerThread(create_app(Settings())) as server:
        yield server.url


@pytest.fixture(scope="module")
def mounted() -> Iterator[str]:
    """The gateway's router inside a host app, as a backend team would mount it."""
    host = FastAPI()
    host.include_router(create_router(Settings()))
    with ServerThread(host) as server:
        yield server.url


@pytest.fixture(params=["standalone", "mounted"])
def url(request: pytest.FixtureRequest) -> str:
    value: str = request.getfixturevalue(request.param)
    return value


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    errors = response.json()["errors"]
    assert errors[0]["extensions"]["code"] == code
    message: str = errors[0]["message"]
    return message


def _post(url: str, content: bytes) -> httpx.Response:
    return httpx.post(
        f"{url}/graphql",
        content=content,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )


def _send_until_answered(url: str, head: bytes, frame: bytes) -> tuple[int, bytes]:
    """Send `head`, then `frame` again and again until the server answers (or 50 MB went).

    Returns the body bytes sent before the answer came, and the answer's first bytes.
    """
    host, port = httpx.URL(url).host, httpx.URL(url).port
    with socket.create_connection((host, port or 80), timeout=10) as sock:
        sock.sendall(head)
        sent = 0
        while sent < FIFTY_MB:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(frame)
            except OSError:  # the server closed the connection without reading on
                break
            sent += len(CHUNK)
        return sent, _read_response(sock)


def _read_response(sock: socket.socket) -> bytes:
    answer = b""
    while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < _length(answer):
        data = sock.recv(65536)
        if not data:
            break
        answer += data
    return answer


def _length(answer: bytes) -> int:
    for line in answer.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def _head(extra: str) -> bytes:
    return (
        "POST /graphql HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        f"{extra}\r\n\r\n"
    ).encode()


def _status_and_body(answer: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_a_declared_50_mb_body_is_refused_before_it_is_read(url: str) -> None:
    sent, answer = _send_until_answered(url, _head(f"Content-Length: {FIFTY_MB}"), CHUNK)
    status, body = _status_and_body(answer)
    assert status == 413
    assert body["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"
    # The answer came while most of the body was still unsent: the server stopped reading.
    assert sent < FIFTY_MB // 2


def test_a_chunked_body_is_refused_once_it_passes_the_limit(url: str) -> None:
    frame = b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK)
    sent, answer = _send_until_answered(url, _head("Transfer-Encoding: chunked"), frame)
    status, body = _status_and_body(answer)
    assert status == 413
    assert body["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"
    assert sent < FIFTY_MB // 2


def test_a_body_over_a_configured_limit_is_refused() -> None:
    with ServerThread(create_app(Settings(max_request_size=2048))) as server:
        query = b'{"query": "{ __typename }"}'
        assert answer(_post(server.url, query).json()) == {"data": {"__typename": "Query"}}
        padded = query[:-1] + b" " * 2048 + b"}"
        message = _error(_post(server.url, padded), 413, "REQUEST_TOO_LARGE")
        assert "2048 bytes" in message


def test_a_body_just_under_the_default_limit_is_served(url: str) -> None:
    body = b'{"query": "{ __typename }"' + b" " * (MB - 100) + b"}"
    assert answer(_post(url, body).json()) == {"data": {"__typename": "Query"}}


# An array of JSON objects is a batch (tests/integration/test_batches.py).
@pytest.mark.parametrize("body", [b'"hello"', b"5", b"null", b"[]", b"true", b"[5]"])
def test_a_body_that_is_not_a_json_object_is_a_bad_request(url: str, body: bytes) -> None:
    message = _error(_post(url, body), 400, "BAD_REQUEST")
    assert "JSON object" in message


@pytest.mark.parametrize("body", [b"{", b"{'query': 1}", b"\xff\xfe", b""])
def test_malformed_json_is_a_bad_request(url: str, body: bytes) -> None:
    _error(_post(url, body), 400, "BAD_REQUEST")


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 3000 + b"]" * 3000,
        b'{"query": "{ __typename }", "variables": {"v": ' + b"[" * 3000 + b"]" * 3000 + b"}}",
        b'{"query": "{ __typename }", "variables": {"v": '
        + b'{"a": ' * 3000
        + b"1"
        + b"}" * 3000
        + b"}}",
        # Within what the JSON parser can take, but deeper than any query needs.
        b'{"query": "{ __typename }", "variables": {"v": '
        + b"[" * (MAX_JSON_DEPTH + 1)
        + b"]" * (MAX_JSON_DEPTH + 1)
        + b"}}",
    ],
    ids=["array", "variables-array", "variables-object", "over-the-limit"],
)
def test_deep_nesting_is_a_bad_request(url: str, body: bytes) -> None:
    message = _error(_post(url, body), 400, "BAD_REQUEST")
    assert "deep" in message


def test_nesting_within_the_limit_is_served(url: str) -> None:
    depth = MAX_JSON_DEPTH - 3  # the body object and `variables` are two levels
    variables = b'{"v": ' + b"[" * depth + b"]" * depth + b"}"
    body = b'{"query": "{ __typename }", "variables": ' + variables + b"}"
    assert answer(_post(url, body).json()) == {"data": {"__typename": "Query"}}


def test_a_wrong_query_type_is_a_graphql_shaped_bad_request(url: str) -> None:
    _error(_post(url, b'{"query": 5}'), 400, "BAD_REQUEST")


def test_an_unsupported_content_type_is_a_graphql_shaped_415(url: str) -> None:
    response = httpx.post(f"{url}/graphql", content=b"{ __typename }", timeout=10)
    _error(response, 415, "UNSUPPORTED_MEDIA_TYPE")

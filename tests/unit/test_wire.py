"""The wire layer alone, over `httpx.MockTransport` on a fake clock: the request as sent,
its timeout within the call's deadline, statuses handed up as they are, and transport
failures as the gateway's errors; and the sendable check above it."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from gateway.calls import Call
from gateway.errors import RequestNotSendable, UpstreamTimeout, UpstreamUnavailable
from gateway.wire import Sendable, Wire
from tests.unit.fake_layer import Below, ok, run
from tests.unit.fake_time import FakeTime


def wire_to(
    answer: Callable[[httpx.Request], httpx.Response], time: FakeTime, read_timeout: float = 15.0
) -> tuple[Wire, list[httpx.Request]]:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return answer(request)

    client = httpx.AsyncClient(
        base_url="http://crm.test/api",
        transport=httpx.MockTransport(handler),
        timeout=httpx.Timeout(read_timeout, connect=5.0),
    )
    return Wire(client, provider="crm", clock=time), sent


def test_the_call_goes_on_the_wire_as_asked_and_any_status_comes_back():
    time = FakeTime()
    wire, sent = wire_to(lambda request: ok(503), time)
    call = Call("POST", "/things", params={"page": 2}, json_body={"name": "Ada"})
    response = run(wire.send(call))
    assert response.status_code == 503  # not an error yet: the answers layer decides
    [request] = sent
    assert (request.method, request.url.path, request.url.params["page"]) == (
        "POST",
        "/api/things",
        "2",
    )
    assert request.content == b'{"name":"Ada"}'


def test_the_timeout_is_what_is_left_of_the_deadline_at_most_the_clients():
    time = FakeTime()
    wire, sent = wire_to(lambda request: ok(), time, read_timeout=15.0)
    run(wire.send(Call("GET", "/x", deadline=time.now + 4.0)))
    run(wire.send(Call("GET", "/x", deadline=time.now + 40.0)))
    assert [r.extensions["timeout"]["read"] for r in sent] == pytest.approx([4.0, 15.0])
    assert [r.extensions["timeout"]["connect"] for r in sent] == pytest.approx([4.0, 5.0])


def test_transport_failures_become_the_gateways_errors():
    """(Each failure's mapping, through the whole upstream: test_upstream_transport.py.)"""

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    unreachable = run(wire_to(refused, FakeTime())[0].send(Call("GET", "/x")))
    assert isinstance(unreachable, UpstreamUnavailable)
    assert unreachable.message == "crm is unreachable (ConnectError)."
    timeout = run(wire_to(slow, FakeTime())[0].send(Call("GET", "/x")))
    assert isinstance(timeout, UpstreamTimeout)
    assert timeout.__cause__ is None


def test_a_request_httpx_cannot_build_is_refused_before_the_layers_below():
    below = Below(ok())
    client = httpx.AsyncClient(base_url="http://crm.test")
    layer = Sendable(below, client, provider="crm")
    error = run(layer.send(Call("GET", "/x", params={"q": "x" * 70_000})))
    assert isinstance(error, RequestNotSendable)
    assert below.calls == []
    assert run(layer.send(Call("GET", "/x", params={"q": "short"}))).status_code == 200

"""The answers layer over a fake of the layer below: an error status becomes the gateway's
error, with the provider's own message; `ok_statuses` pass through."""

from __future__ import annotations

import httpx
import pytest

from gateway.answers import Answers
from gateway.calls import Call
from gateway.errors import UpstreamNotFound, UpstreamRateLimited, UpstreamUnavailable
from tests.unit.fake_layer import Below, ok, run


def answers_over(below: Below) -> Answers:
    return Answers(below, provider="crm", error_message=lambda body: body.get("detail"))


def test_a_success_passes_up_unchanged():
    response = ok(201)
    assert run(answers_over(Below(response)).send(Call("GET", "/x"))) is response


def test_an_error_status_is_raised_with_the_providers_message():
    error = run(answers_over(Below(ok(404))).send(Call("GET", "/x")))
    assert isinstance(error, UpstreamNotFound)
    assert error.message == "crm answered 404: said 404"
    assert (error.status, error.body) == (404, {"detail": "said 404"})
    error = run(answers_over(Below(httpx.Response(502, text="<html>"))).send(Call("GET", "/x")))
    assert isinstance(error, UpstreamUnavailable)
    assert error.message == "crm answered 502."


def test_ok_statuses_pass_up_as_answers():
    assert (
        run(answers_over(Below(ok(404))).send(Call("GET", "/x", ok_statuses=(404,)))).status_code
        == 404
    )


def test_a_429_says_how_long_the_provider_asked_to_wait():
    error = run(answers_over(Below(ok(429, **{"Retry-After": "7"}))).send(Call("GET", "/x")))
    assert isinstance(error, UpstreamRateLimited)
    assert error.retry_after == pytest.approx(7.0)
    assert error.message == "crm answered 429: said 429 Retry after 7.0 s."

"""The SQL the Redivis data source writes, read back by the emulator's independent parser
(BigQuery's lexical rules), and how long it waits for a running query."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulators.redivis import Parser, _like, _string
from gateway.datasources import redivis, redivis_sql
from gateway.demo import demo_provider
from gateway.errors import BadUserInput, UpstreamBadResponse, UpstreamTimeout
from gateway.listquery import Cond, ListQuery
from gateway.records import Entity

# Text with a bias towards what SQL and LIKE give meaning to.
NASTY = st.text(
    alphabet=st.one_of(
        st.sampled_from([*"'\"\\%_`\n\r\t\x00\x7f\x85 -;()", "\u2028", "é"]),
        st.characters(codec="utf-8"),  # no lone surrogates
    ),
    max_size=30,
)


@given(NASTY)
def test_a_literal_means_exactly_its_value(value):
    literal = redivis_sql.literal(value)
    assert _string(literal, 0) == (value, len(literal))


@given(NASTY)
def test_a_literal_is_one_token_of_the_query(value):
    sql = f"SELECT id FROM `acme.crm.contacts` WHERE id = {redivis_sql.literal(value)} ORDER BY id"
    _, table, where, _, _, _ = Parser(sql).parse()  # no 400: the literal ended where it should
    assert table == "contacts"
    assert where({"id": value})
    assert not where({"id": value + "x"})


@given(NASTY, NASTY)
def test_contains_and_starts_with_match_the_value_literally(value, text):
    value, text = value.lower(), text.lower()
    contains = redivis_sql.condition(Cond("last_name", "contains", value))
    starts = redivis_sql.condition(Cond("last_name", "startsWith", value))
    for sql, expected in ((contains, value in text), (starts, text.startswith(value))):
        pattern = sql.removeprefix("LOWER(last_name) LIKE ")
        decoded, end = _string(pattern, 0)
        assert end == len(pattern)
        assert bool(_like(decoded).fullmatch(text)) == expected


def test_percent_and_underscore_are_not_wildcards():
    sql = redivis_sql.condition(Cond("last_name", "contains", "%"))
    assert sql == r"LOWER(last_name) LIKE '%\\%%'"
    sql = redivis_sql.condition(Cond("last_name", "startsWith", "a_B\\"))
    assert sql == r"LOWER(last_name) LIKE 'a\\_b\\\\%'"


def test_the_injection_of_the_issue_stays_inside_its_literal():
    value = r"\') UNION ALL SELECT * FROM `other.dataset.table` --"
    sql = redivis_sql.condition(Cond("last_name", "eq", value))
    assert sql == r"last_name = '\\\') UNION ALL SELECT * FROM `other.dataset.table` --'"


@pytest.mark.parametrize("amount", ["nan", "inf", "-Infinity", "1e400", "abc", "", "1 OR 1=1"])
def test_an_amount_that_is_no_number_is_bad_input(amount):
    with pytest.raises(BadUserInput) as error:
        redivis_sql.condition(Cond("amount", "gt", amount))
    assert error.value.argument == "filter"
    with pytest.raises(BadUserInput):
        redivis_sql.condition(Cond("amount", "in", ["5", amount]))


def test_a_lone_surrogate_is_bad_input():
    with pytest.raises(BadUserInput):
        redivis_sql.literal("a\ud800b")


# --- polling a running query -------------------------------------------------------------


class FakeTime:
    """A clock that moves only when the data source sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def running_forever(polls: list[str]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            polls.append(request.url.raw_path.decode())
            assert len(polls) <= redivis.MAX_POLLS, "polled without end"
        else:
            assert json.loads(request.content)["timeoutMs"] == redivis.QUERY_WAIT_MS
        return httpx.Response(200, json={"kind": "query", "id": "q 1", "status": "running"})

    return httpx.MockTransport(answer)


def source(transport: httpx.MockTransport, time: FakeTime) -> redivis.Redivis:
    settings = demo_provider("redivis", "http://redivis.test")
    client = httpx.AsyncClient(base_url="http://redivis.test", transport=transport)
    data = redivis.Redivis(settings, client)
    data.clock, data.sleep = time.clock, time.sleep
    return data


FILTERED = ListQuery(Cond("last_name", "eq", "Turing"), ())


async def test_a_query_running_too_long_fails_with_upstream_timeout():
    polls: list[str] = []
    time = FakeTime()
    data = source(running_forever(polls), time)
    with pytest.raises(UpstreamTimeout) as error:
        await data.open_list(Entity.CONTACT, False, None, FILTERED)
    assert error.value.extensions["code"] == "UPSTREAM_TIMEOUT"
    assert time.now <= redivis.QUERY_DEADLINE_SECONDS
    assert time.now + max(time.sleeps) > redivis.QUERY_DEADLINE_SECONDS  # it did wait
    assert len(polls) == len(time.sleeps) < redivis.MAX_POLLS
    assert set(polls) == {"/api/v1/queries/q%201"}  # the query id is one path segment
    assert max(time.sleeps) == redivis.POLL_MAX_SECONDS  # backing off


async def test_polls_are_bounded_even_when_no_time_passes(monkeypatch):
    monkeypatch.setattr(redivis, "POLL_SECONDS", 0.0)
    polls: list[str] = []
    data = source(running_forever(polls), FakeTime())
    with pytest.raises(UpstreamTimeout):
        await data.count(Entity.CONTACT, FILTERED)
    assert len(polls) == redivis.MAX_POLLS


@pytest.mark.parametrize("status", ["cancelled", None])
async def test_an_unknown_query_status_is_a_bad_response(status):
    def answer(request: httpx.Request) -> httpx.Response:
        body: dict[str, Any] = {"kind": "query", "id": "q1", "status": status}
        return httpx.Response(200, json=body)

    data = source(httpx.MockTransport(answer), FakeTime())
    with pytest.raises(UpstreamBadResponse):
        await data.open_list(Entity.CONTACT, False, None, FILTERED)

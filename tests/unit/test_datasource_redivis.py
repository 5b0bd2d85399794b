"""Redivis over a mock transport: SQL queries polled on a fake clock, JSON-lines rows with
page tokens in a header, table counts, OAuth-style error bodies, and ids refused before
they reach any SQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from gateway.datasources.redivis import COLUMNS, Redivis
from gateway.errors import NotFound, UpstreamAuthError, UpstreamBadResponse, UpstreamTimeout
from gateway.listquery import Cond, ListQuery, Sort
from gateway.pagination.keyset import Keyset
from gateway.records import ContactRecord, Entity
from tests.unit.fake_time import FakeTime
from tests.unit.mock_provider import Provider, ok, sent_json, source


def redivis(**settings: Any) -> tuple[Redivis, Provider, FakeTime]:
    crm, provider = source("redivis", **settings)
    assert isinstance(crm, Redivis)
    clock = FakeTime()
    crm.clock, crm.sleep = clock, clock.sleep
    return crm, provider, clock


def rows(*items: Any, token: str | None = None) -> httpx.Response:
    text = "".join(json.dumps(item) + "\n" for item in items)
    headers = {"X-Redivis-Next-Page-Token": token} if token else {}
    return httpx.Response(200, text=text, headers=headers)


def query(status: str, **more: Any) -> httpx.Response:
    return ok({"id": "q_1", "status": status, **more})


ROW = {"id": "r1", "first_name": "Ada", "last_name": "L", "email": "a@x", "company_id": "c1"}


async def test_get_runs_a_query_for_the_id_then_reads_its_one_row():
    crm, provider, _ = redivis()
    provider.queue(query("completed", outputNumRows=1), rows(ROW))
    record = await crm.get(Entity.CONTACT, "r1")
    run, read = provider.requests
    assert (run.method, run.url.path) == ("POST", "/base/api/v1/queries")
    assert run.headers["Authorization"] == "Bearer redivis-token"
    columns = ", ".join(COLUMNS[Entity.CONTACT])
    assert sent_json(run) == {
        "query": f"SELECT {columns} FROM `acme.crm.contacts` WHERE id = 'r1' ORDER BY id ASC",
        "timeoutMs": 5000,
    }
    assert (read.method, read.url.path) == ("GET", "/base/api/v1/queries/q_1/rows")
    assert dict(read.url.params) == {
        "format": "jsonl",
        "maxResults": "1",
        "selectedVariables": ",".join(COLUMNS[Entity.CONTACT]),
    }
    assert isinstance(record, ContactRecord)
    assert (record.remote_id, record.name, record.company_id) == ("r1", "Ada L", "c1")


async def test_the_dataset_option_names_the_tables():
    crm, provider, _ = redivis(options={"dataset": "team.sales"})
    provider.queue(query("completed"), rows())
    with pytest.raises(NotFound):
        await crm.get(Entity.COMPANY, "x9")  # no row: not found
    assert "FROM `team.sales.companies`" in sent_json(provider.requests[0])["query"]


async def test_a_running_query_is_polled_less_often_as_time_goes_by():
    crm, provider, clock = redivis()
    provider.queue(query("queued"), query("running"), query("running"), query("completed"), rows())
    with pytest.raises(NotFound):
        await crm.get(Entity.DEAL, "d1")
    polls = provider.requests[1:4]
    assert [(r.method, r.url.path) for r in polls] == [("GET", "/base/api/v1/queries/q_1")] * 3
    assert clock.slept == [0.2, 0.4, 0.8]


async def test_a_query_still_running_at_its_deadline_is_a_timeout():
    crm, provider, clock = redivis()
    provider.queue(query("running"))
    with pytest.raises(UpstreamTimeout) as caught:
        await crm.get(Entity.NOTE, "n1")
    assert caught.value.extensions == {"code": "UPSTREAM_TIMEOUT", "provider": "crm"}
    assert sum(clock.slept) <= 120.0
    assert max(clock.slept) == 2.0  # the pause stops doubling at its ceiling


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (query("failed", errorMessage="syntax error"), "query failed: syntax error"),
        (query("exploded"), "unknown query status 'exploded'"),
        (ok({"status": "completed"}), "unexpected shape"),
    ],
)
async def test_a_query_that_fails_is_a_bad_response(answer, message):
    crm, provider, _ = redivis()
    provider.queue(answer)
    with pytest.raises(UpstreamBadResponse, match=message):
        await crm.get(Entity.CONTACT, "r1")


async def test_the_table_listing_pages_by_token():
    crm, provider, _ = redivis()
    provider.queue(rows(ROW, token="t2"))
    page = await crm.fetch_page(Entity.CONTACT, "rows", "t1", 50, ListQuery())
    request = provider.last
    assert (request.method, request.url.path) == (
        "GET",
        "/base/api/v1/tables/acme.crm.contacts/rows",
    )
    assert request.url.params["pageToken"] == "t1"
    assert request.url.params["maxResults"] == "50"
    assert page.next == "t2"
    assert [r.remote_id for r in page.items] == ["r1"]


async def test_rows_sent_as_arrays_follow_the_selected_columns():
    crm, provider, _ = redivis()
    row = ["r2", "Bob", None, None, None, None, "c9", None, None]
    provider.queue(rows(row))
    page = await crm.fetch_page(Entity.CONTACT, "q_7", None, 10, ListQuery())
    assert provider.last.url.path == "/base/api/v1/queries/q_7/rows"
    assert "pageToken" not in provider.last.url.params
    (record,) = page.items
    assert isinstance(record, ContactRecord)
    assert (record.remote_id, record.first_name, record.company_id) == ("r2", "Bob", "c9")
    assert page.next is None


async def test_a_row_of_the_wrong_width_is_a_bad_response():
    crm, provider, _ = redivis()
    provider.queue(rows(["r2", "Bob"]))
    with pytest.raises(UpstreamBadResponse):
        await crm.fetch_page(Entity.CONTACT, "q_7", None, 10, ListQuery())


async def test_a_filtered_list_opens_a_query_with_its_where_clause():
    crm, provider, _ = redivis()
    provider.queue(query("completed"))
    handle = await crm.open_list(Entity.CONTACT, True, "r5", ListQuery(Cond("email", "eq", "a@x")))
    assert handle == "q_1"
    sql = sent_json(provider.last)["query"]
    assert sql.endswith("WHERE (email = 'a@x') AND id < 'r5' ORDER BY id DESC")
    assert await crm.open_list(Entity.CONTACT, False, None, ListQuery()) == "rows"
    assert len(provider.requests) == 1  # the table's own listing needs no query


def segments(values: int, nulls: int) -> Any:
    """Answers a segment's query by the rows it has: `q_v` the key set, `q_n` it null."""

    def answer(request: httpx.Request) -> httpx.Response:
        null = "updated_at IS NULL" in sent_json(request)["query"]
        return query("completed", id="q_n" if null else "q_v", outputNumRows=[values, nulls][null])

    return answer


ORDERED = ListQuery(Cond("email", "eq", "a@x"), (Sort("updated_at", descending=True),))


async def test_an_ordered_list_opens_a_query_per_segment_with_rows():
    crm, provider, _ = redivis()
    provider.queue(segments(values=5, nulls=2))
    # Descending: the nulls first (the merged lists' order), whatever the SQL dialect does.
    assert await crm.open_list(Entity.CONTACT, False, None, ORDERED) == "q_n.q_v"
    sql = sorted(sent_json(r)["query"].split(" FROM ")[1] for r in provider.requests)
    assert sql == [
        "`acme.crm.contacts` WHERE (email = 'a@x' AND updated_at IS NOT NULL) "
        "ORDER BY updated_at DESC, id ASC",
        "`acme.crm.contacts` WHERE (email = 'a@x' AND updated_at IS NULL) ORDER BY id ASC",
    ]
    provider.queue(segments(values=5, nulls=0))
    assert await crm.open_list(Entity.CONTACT, True, None, ORDERED) == "q_v"


async def test_an_ordered_list_reopens_after_a_records_key_and_id():
    crm, provider, _ = redivis()
    provider.queue(segments(values=5, nulls=2))
    after = Keyset(Sort("updated_at", True)).key(datetime(2024, 5, 1, tzinfo=UTC), "r5")
    assert await crm.open_list(Entity.CONTACT, False, after, ORDERED) == "q_v"
    # Past the nulls: only the rest of the values' segment.
    (request,) = provider.requests
    assert sent_json(request)["query"].endswith(
        "WHERE (email = 'a@x' AND (updated_at IS NOT NULL AND "
        "(updated_at < '2024-05-01 00:00:00.000000' OR "
        "(updated_at = '2024-05-01 00:00:00.000000' AND id > 'r5')))) "
        "ORDER BY updated_at DESC, id ASC"
    )


async def test_a_page_of_an_ordered_list_runs_on_into_the_next_segment():
    crm, provider, _ = redivis()
    provider.queue(rows(ROW, {**ROW, "id": "r2"}), rows({**ROW, "id": "r3"}, token="t2"))
    page = await crm.fetch_page(Entity.CONTACT, "q_v.q_n", None, 3, ORDERED)
    assert [r.remote_id for r in page.items] == ["r1", "r2", "r3"]
    assert page.next == "1~t2"
    first, second = provider.requests
    assert (first.url.path, first.url.params["maxResults"]) == (
        "/base/api/v1/queries/q_v/rows",
        "3",
    )
    assert (second.url.path, second.url.params["maxResults"]) == (
        "/base/api/v1/queries/q_n/rows",
        "1",
    )
    assert "pageToken" not in second.url.params
    # A page that fills exactly at a segment's end: the next starts the next segment.
    provider.queue(rows(ROW))
    page = await crm.fetch_page(Entity.CONTACT, "q_v.q_n", "0~t1", 1, ORDERED)
    assert (page.next, provider.last.url.params["pageToken"]) == ("1~", "t1")
    page = await crm.fetch_page(Entity.CONTACT, "q_v.q_n", "1~", 5, ORDERED)
    assert provider.last.url.path == "/base/api/v1/queries/q_n/rows"
    assert "pageToken" not in provider.last.url.params
    assert page.next is None  # a short page of the last segment ends the list
    with pytest.raises(ValueError, match="not a position"):
        await crm.fetch_page(Entity.CONTACT, "q_v.q_n", "2~t", 5, ORDERED)


def test_an_ordered_lists_handle_names_at_most_two_queries():
    crm, _, _ = redivis()
    assert crm.valid_handle("q_1.q_2")
    assert not crm.valid_handle("q_1.q_2.q_3")
    assert not crm.valid_handle("q_1.")


async def test_count_reads_the_tables_rows_or_the_querys():
    crm, provider, _ = redivis()
    provider.queue(ok({"name": "contacts", "numRows": "1234"}))
    assert await crm.count(Entity.CONTACT, ListQuery()) == 1234
    assert (provider.last.method, provider.last.url.path) == (
        "GET",
        "/base/api/v1/tables/acme.crm.contacts",
    )
    provider.queue(query("completed", outputNumRows=7))
    assert await crm.count(Entity.CONTACT, ListQuery(Cond("email", "eq", "a@x"))) == 7


async def test_a_batch_is_one_in_list_query_for_its_valid_ids():
    crm, provider, _ = redivis()
    provider.queue(query("completed"), rows(ROW))
    found = await crm.get_many(Entity.CONTACT, ["r1", "r2", "x y"])
    assert "WHERE id IN ('r1', 'r2')" in sent_json(provider.requests[0])["query"]
    assert provider.requests[1].url.params["maxResults"] == "1000"
    assert isinstance(found[0], ContactRecord)
    assert isinstance(found[1], NotFound)
    assert isinstance(found[2], NotFound)


@pytest.mark.parametrize("bad", ["x y", "r1'; DROP TABLE contacts; --", "-r1", "a" * 129, "é"])
async def test_an_id_that_could_leave_its_literal_is_refused_unsent(bad):
    crm, provider, _ = redivis()
    with pytest.raises(NotFound):
        await crm.get(Entity.CONTACT, bad)
    (found,) = await crm.get_many(Entity.CONTACT, [bad])
    assert isinstance(found, NotFound)
    assert provider.requests == []


async def test_an_oauth_error_body_names_the_scope_it_needs():
    crm, provider, _ = redivis()
    provider.queue(
        httpx.Response(
            403,
            json={"error": "insufficient_scope", "error_description": "nope", "scope": "data"},
        )
    )
    with pytest.raises(UpstreamAuthError) as caught:
        await crm.count(Entity.DEAL, ListQuery())
    assert caught.value.message == "crm answered 403: insufficient_scope: nope (needs scope data)"
    assert caught.value.status == 403

"""BasicsOS over a mock transport: index ranges with the total in `Content-Range`, JSON
`filter`/`range` parameters, notes across three tables, `{error}` bodies naming the
field, and ids refused before anything is sent."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from gateway.errors import (
    BadUserInput,
    InvalidInput,
    NotFound,
    UpstreamBadResponse,
    UpstreamUnavailable,
)
from gateway.listquery import Cond, ListQuery
from gateway.records import ContactRecord, Entity, Link, NoteRecord
from tests.unit.mock_provider import ok, sent_json, source


def contact(row_id: int, company: int | None = 3) -> dict[str, Any]:
    return {"id": row_id, "firstName": "Ada", "lastName": "L", "companyId": company}


def rows(items: Any, span: str, total: int | str) -> httpx.Response:
    return ok(items, headers={"Content-Range": f"items {span}/{total}"})


def params(request: httpx.Request) -> dict[str, Any]:
    return {k: json.loads(v) for k, v in request.url.params.items()}


async def test_get_sends_the_bearer_token_to_the_row():
    crm, provider = source("basicsos")
    provider.queue(ok(contact(5)))
    record = await crm.get(Entity.CONTACT, "5")
    request = provider.last
    assert (request.method, request.url.path) == ("GET", "/base/api/contacts/5")
    assert request.headers["Authorization"] == "Bearer basics-token"
    assert isinstance(record, ContactRecord)
    assert (record.remote_id, record.name, record.company_id) == ("5", "Ada L", "3")


async def test_a_note_id_names_its_table():
    crm, provider = source("basicsos")
    provider.queue(ok({"id": 7, "title": "t", "text": "b", "dealId": 2}))
    note = await crm.get(Entity.NOTE, "deal_notes/7")
    assert provider.last.url.path == "/base/api/deal_notes/7"
    assert isinstance(note, NoteRecord)
    assert (note.remote_id, note.target_entity, note.target_id) == (
        "deal_notes/7",
        Entity.DEAL,
        "2",
    )


async def test_a_page_is_an_inclusive_range_and_the_total_comes_from_content_range():
    crm, provider = source("basicsos")
    provider.queue(rows([contact(5)], "200-200", 1234))
    query = ListQuery(Cond("email", "eq", "a@x"))
    page = await crm.fetch_offset(Entity.CONTACT, 200, 100, query)
    assert params(provider.last) == {
        "range": [200, 299],
        "filters": [{"field": "email", "op": "eq", "value": "a@x", "logicalOp": "and"}],
    }
    assert (page.offset, page.total, [r.remote_id for r in page.items]) == (200, 1234, ["5"])


@pytest.mark.parametrize(
    "answer",
    [
        ok([contact(5)]),  # no Content-Range
        ok([contact(5)], headers={"Content-Range": "items 0-0/lots"}),
        rows({"data": []}, "0-0", 1),  # not an array
    ],
    ids=["no-header", "no-total", "not-an-array"],
)
async def test_a_page_without_its_total_or_rows_is_a_bad_response(answer):
    crm, provider = source("basicsos")
    provider.queue(answer)
    with pytest.raises(UpstreamBadResponse) as caught:
        await crm.fetch_offset(Entity.CONTACT, 0, 10, ListQuery())
    assert caught.value.extensions["provider"] == "crm"


async def test_notes_count_three_tables_then_read_the_parts_the_window_spans():
    crm, provider = source("basicsos")
    totals = {"contact_notes": 3, "company_notes": 0, "deal_notes": 5}

    def answer(request: httpx.Request) -> httpx.Response:
        table = request.url.path.rsplit("/", 1)[1]
        start, end = json.loads(request.url.params["range"])
        parent = {"contact_notes": "contact_id", "deal_notes": "deal_id"}.get(table, "company_id")
        items = [{"id": i + 1, parent: 1} for i in range(start, min(end + 1, totals[table]))]
        return rows(items, f"{start}-{end}", totals[table])

    provider.queue(answer)
    page = await crm.fetch_offset(Entity.NOTE, 2, 3, ListQuery())
    assert page.total == 8
    assert [n.remote_id for n in page.items] == ["contact_notes/3", "deal_notes/1", "deal_notes/2"]
    counts, reads = provider.requests[:3], provider.requests[3:]
    assert {params(r)["range"][1] for r in counts} == {0}
    assert sorted((r.url.path, params(r)["range"]) for r in reads) == [
        ("/base/api/contact_notes", [2, 2]),
        ("/base/api/deal_notes", [0, 1]),
    ]


async def test_a_batch_reads_its_valid_ids_with_one_filter_per_table():
    crm, provider = source("basicsos")
    provider.queue(rows([contact(2)], "0-0", 1))
    found = await crm.get_many(Entity.CONTACT, ["2", "9", "x"])
    (request,) = provider.requests
    assert params(request) == {"range": [0, 999], "filter": {"id": [2, 9]}}
    assert isinstance(found[0], ContactRecord)
    assert isinstance(found[1], NotFound)
    assert isinstance(found[2], NotFound)


async def test_children_are_one_filtered_read_grouped_by_parent():
    crm, provider = source("basicsos")
    provider.queue(rows([contact(1, 3), contact(2, 4), contact(3, 3)], "0-2", 3))
    groups = await crm.children(Link.COMPANY_CONTACTS, ["3", "4", "bad"])
    assert provider.last.url.path == "/base/api/contacts"
    assert params(provider.last)["filter"] == {"company_id": [3, 4]}
    assert isinstance(groups[0], list)
    assert isinstance(groups[1], list)
    assert [[r.remote_id for r in g] for g in (groups[0], groups[1])] == [["1", "3"], ["2"]]
    assert isinstance(groups[2], NotFound)


@pytest.mark.parametrize(
    ("entity", "bad"),
    [
        (Entity.CONTACT, "0"),
        (Entity.COMPANY, "1.5"),
        (Entity.DEAL, "deal_notes/1"),
        (Entity.NOTE, "7"),
        (Entity.NOTE, "notes/7"),
        (Entity.NOTE, "deal_notes/../7"),
    ],
)
async def test_an_id_of_another_shape_is_refused_unsent(entity, bad):
    crm, provider = source("basicsos")
    with pytest.raises(NotFound):
        await crm.get(entity, bad)
    with pytest.raises(BadUserInput):
        await crm.update(entity, bad, {"title": "x"})
    with pytest.raises(BadUserInput):
        await crm.delete(entity, bad)
    assert provider.requests == []


async def test_writes_send_api_columns_and_refusals_name_the_field():
    crm, provider = source("basicsos")
    provider.queue(ok(contact(5), status=201))
    await crm.create(Entity.CONTACT, {"first_name": "Ada", "company_id": "3"})
    assert (provider.last.method, provider.last.url.path) == ("POST", "/base/api/contacts")
    assert sent_json(provider.last) == {"first_name": "Ada", "company_id": 3}
    provider.queue(ok({"id": 8, "title": "t", "text": "b", "company_id": 3}, status=201))
    await crm.create(Entity.NOTE, {"title": "t", "body": "b", "target": (Entity.COMPANY, "3")})
    assert provider.last.url.path == "/base/api/company_notes"
    assert sent_json(provider.last) == {"title": "t", "text": "b", "company_id": 3}
    provider.queue(httpx.Response(400, json={"error": "Invalid firstName: too long"}))
    with pytest.raises(InvalidInput) as caught:
        await crm.update(Entity.CONTACT, "5", {"first_name": "x" * 999})
    assert (provider.last.method, provider.last.url.path) == ("PUT", "/base/api/contacts/5")
    assert caught.value.problems == [(["firstName"], "Invalid firstName: too long")]


async def test_a_merge_failing_part_way_says_which_losers_were_merged():
    crm, provider = source("basicsos")
    provider.queue(ok({}), httpx.Response(500, json={"error": "db down"}))
    with pytest.raises(UpstreamUnavailable) as caught:
        await crm.merge_contacts("1", ["2", "3"])
    assert [sent_json(r) for r in provider.requests] == [
        {"loserId": 2, "winnerId": 1},
        {"loserId": 3, "winnerId": 1},
    ]
    assert caught.value.extensions == {
        "code": "UPSTREAM_UNAVAILABLE",
        "provider": "crm",
        "status": 500,
        "mergedBeforeFailure": ["2"],
    }
    assert caught.value.message == "crm answered 500: db down"

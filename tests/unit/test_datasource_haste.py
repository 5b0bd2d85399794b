"""hasteCRM over a mock transport: either credential, cursor pages both ways, contact
batches and company children as searches, `{error: {code, message}}` bodies, and ids
refused by their resource prefix before anything is sent."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gateway.datasources.base import Op
from gateway.errors import (
    BadUserInput,
    InvalidInput,
    NotFound,
    UpstreamBadResponse,
    UpstreamRejected,
)
from gateway.listquery import All, Cond, ListQuery, Sort
from gateway.records import ContactRecord, Entity, Link
from tests.unit.mock_provider import ok, sent_json, source


def contact(remote_id: str, company: str | None = "comp_1") -> dict[str, Any]:
    return {
        "id": remote_id,
        "firstName": "Ada",
        "lastName": "L",
        "email": "ada@example.com",
        "createdAt": "2026-01-02T03:04:05Z",
        "company": {"id": company, "name": "Acme"} if company else None,
        "tags": ["vip"],
    }


def listing(items: list[dict[str, Any]], after: str | None, before: str | None = None) -> Any:
    return ok({"data": items, "meta": {"cursor": {"next": after, "previous": before}}})


@pytest.mark.parametrize(
    ("credentials", "header", "value"),
    [
        ({"token": "t1", "api_key": "k1"}, "Authorization", "Bearer t1"),
        ({"api_key": "k1"}, "X-API-Key", "k1"),
    ],
)
async def test_one_credential_is_sent_the_token_first(credentials, header, value):
    crm, provider = source("haste", credentials=credentials)
    provider.queue(ok({"data": contact("cont_1")}))
    record = await crm.get(Entity.CONTACT, "cont_1")
    request = provider.last
    assert (request.method, request.url.path) == ("GET", "/base/v1/contacts/cont_1")
    assert request.headers[header] == value
    assert ("X-API-Key" in request.headers) is (header == "X-API-Key")
    assert isinstance(record, ContactRecord)
    assert (record.company_id, record.tags) == ("comp_1", ["vip"])


async def test_a_forward_page_sorts_by_creation_and_sends_its_cursor():
    crm, provider = source("haste")
    provider.queue(listing([contact("cont_1")], "c2", "c0"))
    query = ListQuery(All((Cond("status", "eq", "lead"), Cond("company_id", "eq", "comp_1"))))
    page = await crm.fetch_page(Entity.CONTACT, "forward", "c1", 25, query)
    assert dict(provider.last.url.params) == {
        "sort": "created_at",
        "status": "lead",
        "company": "comp_1",
        "limit": "25",
        "cursor": "c1",
    }
    assert (page.next, page.previous) == ("c2", "c0")
    assert [r.remote_id for r in page.items] == ["cont_1"]


async def test_a_reverse_page_flips_every_sort_key():
    crm, provider = source("haste")
    provider.queue(listing([], None))
    query = ListQuery(order=(Sort("last_name", True),))
    page = await crm.fetch_page(Entity.CONTACT, "reverse", None, 10, query)
    assert dict(provider.last.url.params) == {"sort": "last_name", "limit": "10"}
    assert page.next is None
    provider.queue(listing([], None))
    await crm.fetch_page(Entity.DEAL, "reverse", None, 10, ListQuery())
    assert provider.last.url.params["sort"] == "-created_at"


async def test_a_contact_batch_is_one_search_of_its_valid_ids():
    crm, provider = source("haste")
    provider.queue(ok({"data": [contact("cont_2")], "meta": {"cursor": {"next": None}}}))
    found = await crm.get_many(Entity.CONTACT, ["cont_1", "cont_2", "comp_9"])
    request = provider.last
    assert (request.method, request.url.path) == ("POST", "/base/v1/contacts/search")
    assert sent_json(request) == {
        "or": [
            {"field": "id", "operator": "equals", "value": "cont_1"},
            {"field": "id", "operator": "equals", "value": "cont_2"},
        ],
        "limit": 100,
    }
    assert isinstance(found[0], NotFound)
    assert isinstance(found[1], ContactRecord)
    assert isinstance(found[2], NotFound)


async def test_a_search_that_repeats_its_cursor_fails_instead_of_looping():
    crm, provider = source("haste")
    provider.queue(ok({"data": [contact("cont_1")], "meta": {"cursor": {"next": "same"}}}))
    with pytest.raises(UpstreamBadResponse, match="repeated a page position"):
        await crm.get_many(Entity.CONTACT, ["cont_1", "cont_2"])
    assert len(provider.requests) == 2
    assert sent_json(provider.last)["cursor"] == "same"


async def test_company_contacts_are_one_search_grouped_by_company():
    crm, provider = source("haste")
    provider.queue(
        ok(
            {
                "data": [contact("cont_1", "comp_1"), contact("cont_2", "comp_2")],
                "meta": {"cursor": {"next": None}},
            }
        )
    )
    groups = await crm.children(Link.COMPANY_CONTACTS, ["comp_2", "comp_1", "cont_1"])
    assert len(provider.requests) == 1
    assert [leaf["value"] for leaf in sent_json(provider.last)["or"]] == ["comp_2", "comp_1"]
    assert isinstance(groups[0], list)
    assert isinstance(groups[1], list)
    assert [[r.remote_id for r in g] for g in (groups[0], groups[1])] == [["cont_2"], ["cont_1"]]
    assert isinstance(groups[2], NotFound)


async def test_deals_of_a_contact_are_a_filtered_listing():
    crm, provider = source("haste")
    provider.queue(listing([], None))
    (deals,) = await crm.children(Link.CONTACT_DEALS, ["cont_1"])
    assert deals == []
    assert provider.last.url.path == "/base/v1/deals"
    assert dict(provider.last.url.params) == {
        "sort": "created_at",
        "contact": "cont_1",
        "limit": "100",
    }


@pytest.mark.parametrize(
    ("entity", "bad"),
    [
        (Entity.CONTACT, "comp_1"),  # another resource's prefix
        (Entity.CONTACT, "cont_"),
        (Entity.COMPANY, "comp_1/../x"),
        (Entity.DEAL, "deal_" + "x" * 65),
        (Entity.NOTE, "1"),
    ],
)
async def test_an_id_of_another_shape_is_refused_unsent(entity, bad):
    crm, provider = source("haste")
    with pytest.raises(NotFound):
        await crm.get(entity, bad)
    with pytest.raises(BadUserInput):
        await crm.update(entity, bad, {})
    with pytest.raises(BadUserInput):
        await crm.merge_contacts(bad if entity is Entity.CONTACT else "cont_1", [bad])
    assert provider.requests == []


async def test_an_error_body_gives_its_code_and_message():
    crm, provider = source("haste")
    provider.queue(
        httpx.Response(400, json={"error": {"code": "BAD_SORT", "message": "no such sort"}})
    )
    with pytest.raises(UpstreamRejected) as caught:
        await crm.fetch_page(Entity.COMPANY, "forward", None, 10, ListQuery())
    assert caught.value.message == "crm answered 400: BAD_SORT: no such sort"
    assert caught.value.extensions == {
        "code": "UPSTREAM_BAD_REQUEST",
        "provider": "crm",
        "status": 400,
    }


async def test_writes_send_camel_case_and_validation_details_become_field_problems():
    crm, provider = source("haste")
    provider.queue(ok({"data": contact("cont_1")}, status=201))
    await crm.create(Entity.CONTACT, {"first_name": "Ada", "company_id": "comp_1"})
    assert (provider.last.method, provider.last.url.path) == ("POST", "/base/v1/contacts")
    assert sent_json(provider.last) == {"firstName": "Ada", "companyId": "comp_1"}
    body = {
        "error": {
            "code": "VALIDATION_ERROR",
            "message": "invalid",
            "details": {"fields": {"title": ["is required"]}},
        }
    }
    provider.queue(httpx.Response(422, json=body))
    with pytest.raises(InvalidInput) as caught:
        await crm.update(Entity.DEAL, "deal_1", {"name": ""})
    assert (provider.last.method, provider.last.url.path) == ("PATCH", "/base/v1/deals/deal_1")
    assert sent_json(provider.last) == {"title": ""}
    assert caught.value.problems == [(["name"], "title is required")]


async def test_bulk_refuses_bad_ids_alone_and_maps_each_result():
    crm, provider = source("haste")
    results = [
        {"index": 1, "status": "error", "error": {"code": "RESOURCE_NOT_FOUND"}},
        {"index": 0, "status": "success", "data": contact("cont_1")},
    ]
    provider.queue(ok({"data": {"results": results}}))
    outcomes = await crm.bulk(
        Entity.CONTACT,
        [
            (Op.UPDATE, "cont_1", {"first_name": "A"}),
            (Op.UPDATE, "deal_1", {"first_name": "B"}),
            (Op.DELETE, "cont_2", None),
        ],
    )
    assert sent_json(provider.last) == {
        "operations": [
            {"method": "update", "id": "cont_1", "data": {"firstName": "A"}},
            {"method": "delete", "id": "cont_2"},
        ]
    }
    assert isinstance(outcomes[0], ContactRecord)
    assert isinstance(outcomes[1], InvalidInput)
    assert isinstance(outcomes[2], NotFound)

"""RevyOps over a mock transport: page-number requests with `client_id` and FLAT custom
fields, DRF envelopes and errors, and ids refused before anything is sent."""

from __future__ import annotations

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
from gateway.listquery import All, Cond, ListQuery
from gateway.records import ContactRecord, Entity
from tests.unit.mock_provider import ok, sent_json, source

CONTACT = {
    "id": 7,
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.com",
    "contact_status": "lead",
    "company_id": 3,
    "updated_time": "2026-01-02T03:04:05+00:00",
    "contact_custom_fields": {"tier": "gold"},
}


def page(results: list[dict[str, Any]], count: int) -> httpx.Response:
    return ok({"count": count, "next": None, "previous": None, "results": results})


async def test_get_sends_the_client_id_the_key_and_flat_structure():
    crm, provider = source("revyops")
    provider.queue(ok(CONTACT))
    record = await crm.get(Entity.CONTACT, "7")
    assert isinstance(record, ContactRecord)
    request = provider.last
    assert (request.method, request.url.path) == ("GET", "/base/public/v2/contacts/7")
    assert dict(request.url.params) == {"client_id": "cid-1", "structure": "FLAT"}
    assert request.headers["x-api-key"] == "key-1"
    assert record.remote_id == "7"
    assert record.first_name == "Ada"
    assert record.name == "Ada Lovelace"
    assert [e.address for e in record.emails] == ["ada@example.com"]
    assert record.company_id == "3"
    assert record.custom_fields == {"tier": "gold"}


async def test_a_page_is_asked_by_number_and_size_with_its_filters():
    crm, provider = source("revyops")
    provider.queue(page([CONTACT], 250))
    query = ListQuery(All((Cond("email", "eq", "ada@example.com"), Cond("last_name", "eq", "L"))))
    result = await crm.fetch_offset(Entity.CONTACT, 200, 100, query)
    assert dict(provider.last.url.params) == {
        "client_id": "cid-1",
        "page": "3",
        "page_size": "100",
        "email": "ada@example.com",
        "lastname": "L",
        "structure": "FLAT",
    }
    assert (result.offset, result.total) == (200, 250)
    assert [r.remote_id for r in result.items] == ["7"]


async def test_a_page_past_the_end_asks_page_one_for_the_total():
    crm, provider = source("revyops")
    provider.queue(httpx.Response(404, json={"detail": "Invalid page."}), page([CONTACT], 42))
    result = await crm.fetch_offset(Entity.CONTACT, 1000, 100, ListQuery())
    assert (result.items, result.total) == ([], 42)
    assert [r.url.params["page"] for r in provider.requests] == ["11", "1"]
    assert provider.last.url.params["page_size"] == "1"


async def test_a_404_on_get_is_not_found_for_that_id():
    crm, provider = source("revyops")
    provider.queue(httpx.Response(404, json={"detail": "Not found."}))
    with pytest.raises(NotFound, match="'9'"):
        await crm.get(Entity.COMPANY, "9")


@pytest.mark.parametrize("bad", ["abc", "0", "07", "1/2", "..", "\uff11", "9" * 19, ""])
async def test_an_id_of_another_shape_is_refused_unsent(bad):
    crm, provider = source("revyops")
    with pytest.raises(NotFound):
        await crm.get(Entity.CONTACT, bad)
    with pytest.raises(BadUserInput) as caught:
        await crm.update(Entity.CONTACT, bad, {"first_name": "x"})
    assert caught.value.extensions == {"code": "BAD_USER_INPUT", "argument": "id"}
    with pytest.raises(BadUserInput):
        await crm.delete(Entity.COMPANY, bad)
    assert provider.requests == []


async def test_a_wrong_envelope_is_a_bad_response():
    crm, provider = source("revyops")
    provider.queue(ok({"items": []}))
    with pytest.raises(UpstreamBadResponse) as caught:
        await crm.fetch_offset(Entity.COMPANY, 0, 10, ListQuery())
    assert caught.value.extensions["provider"] == "crm"
    assert caught.value.status == 200


async def test_a_server_error_names_the_provider_and_status():
    crm, provider = source("revyops")
    provider.queue(httpx.Response(503, json={"detail": "down for maintenance"}))
    with pytest.raises(UpstreamUnavailable) as caught:
        await crm.get(Entity.CONTACT, "7")
    assert caught.value.extensions == {
        "code": "UPSTREAM_UNAVAILABLE",
        "provider": "crm",
        "status": 503,
    }
    assert "down for maintenance" in caught.value.message
    assert "cid-1" not in caught.value.message


async def test_create_sends_renamed_fields_and_custom_fields_as_name_value_pairs():
    crm, provider = source("revyops")
    provider.queue(ok(CONTACT, status=201))
    values = {"first_name": "Ada", "status": "lead", "company_id": "3", "custom_fields": {"t": 1}}
    record = await crm.create(Entity.CONTACT, values)
    request = provider.last
    assert (request.method, request.url.path) == ("POST", "/base/public/v2/contacts")
    assert request.url.params["structure"] == "FLAT"
    assert sent_json(request) == {
        "first_name": "Ada",
        "contact_status": "lead",
        "company_id": 3,
        "contact_custom_fields": [{"field_name": "t", "field_value": "1"}],
    }
    assert record.remote_id == "7"


async def test_a_company_industry_is_written_as_a_custom_field():
    crm, provider = source("revyops")
    provider.queue(ok({"id": 3, "name": "Acme"}))
    await crm.update(Entity.COMPANY, "3", {"name": "Acme", "industry": "Tools"})
    request = provider.last
    assert (request.method, request.url.path) == ("PATCH", "/base/public/v2/companies/3")
    assert sent_json(request) == {
        "name": "Acme",
        "company_custom_fields": [{"field_name": "industry", "field_value": "Tools"}],
    }


async def test_a_drf_validation_error_becomes_field_problems():
    crm, provider = source("revyops")
    provider.queue(httpx.Response(400, json={"first_name": ["Too long."], "email": "Bad."}))
    with pytest.raises(InvalidInput) as caught:
        await crm.update(Entity.CONTACT, "7", {"first_name": "x" * 500})
    assert caught.value.problems == [(["firstName"], "Too long."), (["email"], "Bad.")]
    assert caught.value.extensions == {"code": "BAD_USER_INPUT", "provider": "crm"}
    assert len(provider.requests) == 1  # a write is sent once


async def test_delete_of_a_missing_record_is_not_found():
    crm, provider = source("revyops")
    provider.queue(httpx.Response(404, json={"detail": "Not found."}))
    with pytest.raises(NotFound):
        await crm.delete(Entity.CONTACT, "7")
    assert provider.last.method == "DELETE"
    assert provider.last.url.path == "/base/public/v2/contacts/7"

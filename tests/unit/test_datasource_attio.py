"""Attio over a mock transport: bearer auth, `data`/`meta` envelopes, filtered lists and
batches through the records query endpoint, both error body shapes, UUIDs only."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gateway.errors import (
    BadUserInput,
    InvalidInput,
    NotFound,
    UpstreamAuthError,
    UpstreamBadResponse,
)
from gateway.listquery import Cond, ListQuery, Sort
from gateway.records import ContactRecord, Entity, Link
from tests.unit.mock_provider import ok, sent_json, source

ADA = "0b0f3c6e-1d2a-4c3b-9e8f-000000000001"
BOB = "0b0f3c6e-1d2a-4c3b-9e8f-000000000002"
ACME = "0b0f3c6e-1d2a-4c3b-9e8f-00000000000a"


def person(record_id: str, first: str = "Ada") -> dict[str, Any]:
    return {
        "id": {"workspace_id": "w", "object_id": "people", "record_id": record_id},
        "created_at": "2026-01-02T03:04:05.123456789Z",
        "values": {
            "name": [{"first_name": first, "last_name": "L", "full_name": f"{first} L"}],
            "email_addresses": [{"email_address": f"{first.lower()}@example.com"}],
            "company": [{"target_object": "companies", "target_record_id": ACME}],
            "favourite": [{"attribute_type": "text", "value": "tea"}],
        },
    }


async def test_get_sends_the_bearer_key_and_reads_the_data_envelope():
    crm, provider = source("attio")
    provider.queue(ok({"data": person(ADA)}))
    record = await crm.get(Entity.CONTACT, ADA)
    assert isinstance(record, ContactRecord)
    request = provider.last
    assert (request.method, request.url.path) == ("GET", f"/base/v2/objects/people/records/{ADA}")
    assert request.headers["Authorization"] == "Bearer attio-key"
    assert not request.url.params
    assert record.remote_id == ADA
    assert record.name == "Ada L"
    assert record.company_id == ACME
    assert record.custom_fields == {"favourite": "tea"}
    assert record.created_at is not None
    assert record.created_at.microsecond == 123456  # nanoseconds cut to what Python keeps


async def test_an_unfiltered_page_is_a_get_with_page_and_page_size():
    crm, provider = source("attio")
    provider.queue(ok({"data": [person(ADA)], "meta": {"total": 51}}))
    result = await crm.fetch_offset(Entity.CONTACT, 50, 25, ListQuery())
    assert provider.last.method == "GET"
    assert dict(provider.last.url.params) == {"page": "3", "pageSize": "25"}
    assert (result.offset, result.total, len(result.items)) == (50, 51, 1)


async def test_a_filtered_page_posts_to_the_query_endpoint():
    crm, provider = source("attio")
    provider.queue(ok({"data": [], "meta": {"total": 0}}))
    query = ListQuery(Cond("email", "eq", "a@x"), (Sort("last_name", True),))
    await crm.fetch_offset(Entity.CONTACT, 0, 10, query)
    request = provider.last
    assert (request.method, request.url.path) == (
        "POST",
        "/base/v2/objects/people/records/query",
    )
    assert sent_json(request) == {
        "filter": {"email_addresses": {"email_address": {"$eq": "a@x"}}},
        "sorts": [{"attribute": "name", "direction": "desc", "field": "last_name"}],
        "page": 1,
        "pageSize": 10,
    }


async def test_a_batch_asks_for_its_ids_in_one_query_and_misses_are_not_found():
    crm, provider = source("attio")
    provider.queue(ok({"data": [person(BOB, "Bob")]}))
    found = await crm.get_many(Entity.CONTACT, [ADA, BOB, "not-a-uuid", BOB])
    assert len(provider.requests) == 1
    assert sent_json(provider.last) == {"filter": {"record_id": {"$in": [ADA, BOB]}}, "limit": 2}
    assert isinstance(found[0], NotFound)
    assert isinstance(found[1], ContactRecord)
    assert isinstance(found[2], NotFound)
    assert found[3] is found[1]


async def test_notes_of_a_parent_page_by_fifty():
    crm, provider = source("attio")
    note = {
        "id": {"note_id": "0b0f3c6e-1d2a-4c3b-9e8f-0000000000ff"},
        "parent_object": "people",
        "parent_record_id": ADA,
        "title": "t",
        "content_plaintext": "b",
        "created_at": "2026-01-01T00:00:00Z",
    }
    provider.queue(ok({"data": [note]}))
    (notes,) = await crm.children(Link.CONTACT_NOTES, [ADA])
    assert isinstance(notes, list)
    assert len(notes) == 1
    assert dict(provider.last.url.params) == {
        "parent_object": "people",
        "parent_record_id": ADA,
        "page": "1",
        "pageSize": "50",
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"error": {"type": "auth", "message": "bad key"}}, "bad key"),  # the seed's shape
        ({"status_code": 401, "message": "Unauthorized key"}, "Unauthorized key"),  # flat
    ],
)
async def test_both_error_shapes_give_their_message(body, message):
    crm, provider = source("attio")
    provider.queue(httpx.Response(401, json=body))
    with pytest.raises(UpstreamAuthError) as caught:
        await crm.get(Entity.COMPANY, ACME)
    assert caught.value.message == f"crm answered 401: {message}"
    assert caught.value.extensions == {"code": "UPSTREAM_AUTH", "provider": "crm", "status": 401}
    assert "attio-key" not in caught.value.message


@pytest.mark.parametrize("bad", ["42", ADA.upper(), ADA + "0", f"{ADA}/..", "../" + ADA])
async def test_anything_but_a_lowercase_uuid_is_refused_unsent(bad):
    crm, provider = source("attio")
    with pytest.raises(NotFound):
        await crm.get(Entity.DEAL, bad)
    with pytest.raises(BadUserInput):
        await crm.update(Entity.CONTACT, bad, {"email": "a@x"})
    with pytest.raises(BadUserInput):
        await crm.delete(Entity.NOTE, bad)
    assert provider.requests == []


async def test_create_sends_values_by_attribute_slug():
    crm, provider = source("attio")
    provider.queue(ok({"data": person(ADA)}))
    await crm.create(
        Entity.CONTACT,
        {"first_name": "Ada", "last_name": "L", "email": "a@x", "company_id": ACME},
    )
    request = provider.last
    assert (request.method, request.url.path) == ("POST", "/base/v2/objects/people/records")
    assert sent_json(request) == {
        "data": {
            "values": {
                "name": {"first_name": "Ada", "last_name": "L", "full_name": "Ada L"},
                "email_addresses": ["a@x"],
                "company": {"target_object": "companies", "target_record_id": ACME},
            }
        }
    }


async def test_an_update_of_half_the_name_reads_the_other_half_first():
    crm, provider = source("attio")
    provider.queue(ok({"data": person(ADA)}))
    await crm.update(Entity.CONTACT, ADA, {"first_name": "Augusta"})
    get, put = provider.requests
    assert get.method == "GET"
    assert (put.method, put.url.path) == ("PUT", f"/base/v2/objects/people/records/{ADA}")
    assert sent_json(put)["data"]["values"]["name"] == {
        "first_name": "Augusta",
        "last_name": "L",
        "full_name": "Augusta L",
    }


async def test_a_refused_value_names_its_field():
    crm, provider = source("attio")
    provider.queue(
        httpx.Response(400, json={"message": "Invalid value for email_addresses: not an email"})
    )
    with pytest.raises(InvalidInput) as caught:
        await crm.create(Entity.CONTACT, {"email": "nope"})
    assert caught.value.problems == [(["email"], "Invalid value for email_addresses: not an email")]


async def test_a_note_without_a_target_is_refused_unsent():
    crm, provider = source("attio")
    with pytest.raises(InvalidInput):
        await crm.create(Entity.NOTE, {"title": "t"})
    assert provider.requests == []


async def test_a_list_without_its_total_is_a_bad_response():
    crm, provider = source("attio")
    provider.queue(ok({"data": []}))
    with pytest.raises(UpstreamBadResponse, match="unexpected shape"):
        await crm.fetch_offset(Entity.COMPANY, 0, 10, ListQuery())

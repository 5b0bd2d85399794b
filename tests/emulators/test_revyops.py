"""The RevyOps emulator against its contract, in process."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from emulators import EmulatorOptions, revyops
from gateway.cli import main
from gateway.providers import create_emulator
from gateway.records import Entity
from tests.support.knowledge import CompanyFields, ProviderKnowledge
from tests.support.stack import emulator_client

SMALL = EmulatorOptions(rate_limits=False, companies=12, contacts=30, deals=5, notes=5)
CID = {"client_id": revyops.DEMO_CLIENT_ID}
V2 = "/public/v2"


# --- what the tests know of RevyOps, read straight from its API -----------------------
AUTH = {"client_id": revyops.DEMO_CLIENT_ID}


def _rows(client: httpx.Client, entity: Entity, limit: int | None = None) -> list[dict[str, Any]]:
    """The first `limit` rows, or all of them."""
    params: dict[str, Any] = {**AUTH, "page_size": limit or 1000}
    rows: list[dict[str, Any]] = []
    page = 1
    while True:
        body = client.get(f"/public/v2/{entity.plural}", params={**params, "page": page}).json()
        rows += body["results"]
        if not body["next"] or limit:
            return rows
        page += 1


def _remote_ids(client: httpx.Client, entity: Entity) -> list[str]:
    return [str(r["id"]) for r in _rows(client, entity)]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _contact_companies(client: httpx.Client, count: int) -> dict[str, str | None]:
    return {str(r["id"]): _text(r["company_id"]) for r in _rows(client, Entity.CONTACT, count)}


def _companies(client: httpx.Client) -> dict[str, CompanyFields]:
    return {
        str(r["id"]): {"name": r["name"] or None, "domain": r["domain"] or None}
        for r in _rows(client, Entity.COMPANY)
    }


KNOWLEDGE = ProviderKnowledge(
    kind="revyops",
    remote_ids=_remote_ids,
    sample_ids={Entity.CONTACT: "17", Entity.COMPANY: "3"},
    unknown_ids={Entity.CONTACT: "999999", Entity.COMPANY: "999999"},
    contact_companies=_contact_companies,
    companies=_companies,
)
# --------------------------------------------------------------------------------------


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    async with emulator_client(create_emulator("revyops", SMALL), "revyops") as client:
        yield client


def q(**params: Any) -> dict[str, Any]:
    return {**CID, **params}


@pytest.mark.parametrize(
    ("params", "status", "detail"),
    [
        ({}, 403, "Authentication credentials were not provided."),
        ({"client_id": ""}, 403, "Authentication credentials were not provided."),
        ({"client_id": "nobody"}, 403, "Invalid client_id."),
        (q(page=0), 404, "Invalid page."),
        (q(page="x"), 404, "Invalid page."),
        (q(page=2), 404, "Invalid page."),  # 30 contacts fit one page of 100
    ],
)
async def test_refusals_carry_a_detail(
    api: httpx.AsyncClient, params: dict[str, Any], status: int, detail: str
) -> None:
    response = await api.get(f"{V2}/contacts", params=params)
    assert (response.status_code, response.json()) == (status, {"detail": detail})


async def test_pages_link_by_absolute_urls_keeping_the_other_parameters(
    api: httpx.AsyncClient,
) -> None:
    first = (await api.get(f"{V2}/contacts", params=q(page_size=7))).json()
    assert (first["count"], first["total_pages"], first["current_page"]) == (30, 5, 1)
    assert first["previous"] is None
    assert [r["id"] for r in first["results"]] == list(range(1, 8))
    second_url = httpx.URL(first["next"])
    assert second_url.params["page"] == "2"
    assert second_url.params["page_size"] == "7"
    assert second_url.params["client_id"] == revyops.DEMO_CLIENT_ID
    second = (await api.get(first["next"])).json()
    # DRF drops `page` from the link back to page 1.
    assert "page" not in httpx.URL(second["previous"]).params
    third = (await api.get(second["next"])).json()
    assert httpx.URL(third["previous"]).params["page"] == "2"
    last = (await api.get(f"{V2}/contacts", params=q(page_size=7, page="last"))).json()
    assert (last["current_page"], last["next"], len(last["results"])) == (5, None, 2)


@pytest.mark.parametrize(("raw", "size"), [("junk", 100), ("0", 100), ("-3", 100), ("5", 5)])
async def test_a_page_size_that_is_not_positive_is_the_default(
    api: httpx.AsyncClient, raw: str, size: int
) -> None:
    body = (await api.get(f"{V2}/companies", params=q(page_size=raw))).json()
    assert body["page_size"] == size


async def test_strict_parameters(api: httpx.AsyncClient) -> None:
    too_big = await api.get(f"{V2}/contacts", params=q(page_size=1001))
    assert too_big.status_code == 400
    assert "page_size" in too_big.json()
    for path in (f"{V2}/contacts", "/public/contacts", f"{V2}/contacts/1"):
        shape = await api.get(path, params=q(structure="TREE"))
        assert (shape.status_code, list(shape.json())) == (400, ["structure"])


async def test_an_empty_list_is_one_empty_page(api: httpx.AsyncClient) -> None:
    body = (await api.get(f"{V2}/contacts", params=q(email="nobody@nowhere.test"))).json()
    assert (body["count"], body["total_pages"], body["results"], body["next"]) == (0, 1, [], None)


async def test_custom_fields_nested_or_flat(api: httpx.AsyncClient) -> None:
    nested = (await api.get(f"{V2}/companies/1", params=q())).json()
    flat = (await api.get(f"{V2}/companies/1", params=q(structure="flat"))).json()
    fields = nested["company_custom_fields"]
    assert {"id", "updated_time", "field_name", "field_value"} <= set(fields[0])
    assert flat["company_custom_fields"] == {f["field_name"]: f["field_value"] for f in fields}


async def test_filters_match_case_insensitively_and_and_together(api: httpx.AsyncClient) -> None:
    contacts = (await api.get(f"{V2}/contacts", params=q(page_size=1000))).json()["results"]
    companies = (await api.get(f"{V2}/companies", params=q())).json()["results"]
    one = contacts[3]
    for name, value in (
        ("email", one["email"].upper()),
        ("firstname", one["first_name"].lower()),
        ("lastname", one["last_name"].upper()),
        ("linkedin_url", one["linkedin_url"]),
    ):
        got = (await api.get(f"{V2}/contacts", params=q(**{name: value}))).json()["results"]
        assert one["id"] in [r["id"] for r in got]
        assert all(
            str(r[name.replace("firstname", "first_name").replace("lastname", "last_name")]).lower()
            == value.lower()
            for r in got
        )
    both = q(firstname=one["first_name"], lastname="not-" + one["last_name"])
    assert (await api.get(f"{V2}/contacts", params=both)).json()["count"] == 0
    ignored = (await api.get(f"{V2}/contacts", params=q(shoe_size=44))).json()
    assert ignored["count"] == 30
    by_id = {c["id"]: c for c in companies}
    company = next(c for c in contacts if c["company_id"])["company_id"]
    domain = by_id[company]["domain"]
    staff = (await api.get(f"{V2}/contacts", params=q(domain=domain.upper()))).json()["results"]
    assert staff
    assert {r["company_id"] for r in staff} == {company}
    industry = next(
        f["field_value"]
        for f in by_id[company]["company_custom_fields"]
        if f["field_name"] == "industry"
    )
    for name, value in (
        ("domain", domain),
        ("name", by_id[company]["name"]),
        ("industry", industry),
    ):
        got = (await api.get(f"{V2}/companies", params=q(**{name: value}))).json()["results"]
        assert company in [c["id"] for c in got]


async def test_v1_lists_are_plain_arrays(api: httpx.AsyncClient) -> None:
    rows = (await api.get("/public/contacts", params=q(structure="FLAT"))).json()
    assert isinstance(rows, list)
    assert len(rows) == 30
    assert isinstance(rows[0]["contact_custom_fields"], dict)


async def test_lookup_by_custom_field(api: httpx.AsyncClient) -> None:
    path = f"{V2}/companies/lookup-by-custom-field"
    missing = await api.get(path, params=q(field_name="industry"))
    assert (missing.status_code, missing.json()) == (
        400,
        {"field_value": ["This field is required."]},
    )
    both = await api.get(path, params=q())
    assert set(both.json()) == {"field_name", "field_value"}
    company = (await api.get(f"{V2}/companies/2", params=q(structure="FLAT"))).json()
    industry = company["company_custom_fields"]["industry"]
    found = (await api.get(path, params=q(field_name="industry", field_value=industry))).json()
    assert 2 in [r["id"] for r in found["results"]]
    assert all(r["company_custom_fields"] for r in found["results"])


@pytest.mark.parametrize("row_id", ["999", "abc"])
async def test_unknown_rows_are_404(api: httpx.AsyncClient, row_id: str) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        response = await api.request(method, f"{V2}/contacts/{row_id}", params=q(), json={})
        assert (response.status_code, response.json()) == (404, {"detail": "Not found."})


WRITE_REFUSALS: list[tuple[str, Any, int, Any]] = [
    (
        "contacts",
        {"first_name": "X"},
        400,
        {"email": ["This field is required (or linkedin_url)."]},
    ),
    ("companies", {"name": "X"}, 400, {"domain": ["This field is required."]}),
    ("contacts", {"email": "not-an-email"}, 400, {"email": ["Enter a valid email address."]}),
    (
        "contacts",
        {"email": "a@b.test", "first_name": ["x"]},
        400,
        {"first_name": ["Not a valid string."]},
    ),
    ("contacts", [1, 2], 400, {"non_field_errors": ["Invalid data. Expected a dictionary."]}),
    ("contacts", {"email": "a@b.test", "company_id": 999}, 404, {"detail": "Not found."}),
    (
        "contacts",
        {"email": "a@b.test", "company_id": "no.such.domain"},
        404,
        {"detail": "Not found."},
    ),
    (
        "contacts",
        {"email": "a@b.test", "company_id": 1.5},
        400,
        {"company_id": ["Not a valid string."]},
    ),
    (
        "contacts",
        {"email": "a@b.test", "contact_custom_fields": "x"},
        400,
        {"contact_custom_fields": ["Expected a list of {field_name, field_value} objects."]},
    ),
]


@pytest.mark.parametrize(("resource", "body", "status", "error"), WRITE_REFUSALS)
async def test_write_refusals(
    api: httpx.AsyncClient, resource: str, body: Any, status: int, error: Any
) -> None:
    response = await api.post(f"{V2}/{resource}", params=q(), json=body)
    assert (response.status_code, response.json()) == (status, error)


async def test_a_body_that_is_not_json_is_a_parse_error(api: httpx.AsyncClient) -> None:
    response = await api.post(f"{V2}/contacts", params=q(), content=b"{nope")
    assert (response.status_code, response.json()) == (400, {"detail": "JSON parse error."})


async def test_duplicates_conflict(api: httpx.AsyncClient) -> None:
    taken = (await api.get(f"{V2}/contacts/1", params=q())).json()
    response = await api.post(f"{V2}/contacts", params=q(), json={"email": taken["email"].upper()})
    assert response.status_code == 409
    assert response.json() == {"detail": "Contact with this email already exists for this client."}
    domain = (await api.get(f"{V2}/companies/1", params=q())).json()["domain"]
    clash = await api.patch(f"{V2}/companies/2", params=q(), json={"domain": domain})
    assert clash.status_code == 409
    same = await api.patch(f"{V2}/companies/1", params=q(), json={"domain": domain})
    assert same.status_code == 200  # a row never clashes with itself


async def test_another_workspaces_company_is_not_authorized(api: httpx.AsyncClient) -> None:
    # Tenant 2 has as many companies as the demo one, so take one past the demo's last id.
    new = await api.post(f"{V2}/companies", params=q(), json={"domain": "extra.test"})
    assert new.status_code == 201
    other = {"client_id": revyops.TENANT2_CLIENT_ID}
    for _ in range(2):
        await api.post(f"{V2}/companies", params=other, json={"domain": f"t2-{_}.test"})
    body = {"email": "x@y.test", "company_id": 14}
    response = await api.post(f"{V2}/contacts", params=q(), json=body)
    assert response.status_code == 401
    assert "not authorized" in response.json()["detail"]


async def test_writes_round_trip(api: httpx.AsyncClient) -> None:
    company = (await api.get(f"{V2}/companies/3", params=q())).json()
    body = {
        "email": "new@person.test",
        "first_name": "New",
        "company_id": company["domain"],
        "contact_custom_fields_input": [{"field_name": "title", "field_value": "CTO"}],
    }
    created = await api.post(f"{V2}/contacts", params=q(structure="FLAT"), json=body)
    assert created.status_code == 201
    row = created.json()
    assert (row["id"], row["company_id"]) == (31, 3)
    assert row["contact_custom_fields"] == {"title": "CTO"}
    patch = {
        "contact_status": "Bounced",
        "last_name": None,
        "id": 777,  # read-only: ignored
        "contact_custom_fields": {"title": "CEO", "team": "A"},
    }
    updated = (await api.patch(f"{V2}/contacts/31", params=q(structure="odd"), json=patch)).json()
    assert (updated["id"], updated["last_name"], updated["contact_status"]) == (31, None, "Bounced")
    assert updated["previous_status"] is None
    assert updated["status_changed_at"]
    fields = {f["field_name"]: f["field_value"] for f in updated["contact_custom_fields"]}
    assert fields == {"title": "CEO", "team": "A"}  # NESTED: the asked structure was not valid
    assert (await api.delete(f"{V2}/companies/3", params=q())).status_code == 204
    orphan = (await api.get(f"{V2}/contacts/31", params=q())).json()
    assert orphan["company_id"] is None
    assert (await api.delete(f"{V2}/contacts/31", params=q())).status_code == 204
    assert (await api.get(f"{V2}/contacts/31", params=q())).status_code == 404
    company_row = await api.post(
        "/public/companies", params=q(), json={"domain": "v1.test", "company_custom_fields": []}
    )
    assert company_row.status_code == 201
    assert company_row.json()["company_custom_fields"] == []


async def test_throttling_answers_429_with_retry_after() -> None:
    app = create_emulator("revyops", EmulatorOptions(companies=2, contacts=2, deals=1, notes=1))
    now = [1000.0]
    app.state.emulator.log.clock = lambda: now[0]
    async with emulator_client(app, "revyops") as api:
        for _ in range(revyops.RATE_LIMIT):
            assert (await api.get(f"{V2}/contacts", params=q())).status_code == 200
        throttled = await api.get(f"{V2}/contacts", params=q())
        assert throttled.status_code == 429
        wait = int(throttled.headers["Retry-After"])
        assert wait >= 1
        assert throttled.json()["detail"] == (
            f"Request was throttled. Expected available in {wait} seconds."
        )
        now[0] += 1.0
        assert (await api.get(f"{V2}/contacts", params=q())).status_code == 200


async def test_control_endpoints_count_reset_and_inject(api: httpx.AsyncClient) -> None:
    await api.post(f"{V2}/contacts", params=q(), json={"email": "c@d.test"})
    await api.get(f"{V2}/contacts/999", params=q())
    stats = (await api.get("/_emulator/stats")).json()
    assert stats["requests"] == 2
    assert stats["by_endpoint"] == {"POST /public/v2/contacts": 1, "GET /public/v2/contacts/999": 1}
    assert stats["by_status"] == {"201": 1, "404": 1}
    after = (await api.post("/_emulator/reset")).json()
    assert after["requests"] == 0
    assert (await api.get(f"{V2}/contacts", params=q())).json()["count"] == 30
    faults = {"error_rate": 1.0, "only_matching": "companies"}
    assert (await api.post("/_emulator/faults", json=faults)).json()["error_rate"] == 1.0
    assert (await api.get("/_emulator/faults")).json()["only_matching"] == "companies"
    failed = await api.get(f"{V2}/companies", params=q())
    assert (failed.status_code, failed.json()) == (500, {"detail": "Injected server error."})
    assert (await api.get(f"{V2}/contacts", params=q())).status_code == 200
    await api.post("/_emulator/faults", json={"rate_limit_rate": 1.0})
    throttled = await api.get(f"{V2}/contacts", params=q())
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "1"
    await api.post("/_emulator/faults", json={"garbage_rate": 1.0})
    garbage = await api.get(f"{V2}/contacts", params=q())
    assert garbage.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        garbage.json()
    await api.post("/_emulator/faults", json={"timeout_rate": 1.0, "timeout_seconds": 0})
    hung = await api.get(f"{V2}/contacts", params=q())
    assert (hung.status_code, hung.json()) == (504, {"detail": "Injected timeout."})
    refused = await api.post("/_emulator/faults", json={"error_rate": 2})
    assert refused.status_code == 422


@pytest.mark.parametrize(
    ("key", "status", "detail"),
    [
        (None, 403, "Authentication credentials were not provided."),
        ("not-a-key", 403, "Invalid API key."),
        (
            revyops.API_KEYS[revyops.TENANT2_CLIENT_ID],
            401,
            "API KEY not authorized to access this client_id.",
        ),
    ],
)
async def test_a_required_api_key_is_checked(key: str | None, status: int, detail: str) -> None:
    options = EmulatorOptions(rate_limits=False, companies=2, contacts=3, require_api_key=True)
    headers = {} if key is None else {"x-api-key": key}
    async with emulator_client(create_emulator("revyops", options), "revyops") as client:
        refused = await client.get(f"{V2}/contacts", params=CID, headers=headers)
        assert (refused.status_code, refused.json()) == (status, {"detail": detail})
        own = {"x-api-key": revyops.API_KEYS[revyops.DEMO_CLIENT_ID]}
        answered = await client.get(f"{V2}/contacts", params=CID, headers=own)
        assert answered.status_code == 200
        assert answered.json()["count"] == 3


async def test_the_api_key_is_not_asked_for_by_default(api: httpx.AsyncClient) -> None:
    assert (await api.get(f"{V2}/contacts", params=CID)).status_code == 200


def test_only_revyops_takes_require_api_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulate", "attio", "--require-api-key"]) == 2
    assert "--require-api-key: only the revyops API has one, not attio" in capsys.readouterr().err

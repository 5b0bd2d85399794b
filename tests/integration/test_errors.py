"""Errors through the gateway: every one has `extensions.code`; upstream ones name provider and status."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from gateway.demo import DEMO_CREDENTIALS, demo_provider
from gateway.settings import ProviderSettings, Settings
from tests.support.clients import GraphQLClient
from tests.support.servers import serving

pytestmark = pytest.mark.integration

# Blocks the session's other tests read are cached: a filter of its own makes the read new.
UNCACHED = (
    "query($p: String!, $email: String!) "
    "{ contacts(provider: $p, first: 3, filter: {email: {eq: $email}}) { edges { node { id } } } }"
)


def name_of(kind: str) -> str:
    """An address no test has asked for yet: a fresh, uncached list query."""
    return f"nobody.{kind}.{uuid.uuid4().hex}"


CONTACTS = (
    "query($p: String!, $first: Int, $after: String, $last: Int, $before: String) "
    "{ contacts(provider: $p, first: $first, after: $after, last: $last, before: $before) "
    "{ totalCount edges { cursor node { remoteId } } } }"
)


@pytest.fixture(scope="module")
def odd_gateway(emulators: dict[str, str]) -> Iterator[GraphQLClient]:
    """A gateway with a misrouted provider, a provider with a wrong credential, and a good one."""
    providers = [
        demo_provider("revyops", emulators["revyops"]),
        ProviderSettings(
            name="misrouted",
            kind="revyops",
            base_url=emulators["revyops"] + "/nope",
            credentials=DEMO_CREDENTIALS["revyops"],
        ),
        ProviderSettings(
            name="wrong-key",
            kind="basicsos",
            base_url=emulators["basicsos"],
            credentials={"token": "bos_crm_not_a_token"},
        ),
        ProviderSettings(
            name="down",
            kind="basicsos",
            base_url="http://127.0.0.1:9",
            credentials={"token": "bos_crm_whatever"},
        ),
    ]
    with serving(Settings(providers=providers)) as client:
        yield client


def only_error(body):
    [error] = body["errors"]
    assert "code" in error["extensions"]
    return error


def test_upstream_404_is_mapped(odd_gateway):
    body = odd_gateway.post(CONTACTS, {"p": "misrouted", "first": 3})
    error = only_error(body)
    assert body["data"] == {"contacts": None}
    assert error["path"] == ["contacts"]
    assert error["extensions"] == {"code": "NOT_FOUND", "provider": "misrouted", "status": 404}


def test_upstream_auth_failure_is_mapped_without_the_credential(odd_gateway):
    body = odd_gateway.post(CONTACTS, {"p": "wrong-key", "first": 3})
    error = only_error(body)
    assert error["extensions"] == {"code": "UPSTREAM_AUTH", "provider": "wrong-key", "status": 401}
    assert "bos_crm_not_a_token" not in str(body)


def test_unreachable_upstream_is_unavailable(odd_gateway):
    error = only_error(odd_gateway.post(CONTACTS, {"p": "down", "first": 3}))
    assert error["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert error["extensions"]["provider"] == "down"


def test_one_failing_provider_leaves_the_others_data(odd_gateway):
    body = odd_gateway.post(
        '{ good: contacts(provider: "revyops", first: 2) { edges { node { remoteId } } }'
        '  bad: contacts(provider: "down", first: 2) { edges { node { remoteId } } } }'
    )
    assert [e["node"]["remoteId"] for e in body["data"]["good"]["edges"]] == ["1", "2"]
    assert body["data"]["bad"] is None
    error = only_error(body)
    assert error["path"] == ["bad"]


@pytest.mark.parametrize("kind", ["revyops", "basicsos"])
def test_upstream_500_is_mapped(gateway, emulators, kind):
    faults = f"{emulators[kind]}/_emulator/faults"
    httpx.post(faults, json={"error_rate": 1.0}).raise_for_status()
    try:
        body = gateway.post(UNCACHED, {"p": kind, "email": f"{name_of(kind)}@example.com"})
    finally:
        httpx.post(faults, json={}).raise_for_status()
    error = only_error(body)
    assert error["extensions"] == {"code": "UPSTREAM_UNAVAILABLE", "provider": kind, "status": 500}


@pytest.mark.parametrize("kind", ["revyops", "basicsos"])
def test_garbage_upstream_body_is_an_error_not_a_crash(gateway, emulators, kind):
    faults = f"{emulators[kind]}/_emulator/faults"
    httpx.post(faults, json={"garbage_rate": 1.0}).raise_for_status()
    try:
        body = gateway.post(UNCACHED, {"p": kind, "email": f"{name_of(kind)}@example.com"})
    finally:
        httpx.post(faults, json={}).raise_for_status()
    error = only_error(body)
    assert error["extensions"]["code"] == "UPSTREAM_BAD_RESPONSE"
    assert error["extensions"]["provider"] == kind


def test_revyops_has_no_deals_or_notes(gateway):
    for field in ("deals", "notes"):
        body = gateway.post(f'{{ {field}(provider: "revyops", first: 3) {{ totalCount }} }}')
        error = only_error(body)
        assert error["extensions"] == {"code": "UNSUPPORTED", "provider": "revyops"}
        assert body["data"] == {field: None}


@pytest.mark.parametrize(
    ("variables", "argument"),
    [
        ({"first": 101}, "first"),
        ({"first": -1}, "first"),
        ({"last": 500}, "last"),
        ({"first": 3, "after": "garbage"}, "after"),
        ({"last": 3, "before": "AAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, "before"),
    ],
)
def test_bad_arguments_are_bad_user_input(gateway, variables, argument):
    error = only_error(gateway.post(CONTACTS, {"p": "revyops", **variables}))
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["argument"] == argument
    assert argument in error["message"]


def test_cursor_of_another_query_is_rejected(gateway):
    page = gateway.data(CONTACTS, {"p": "basicsos", "first": 2})
    cursor = page["contacts"]["edges"][-1]["cursor"]
    for query, provider in (
        (CONTACTS, "revyops"),
        (CONTACTS.replace("contacts(", "companies("), "basicsos"),
    ):
        error = only_error(gateway.post(query, {"p": provider, "first": 2, "after": cursor}))
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["extensions"]["argument"] == "after"


def test_unknown_provider_names_the_argument(gateway):
    error = only_error(gateway.post(CONTACTS, {"p": "salesforce", "first": 1}))
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "provider"}
    assert "salesforce" in error["message"]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("{ contacts(provider: ", "GRAPHQL_PARSE_FAILED"),
        ("{ nope }", "GRAPHQL_VALIDATION_FAILED"),
        # A list without `provider` is valid since issue 18: an argument of the wrong type.
        ("{ contacts(providers: 1) { totalCount } }", "GRAPHQL_VALIDATION_FAILED"),
    ],
)
def test_invalid_documents_carry_codes(gateway, query, code):
    response = gateway.http.post("/graphql", json={"query": query})
    assert response.status_code in (200, 400)
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == code


def test_variable_of_wrong_type_is_bad_user_input(gateway):
    response = gateway.http.post(
        "/graphql", json={"query": CONTACTS, "variables": {"p": "revyops", "first": "ten"}}
    )
    assert response.status_code in (200, 400)
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


def test_providers_field_reports_capabilities(gateway):
    data = gateway.data(
        "{ providers { name kind paginationStyle capabilities { entities canPageBackward canCount } } }"
    )
    by_name = {p["name"]: p for p in data["providers"]}
    assert by_name["revyops"]["paginationStyle"] == "PAGE_NUMBER"
    assert by_name["revyops"]["capabilities"]["entities"] == ["CONTACT", "COMPANY"]
    assert by_name["basicsos"]["paginationStyle"] == "INDEX_RANGE"
    assert by_name["basicsos"]["capabilities"] == {
        "entities": ["CONTACT", "COMPANY", "DEAL", "NOTE"],
        "canPageBackward": True,
        "canCount": True,
    }

"""The RevyOps and BasicsOS emulators answer a fixed script exactly as recorded.

The script walks every route, error shape, fault and `/_emulator/*` endpoint
over HTTP to the app in process; status, headers and the raw body text of each
answer are compared with a snapshot recorded (over a real socket) before the
emulators were restructured, so any change in what they send shows as a diff.
Stamps of "now" and the server's address are masked. Set `UPDATE_SNAPSHOTS=1`
to record the snapshot again.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulators import EmulatorOptions, basicsos, revyops
from gateway.providers import create_emulator
from tests.support.stack import emulator_client, emulator_url

SNAPSHOTS = Path(__file__).parent / "snapshots"
# Seed stamps are all in 2024; anything later was written by the emulator's clock.
NOW = re.compile(r"20(2[5-9]|[3-9]\d)-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
DROPPED_HEADERS = {"date", "server", "content-length"}

Step = tuple[str, str, dict[str, Any]]

R = {"client_id": revyops.DEMO_CLIENT_ID}
R2 = {"client_id": revyops.TENANT2_CLIENT_ID}
REVYOPS: list[Step] = [
    ("GET", "/public/v2/contacts", {}),
    ("GET", "/public/v2/contacts", {"params": {"client_id": "nobody"}}),
    ("GET", "/public/v2/contacts", {"params": {**R, "page_size": 3}}),
    ("GET", "/public/v2/contacts", {"params": {**R, "page_size": 3, "page": 2}}),
    ("GET", "/public/v2/contacts", {"params": {**R, "page_size": 3, "page": 3}}),
    ("GET", "/public/v2/contacts", {"params": {**R, "page_size": 333, "page": "last"}}),
    ("GET", "/public/v2/contacts", {"params": {**R, "page_size": 3, "page": 0}}),
    ("GET", "/public/v2/contacts", {"params": {**R, "page_size": 3, "page": "x"}}),
    ("GET", "/public/v2/contacts", {"params": {**R, "page_size": 3, "page": 99999}}),
    ("GET", "/public/v2/contacts", {"params": {**R, "page_size": 2000}}),
    ("GET", "/public/v2/contacts", {"params": {**R, "page_size": -1, "lastname": "hopper"}}),
    ("GET", "/public/v2/contacts", {"params": {**R, "page_size": "junk", "lastname": "Knuth"}}),
    ("GET", "/public/v2/contacts", {"params": {**R, "page_size": 2, "structure": "flat"}}),
    ("GET", "/public/v2/contacts", {"params": {**R, "structure": "tree"}}),
    ("GET", "/public/v2/contacts", {"params": {**R, "firstname": "ada", "page_size": 4}}),
    ("GET", "/public/v2/contacts", {"params": {**R, "lastname": "TURING", "whatever": "x"}}),
    ("GET", "/public/v2/contacts", {"params": {**R, "domain": "acmecorp.example.com"}}),
    ("GET", "/public/v2/companies", {"params": {**R, "page_size": 2, "structure": "FLAT"}}),
    ("GET", "/public/v2/companies", {"params": {**R, "industry": "software", "page_size": 3}}),
    ("GET", "/public/v2/companies", {"params": {**R2, "page_size": 2}}),
    ("GET", "/public/companies", {"params": {**R, "structure": "FLAT"}}),
    ("GET", "/public/contacts", {"params": {**R, "firstname": "Vint"}}),
    ("GET", "/public/companies", {"params": {**R, "structure": "nope"}}),
    ("GET", "/public/companies/lookup-by-custom-field", {"params": R}),
    ("GET", "/public/v2/contacts/lookup-by-custom-field", {"params": R}),
    (
        "GET",
        "/public/v2/contacts/lookup-by-custom-field",
        {"params": {**R, "field_name": "title", "field_value": "CTO", "page_size": 2}},
    ),
    ("GET", "/public/v2/contacts/1", {"params": R}),
    ("GET", "/public/v2/contacts/1", {"params": {**R, "structure": "FLAT"}}),
    ("GET", "/public/v2/contacts/1", {"params": {**R, "structure": "odd"}}),
    ("GET", "/public/v2/contacts/999999", {"params": R}),
    ("GET", "/public/v2/contacts/abc", {"params": R}),
    ("GET", "/public/companies/2", {"params": R2}),
    ("GET", "/public/v2/deals", {"params": R}),
    ("PUT", "/public/v2/contacts/1", {"params": R}),
    ("PUT", "/public/v2/contacts", {"params": R}),
    ("PUT", "/public/companies", {"params": R}),
    ("POST", "/public/v2/companies/lookup-by-custom-field", {"params": R}),
    ("DELETE", "/public/v2/contacts/lookup-by-custom-field", {"params": R}),
    ("POST", "/public/v2/contacts", {"params": R, "content": b"{not json"}),
    ("POST", "/public/v2/contacts", {"params": R, "json": [1, 2]}),
    ("POST", "/public/v2/contacts", {"params": R, "json": {"first_name": "No"}}),
    ("POST", "/public/v2/contacts", {"params": R, "json": {"email": "not-an-email"}}),
    ("POST", "/public/v2/contacts", {"params": R, "json": {"email": ["x"], "first_name": 3}}),
    ("POST", "/public/v2/contacts", {"params": R, "json": {"email": "n@x.io", "company_id": 0}}),
    (
        "POST",
        "/public/v2/contacts",
        {"params": R2, "json": {"email": "n@x.io", "company_id": 150}},
    ),
    ("POST", "/public/v2/contacts", {"params": R, "json": {"email": "n@x.io", "company_id": 5000}}),
    ("POST", "/public/v2/contacts", {"params": R, "json": {"email": "n@x.io", "company_id": 1.5}}),
    (
        "POST",
        "/public/v2/contacts",
        {"params": R, "json": {"email": "n@x.io", "company_id": "no.such.domain"}},
    ),
    (
        "POST",
        "/public/v2/contacts",
        {"params": R, "json": {"email": "n@x.io", "contact_custom_fields": "bad"}},
    ),
    ("GET", "/public/v2/contacts/1", {"params": {**R, "structure": "FLAT"}}),
    (
        "POST",
        "/public/v2/contacts",
        {
            "params": {**R, "structure": "FLAT"},
            "json": {
                "email": "new@x.io",
                "first_name": "New",
                "company_id": "3",
                "contact_custom_fields": {"title": "Boss", "team": "A"},
            },
        },
    ),
    ("POST", "/public/v2/contacts", {"params": R, "json": {"email": "NEW@x.io"}}),
    (
        "POST",
        "/public/v2/contacts",
        {
            "params": R,
            "json": {
                "linkedin_url": "https://linkedin.example/in/z",
                "contact_custom_fields_input": [{"field_name": "a", "field_value": 1}],
            },
        },
    ),
    ("POST", "/public/v2/companies", {"params": R, "json": {"name": "No domain"}}),
    ("POST", "/public/companies", {"params": R, "json": {"domain": "fresh.example", "name": "F"}}),
    ("POST", "/public/v2/contacts", {"params": R2, "json": {"email": "a@b.io", "company_id": 201}}),
    ("PATCH", "/public/v2/contacts/1001", {"params": R, "json": {"contact_status": "Replied"}}),
    (
        "PATCH",
        "/public/v2/contacts/1001",
        {
            "params": {**R, "structure": "FLAT"},
            "json": {"contact_custom_fields": {"title": "Chief"}, "last_name": "Changed"},
        },
    ),
    ("PATCH", "/public/v2/contacts/1002", {"params": R, "json": {"email": "new@x.io"}}),
    ("PATCH", "/public/v2/contacts/77777", {"params": R, "json": {}}),
    ("PATCH", "/public/v2/contacts/1", {"params": R, "content": b"]"}),
    ("DELETE", "/public/v2/companies/3", {"params": R}),
    ("DELETE", "/public/v2/companies/3", {"params": R}),
    ("DELETE", "/public/contacts/x", {"params": R}),
    ("GET", "/public/v2/contacts/1001", {"params": R}),
    ("DELETE", "/public/v2/contacts/1001", {"params": R}),
    ("GET", "/public/v2/contacts", {"params": {**R, "page_size": 2, "page": "last"}}),
    ("GET", "/_emulator/stats", {}),
    ("GET", "/_emulator/faults", {}),
    ("POST", "/_emulator/faults", {"json": {"error_rate": 1, "only_matching": "contacts/5"}}),
    ("GET", "/public/v2/contacts/5", {"params": R}),
    ("GET", "/public/v2/contacts/6", {"params": R}),
    ("POST", "/_emulator/faults", {"json": {"rate_limit_rate": 1}}),
    ("GET", "/public/v2/contacts/6", {"params": R}),
    ("POST", "/_emulator/faults", {"json": {"garbage_rate": 1}}),
    ("GET", "/public/v2/contacts/6", {"params": R}),
    ("GET", "/public/v2/contacts/7", {"params": R}),
    ("GET", "/public/v2/contacts/8", {"params": R}),
    ("POST", "/_emulator/faults", {"json": {"bogus": 1}}),
    ("POST", "/_emulator/faults", {"json": {}}),
    ("POST", "/_emulator/reset", {}),
    ("GET", "/public/v2/contacts", {"params": {**R, "page_size": 1, "page": "last"}}),
]

ADMIN = {"Authorization": f"Bearer {basicsos.DEMO_ADMIN_TOKEN}"}
MEMBER = {"Authorization": f"bearer {basicsos.DEMO_MEMBER_TOKEN}"}
OTHER = {"Authorization": f"Bearer {basicsos.TENANT2_TOKEN}"}


def _q(**params: Any) -> dict[str, str]:
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}


BASICSOS: list[Step] = [
    ("GET", "/api/contacts", {}),
    ("GET", "/api/contacts", {"headers": {"Authorization": "Token x"}}),
    ("GET", "/api/contacts", {"headers": {"Authorization": "Bearer nobody"}}),
    ("GET", "/api/contacts", {"headers": ADMIN, "params": _q(range=[0, 2])}),
    ("GET", "/api/contacts", {"headers": OTHER, "params": _q(range=[998, 1005])}),
    ("GET", "/api/contacts", {"headers": ADMIN, "params": _q(range=[5000, 5001])}),
    ("GET", "/api/contacts", {"headers": ADMIN, "params": {"range": "[0,"}}),
    ("GET", "/api/contacts", {"headers": ADMIN, "params": _q(range=[3, 1])}),
    ("GET", "/api/contacts", {"headers": ADMIN, "params": _q(range=[0, True])}),
    ("GET", "/api/nothing", {"headers": ADMIN}),
    ("GET", "/api/tasks", {"headers": MEMBER, "params": _q(range=[0, 9])}),
    ("GET", "/api/contacts_summary", {"headers": ADMIN, "params": _q(range=[0, 1])}),
    (
        "GET",
        "/api/companies_summary",
        {"headers": ADMIN, "params": _q(range=[0, 1], filter={"q": "corp"})},
    ),
    (
        "GET",
        "/api/contacts_summary",
        {"headers": ADMIN, "params": _q(range=[0, 1], filter={"q": "ada"})},
    ),
    ("GET", "/api/companies", {"headers": ADMIN, "params": _q(range=[0, 2], filter={"q": "a"})}),
    (
        "GET",
        "/api/contacts",
        {"headers": ADMIN, "params": _q(range=[0, 2], filter={"company_id": [1, "2"], "zz": 1})},
    ),
    ("GET", "/api/contacts", {"headers": ADMIN, "params": _q(filter=[1])}),
    ("GET", "/api/contacts", {"headers": ADMIN, "params": _q(filters={"a": 1})}),
    ("GET", "/api/contacts", {"headers": ADMIN, "params": {"filters": "{"}}),
    (
        "GET",
        "/api/deals",
        {
            "headers": ADMIN,
            "params": _q(
                range=[0, 3],
                filters=[
                    {"field": "amount", "op": "gte", "value": "50000", "logicalOp": "or"},
                    {"field": "status", "op": "like", "value": "won"},
                    {"field": "name", "op": "bogus", "value": "x"},
                    "junk",
                ],
            ),
        },
    ),
    (
        "GET",
        "/api/contacts",
        {
            "headers": ADMIN,
            "params": _q(
                range=[0, 3],
                filters=[
                    {"field": "first_name", "op": "starts_with", "value": "A"},
                    {"field": "source", "op": "notblank", "value": ""},
                ],
            ),
        },
    ),
    (
        "GET",
        "/api/deals",
        {
            "headers": ADMIN,
            "params": _q(range=[0, 4], sorts=[{"field": "amount", "order": "DESC"}]),
        },
    ),
    (
        "GET",
        "/api/contacts",
        {"headers": ADMIN, "params": {**_q(range=[0, 3]), "sort": "last_name", "order": "DESC"}},
    ),
    ("GET", "/api/contacts", {"headers": ADMIN, "params": _q(sorts=[{"order": "ASC"}])}),
    (
        "GET",
        "/api/contact_notes",
        {"headers": ADMIN, "params": _q(range=[0, 1], sorts=[{"field": "date"}])},
    ),
    ("GET", "/api/deals/1", {"headers": ADMIN}),
    ("GET", "/api/companies_summary/2", {"headers": ADMIN}),
    ("GET", "/api/contacts/abc", {"headers": ADMIN}),
    ("GET", "/api/contacts/99999", {"headers": ADMIN}),
    ("GET", "/api/tags/1", {"headers": ADMIN}),
    ("GET", "/api/unknown/1", {"headers": ADMIN}),
    ("POST", "/api/merge_contacts", {"headers": MEMBER, "json": {}}),
    ("POST", "/api/merge_contacts", {"headers": ADMIN, "content": b"nope"}),
    ("POST", "/api/merge_contacts", {"headers": ADMIN, "json": {"loserId": 1}}),
    ("POST", "/api/merge_contacts", {"headers": ADMIN, "json": {"loserId": 2, "winnerId": 2}}),
    ("POST", "/api/merge_contacts", {"headers": ADMIN, "json": {"loserId": 2, "winnerId": 9999}}),
    ("POST", "/api/merge_contacts", {"headers": ADMIN, "json": {"loserId": 2, "winnerId": 3}}),
    ("GET", "/api/contacts/2", {"headers": ADMIN}),
    ("POST", "/api/unknown", {"headers": ADMIN, "json": {}}),
    ("POST", "/api/contacts_summary", {"headers": ADMIN, "json": {}}),
    ("POST", "/api/contacts", {"headers": ADMIN, "json": ["x"]}),
    ("POST", "/api/contacts", {"headers": ADMIN, "json": {"unknown": 1}}),
    ("POST", "/api/deals", {"headers": ADMIN, "json": {"name": "D"}}),
    ("POST", "/api/deals", {"headers": ADMIN, "json": {"name": "D", "company_id": -1}}),
    ("POST", "/api/deals", {"headers": ADMIN, "json": {"name": "D", "amount": "lots"}}),
    ("POST", "/api/deals", {"headers": ADMIN, "json": {"name": 5, "status": "x", "companyId": 1}}),
    ("POST", "/api/contacts", {"headers": ADMIN, "json": {"customFields": [1]}}),
    ("POST", "/api/contact_notes", {"headers": ADMIN, "json": {"contactId": 1, "date": "x"}}),
    ("POST", "/api/contact_notes", {"headers": ADMIN, "json": {"contactId": 1, "attachments": 1}}),
    ("POST", "/api/contact_notes", {"headers": ADMIN, "json": {"contactId": 99999}}),
    (
        "POST",
        "/api/deals",
        {
            "headers": MEMBER,
            "json": {
                "name": "Big",
                "company_id": 4,
                "status": "won",
                "amount": "1200.5",
                "customFields": {"currency": "EUR"},
            },
        },
    ),
    (
        "POST",
        "/api/companies",
        {"headers": ADMIN, "json": {"name": "Co", "category": ["a", "b"], "customFields": None}},
    ),
    (
        "POST",
        "/api/deal_notes",
        {
            "headers": ADMIN,
            "json": {"dealId": 1, "title": "t", "date": "2024-05-01T10:00:00", "attachments": []},
        },
    ),
    ("POST", "/api/contact_notes", {"headers": ADMIN, "json": {"contactId": 3, "text": "hi"}}),
    ("PUT", "/api/contacts/1", {"headers": ADMIN, "json": {"first_name": "Changed"}}),
    ("PUT", "/api/contacts/x", {"headers": ADMIN, "json": {}}),
    ("PUT", "/api/contacts/99999", {"headers": ADMIN, "json": {"firstName": "Z"}}),
    ("PUT", "/api/contacts/1", {"headers": ADMIN, "json": {"companyId": 99999}}),
    ("PUT", "/api/contacts_summary/1", {"headers": ADMIN, "json": {}}),
    ("PUT", "/api/nothing/1", {"headers": ADMIN, "json": {}}),
    ("DELETE", "/api/contacts_summary/1", {"headers": ADMIN}),
    ("DELETE", "/api/contacts/x", {"headers": ADMIN}),
    ("DELETE", "/api/contacts/99999", {"headers": ADMIN}),
    ("DELETE", "/api/contacts/4", {"headers": MEMBER}),
    ("DELETE", "/api/deals/2", {"headers": MEMBER}),
    ("GET", "/api/deals/2", {"headers": ADMIN}),
    ("GET", "/api/deals", {"headers": ADMIN, "params": _q(range=[0, 1])}),
    (
        "GET",
        "/api/deals",
        {"headers": ADMIN, "params": _q(range=[0, 1], filter={"include_archived": True})},
    ),
    ("POST", "/api/contacts/2/restore", {"headers": ADMIN}),
    ("POST", "/api/deals/2/restore", {"headers": MEMBER}),
    ("POST", "/api/deals/x/restore", {"headers": ADMIN}),
    ("POST", "/api/deals/2/restore", {"headers": ADMIN}),
    ("DELETE", "/api/companies/1", {"headers": ADMIN}),
    ("GET", "/api/contacts", {"headers": ADMIN, "params": _q(range=[0, 1])}),
    ("DELETE", "/api/deals/3", {"headers": ADMIN}),
    ("PATCH", "/api/contacts/1", {"headers": ADMIN}),
    ("PUT", "/api/merge_contacts", {"headers": ADMIN}),
    ("PATCH", "/api/deals", {"headers": ADMIN}),
    ("GET", "/api/deals/1/restore", {"headers": ADMIN}),
    ("DELETE", "/api/merge_contacts/3", {"headers": OTHER}),
    ("GET", "/api/merge_contacts", {"headers": OTHER}),
    ("GET", "/other", {"headers": ADMIN}),
    ("POST", "/_emulator/faults", {"json": {"error_rate": 1, "only_matching": "deals"}}),
    ("GET", "/api/deals/5", {"headers": ADMIN}),
    ("POST", "/_emulator/faults", {"json": {"rate_limit_rate": 1}}),
    ("GET", "/api/deals/5", {"headers": ADMIN}),
    ("POST", "/_emulator/faults", {"json": {"garbage_rate": 1}}),
    ("GET", "/api/deals/5", {"headers": ADMIN}),
    ("GET", "/api/deals/6", {"headers": ADMIN}),
    ("POST", "/_emulator/faults", {"json": {}}),
    ("GET", "/_emulator/stats", {}),
    ("POST", "/_emulator/reset", {}),
    ("GET", "/api/contacts/2", {"headers": ADMIN}),
]

SCRIPTS = {"revyops": REVYOPS, "basicsos": BASICSOS}


async def _record(kind: str, client: httpx.AsyncClient, steps: list[Step]) -> list[dict[str, Any]]:
    url = emulator_url(kind)
    answers = []
    for method, path, kwargs in steps:
        response = await client.request(method, path, **kwargs)
        text = NOW.sub("<now>", response.text.replace(url, "<url>"))
        headers = {
            k: NOW.sub("<now>", v.replace(url, "<url>"))
            for k, v in response.headers.items()
            if k not in DROPPED_HEADERS
        }
        answers.append(
            {
                "request": f"{method} {response.request.url}".replace(url, "<url>"),
                "status": response.status_code,
                "headers": headers,
                "body": text,
            }
        )
    return answers


@pytest.fixture(scope="module", params=sorted(SCRIPTS))
async def recorded(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    kind: str = request.param
    # RevyOps' 10 requests a second would throttle the script; BasicsOS' 180 a minute do not.
    options = EmulatorOptions(rate_limits=kind == "basicsos")
    async with emulator_client(create_emulator(kind, options), kind) as client:
        yield kind, await _record(kind, client, SCRIPTS[kind])


def test_answers_match_the_snapshot(recorded: tuple[str, list[dict[str, Any]]]) -> None:
    kind, answers = recorded
    path = SNAPSHOTS / f"{kind}.json"
    if os.environ.get("UPDATE_SNAPSHOTS"):
        path.write_text(json.dumps(answers, indent=1) + "\n")
    expected = json.loads(path.read_text())
    assert len(answers) == len(expected)
    for got, want in zip(answers, expected, strict=True):
        assert got == want, got["request"]

"""Cursors written by someone who holds the signing secret reach no other upstream request.

A cursor is signed, not secret: whoever has the secret (a leaked or shipped default)
can write any payload. The handle and positions inside are checked before any request,
and pages are built from the validated query, so a forged cursor is a BAD_USER_INPUT
naming its argument and nothing reaches the provider.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from gateway.pagination.cursors import CursorCodec

pytestmark = pytest.mark.integration

CODEC = CursorCodec(b"test-cursor-secret-kQ3vX8wZ")  # the gateway fixture's secret
PAGE = (
    "query($p: String!, $first: Int, $after: String, $last: Int, $before: String) "
    "{ contacts(provider: $p, first: $first, after: $after, last: $last, before: $before) "
    "{ edges { cursor node { remoteId } } } }"
)


def forge(cursor: str, **changes: Any) -> str:
    """The cursor re-signed with fields of its position replaced."""
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    data = json.loads(raw[12:])  # after the MAC
    return CODEC.encode(data["b"], {**data["p"], **changes})


def real_cursor(gateway: Any, provider: str) -> str:
    edges = gateway.data(PAGE, {"p": provider, "first": 2})["contacts"]["edges"]
    return str(edges[0]["cursor"])


def assert_refused(gateway: Any, provider: str, argument: str, cursor: str) -> None:
    variables: dict[str, Any] = {"p": provider, argument: cursor}
    variables["first" if argument == "after" else "last"] = 3
    body = gateway.post(PAGE, variables)
    assert body["data"] is None or body["data"]["contacts"] is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["extensions"]["argument"] == argument


HASTE_FORGERIES = [
    {"h": json.dumps({"sort": "created_at", "limit": "1000", "x-injected": "1"})},
    {"h": "created_at&x-injected=1"},
    {"c": "abc&limit=1000&x-injected=1"},
    {"n": "abc def"},
    {"p": "x" * 5000, "l": 2},
    {"i": 10**9},
    {"l": "100"},
    {"k": 5},
]


@pytest.mark.parametrize("changes", HASTE_FORGERIES)
@pytest.mark.parametrize("argument", ["after", "before"])
def test_a_forged_haste_cursor_sends_nothing_upstream(
    gateway: Any, emulator_stats: Any, changes: dict[str, Any], argument: str
) -> None:
    cursor = forge(real_cursor(gateway, "haste"), **changes)
    sent = emulator_stats("haste")
    assert_refused(gateway, "haste", argument, cursor)
    assert emulator_stats("haste") == sent  # no request at all, so no injected parameter


@pytest.mark.parametrize(
    "handle", ["../../tables/other/rows", "..", "q_1/../../../tables/acme.crm.notes", "rows?x=1"]
)
@pytest.mark.parametrize("argument", ["after", "before"])
def test_a_forged_redivis_handle_sends_nothing_upstream(
    gateway: Any, emulator_stats: Any, handle: str, argument: str
) -> None:
    cursor = forge(real_cursor(gateway, "redivis"), h=handle)
    sent = emulator_stats("redivis")
    assert_refused(gateway, "redivis", argument, cursor)
    assert emulator_stats("redivis") == sent


def test_a_genuine_cursor_still_pages(gateway: Any) -> None:
    """The checks refuse forgeries only: the gateway's own cursors keep working both ways."""
    for provider in ("haste", "redivis"):
        edges = gateway.data(PAGE, {"p": provider, "first": 5})["contacts"]["edges"]
        ids = [e["node"]["remoteId"] for e in edges]
        after = gateway.data(PAGE, {"p": provider, "first": 2, "after": edges[1]["cursor"]})
        assert [e["node"]["remoteId"] for e in after["contacts"]["edges"]] == ids[2:4]
        before = gateway.data(PAGE, {"p": provider, "last": 2, "before": edges[4]["cursor"]})
        assert [e["node"]["remoteId"] for e in before["contacts"]["edges"]] == ids[2:4]

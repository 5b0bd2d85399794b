"""Credentials in URLs are redacted from log records, whatever the logger or level."""

from __future__ import annotations

import logging

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.logredact import REDACTED, SECRET_PARAMS, RedactingFilter, install, redact

# A credential as it appears in a query string: unreserved characters and percent-escapes.
VALUES = st.lists(
    st.sampled_from(
        [*"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~", "%2F", "%3D"]
    ),
    min_size=1,
    max_size=40,
).map("".join)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "HTTP Request: GET http://revyops:8101/public/v2/contacts?page=1&client_id=abc123"
            '&page_size=20 "HTTP/1.1 200 OK"',
            "HTTP Request: GET http://revyops:8101/public/v2/contacts?page=1"
            f'&client_id={REDACTED}&page_size=20 "HTTP/1.1 200 OK"',
        ),
        ("GET /x?api_key=k1&Token=t2#frag", f"GET /x?api_key={REDACTED}&Token={REDACTED}#frag"),
        ("url='https://h/p?ACCESS_TOKEN=zz'", f"url='https://h/p?ACCESS_TOKEN={REDACTED}'"),
        ("https://alice:pw@db.example.com/x", f"https://{REDACTED}@db.example.com/x"),
        ("postgres://user@host/db", f"postgres://{REDACTED}@host/db"),
        # Not credentials: left alone.
        ("GET /x?page=2&page_size=20", "GET /x?page=2&page_size=20"),
        ("monkey=1 and ?keyword=2", "monkey=1 and ?keyword=2"),
        ("mail bob@example.com", "mail bob@example.com"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


@given(
    name=st.sampled_from(SECRET_PARAMS),
    value=VALUES,
    upper=st.booleans(),
    before=st.sampled_from(["", "page=2&", "a=b&c=d&"]),
    after=st.sampled_from(["", "&page_size=20", "#top", " 200 OK"]),
)
def test_no_credential_value_survives(
    name: str, value: str, upper: bool, before: str, after: str
) -> None:
    name = name.upper() if upper else name
    base = "HTTP Request: GET https://api.example.com/v1/x?"
    cleaned = redact(f"{base}{before}{name}={value}{after}")
    assert cleaned == f"{base}{before}{name}={REDACTED}{after}"


def test_installed_redaction_covers_every_logger_and_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    install()
    install()  # idempotent: a second app in the process does not wrap twice
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore.http11", "gateway.upstream", "some.host.app"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.debug("GET %s", httpx.URL("https://h/p?client_id=SECRETVALUE1"))
    assert len(caplog.records) == 4
    assert "SECRETVALUE1" not in caplog.text
    assert all(r.getMessage() == f"GET https://h/p?client_id={REDACTED}" for r in caplog.records)


def test_exception_text_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    install()
    try:
        raise RuntimeError("failed: https://h/p?token=SECRETVALUE2")
    except RuntimeError:
        logging.getLogger("gateway.test").exception("upstream failed")
    assert "SECRETVALUE2" not in caplog.text
    assert f"token={REDACTED}" in caplog.text


def test_filter_for_host_app_handlers() -> None:
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "GET %s", ("https://h/?api_key=SECRETVALUE3",), None
    )
    assert RedactingFilter().filter(record) is True
    assert record.getMessage() == f"GET https://h/?api_key={REDACTED}"


def test_records_without_credentials_keep_their_arguments() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s ready", ("revyops",), None)
    RedactingFilter().filter(record)
    assert record.msg == "%s ready"
    assert record.args == ("revyops",)

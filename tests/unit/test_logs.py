"""The command line's log handler: one JSON object per line, credentials redacted."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.logredact import REDACTED
from gateway.logs import LogFormat, current_request_id, handler


def emit(log_format: LogFormat, msg: str, *args: object, **options: Any) -> str:
    stream = io.StringIO()
    logger = logging.Logger("gateway.test")  # not registered: no global logger touched
    logger.addHandler(handler(log_format, stream))
    logger.info(msg, *args, **options)
    return stream.getvalue()


def test_a_json_line_holds_the_record_and_its_extra_fields() -> None:
    fields = {"operation": "Listed", "cost": 3, "request_id": "r-1"}
    [line] = emit("json", "two\nlines %s", "here", extra=fields).splitlines()
    entry = json.loads(line)
    assert entry.pop("time")[-6:] == "+00:00"
    assert entry == {
        "level": "INFO",
        "logger": "gateway.test",
        "message": "two\nlines here",
        **fields,
    }


def test_the_time_is_the_records_in_iso_8601() -> None:
    before = datetime.now(UTC)
    entry = json.loads(emit("json", "now"))
    assert before.replace(microsecond=0) <= datetime.fromisoformat(entry["time"])


def test_the_request_being_handled_names_every_line() -> None:
    token = current_request_id.set("req-42")
    try:
        entry = json.loads(emit("json", "refused a request"))
    finally:
        current_request_id.reset(token)
    assert entry["request_id"] == "req-42"
    assert "request_id" not in json.loads(emit("json", "between requests"))


def test_an_exception_stays_on_the_line_redacted() -> None:
    try:
        raise RuntimeError("failed: https://h/p?client_id=SECRETVALUE4")
    except RuntimeError:
        [line] = emit("json", "upstream failed", exc_info=True).splitlines()
    entry = json.loads(line)
    assert "RuntimeError" in entry["exc_info"]
    assert "SECRETVALUE4" not in line


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_credentials_are_redacted_in_either_format(log_format: LogFormat) -> None:
    out = emit(log_format, "GET %s", "https://h/p?client_id=SECRETVALUE5")
    assert "SECRETVALUE5" not in out
    assert f"client_id={REDACTED}" in out


def test_text_keeps_the_familiar_shape() -> None:
    assert emit("text", "ready") == "INFO:gateway.test:ready\n"

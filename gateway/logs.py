"""The command line's logging: text or one JSON object per line, credentials redacted.

Only `crm-gateway` calls `configure`: it owns its process. The library itself never
touches global logging state (root handlers, levels, the record factory), so an app that
embeds the gateway logs exactly as it did before; it may use `JsonFormatter` and
`gateway.logredact.RedactingFilter` on its own handlers.

The request id is known to every record logged while a request is handled: the gateway's
routes set `current_request_id`, and `JsonFormatter` reads it when the record carries none.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from gateway.logredact import RedactingFilter

LogFormat = Literal["text", "json"]

current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)

# What every record has; the rest are a caller's `extra` (the operation line's fields,
# `audit`). uvicorn's `color_message` repeats the message with terminal escapes.
_STANDARD = {*logging.makeLogRecord({}).__dict__, "message", "asctime", "color_message"}
# Logs one line per upstream request at INFO: noise beside the operation line.
_NOISY = ("httpx", "httpcore")
# basicConfig's, which the gateway's lines have always had.
TEXT = logging.BASIC_FORMAT


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: `time` (ISO 8601, UTC), `level`, `logger`,
    `message`, `request_id` when known, then the record's `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = current_request_id.get()
        if request_id is not None:
            entry["request_id"] = request_id
        entry.update((k, v) for k, v in record.__dict__.items() if k not in _STANDARD)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        # `default=str`: an extra value JSON cannot hold still makes a line, not an error.
        return json.dumps(entry, default=str)


def handler(log_format: LogFormat, stream: TextIO | None = None) -> logging.Handler:
    """A handler to `stream` (stderr) writing `log_format`, redacting credentials."""
    out = logging.StreamHandler(stream or sys.stderr)
    out.addFilter(RedactingFilter())
    out.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT))
    return out


def configure(level: str, log_format: LogFormat) -> None:
    """Send every record of the process through one `handler` at `level`. uvicorn's too
    when it is given `log_config=None`: its loggers then have no handlers of their own."""
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler(log_format))
    root.setLevel(level.upper())
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)

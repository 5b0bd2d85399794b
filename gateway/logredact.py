"""Credentials out of log lines: query parameters such as `client_id` and URL userinfo.

RevyOps authenticates with `client_id` in the query string, and httpx logs every
request URL (INFO), so without this a credential reaches the logs whenever a
deployment turns its log level up.

Logging belongs to the process's owner: `crm-gateway` puts `RedactingFilter` on
the one handler it logs through (`gateway.logs`). A host app does the same on its
handlers, or calls `install()`, which redacts every record at creation, whatever its
logger, level or handler: a filter on a logger does not see its children's records,
and one on handlers misses handlers added later (pytest's). The library itself only
adds the filter to httpx's logger (`guard_httpx`): the gateway's own clients put the
credentials into the URLs that logger writes, whoever shows its records.
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[REDACTED]"

# Query parameter names that carry a credential, compared case-insensitively.
SECRET_PARAMS = (
    "client_id",
    "client_secret",
    "api_key",
    "apikey",
    "key",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "auth",
    "authorization",
    "secret",
    "password",
    "passwd",
    "signature",
    "sig",
)

_PARAM = re.compile(
    r"(?i)([?&;](?:" + "|".join(SECRET_PARAMS) + r")=)[^&;#\s\"'<>]*",
)
# scheme://user:password@host -> scheme://[REDACTED]@host
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@\"'<>]+@")


def redact(text: str) -> str:
    """`text` with the values of credential query parameters and URL userinfo replaced."""
    if "=" not in text and "@" not in text:
        return text
    return _USERINFO.sub(rf"\1{REDACTED}@", _PARAM.sub(rf"\1{REDACTED}", text))


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Rewrite `record` in place when its message holds a credential."""
    try:
        message = record.getMessage()
    except Exception:  # a malformed record is logging's to report, not ours
        return record
    cleaned = redact(message)
    if cleaned != message:
        record.msg = cleaned
        record.args = None
    if record.exc_info and not record.exc_text:
        # An httpx error's message holds the URL; formatters reuse a filled-in exc_text.
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    return record


class RedactingFilter(logging.Filter):
    """A logging filter that redacts (never drops) records; for handlers of a host app."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


_installed = False


def install() -> None:
    """Redact every log record of the process from now on (idempotent)."""
    global _installed  # one process-wide hook, installed once
    if _installed:
        return
    make_record = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(make_record(*args, **kwargs))

    logging.setLogRecordFactory(factory)
    _installed = True


def guard_httpx() -> None:
    """Redact the records of httpx's logger (idempotent). It drops nothing and changes no
    level or handler: a host app's logging is otherwise as it set it up."""
    logger = logging.getLogger("httpx")  # the logger of httpx's one line per request
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())

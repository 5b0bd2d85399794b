"""Emulator of the Redivis REST API (v1) holding a CRM dataset, written from its contract.

Organization `acme` owns dataset `crm` with tables `contacts`, `companies`,
`deals` and `notes` (the contract's CRM mapping), all under `/api/v1`.
Rows are read with `GET /tables/:ref/rows` (jsonl). Real Redivis cannot page
there; the contract's extension can: with `pageToken`, `maxResults` must be
1-1000, and whenever a cap of at most 1,000 leaves rows behind, the header
`X-Redivis-Next-Page-Token` carries the next token (no header = last page).
`maxResults` alone may be any positive number (the real, plain cap). Listings
answer `{"results", "nextPageToken"}` with `maxResults` 1-1000, default 100.
The Query API runs a small SQL subset synchronously; its rows page the same way.
String literals and LIKE patterns are read by BigQuery's lexical rules (backslash
escapes; `''`, raw newlines, unknown escapes and unterminated literals are 400s).

Order: table rows in `id` order, which is creation order, because ids are the
seed index + 1 zero-padded behind a prefix (`person_000001`, `org_000001`,
`deal_000001`, `note_000001`); tables in the order contacts, companies, deals,
notes; variables by column `index`; query rows by ORDER BY, ties and no ORDER BY
by `id`.

Tokens: `DEMO_TOKEN` reads the seed dataset, `TENANT2_TOKEN` a second world
(seed + 1), `LIMITED_TOKEN` is valid but has no data scopes: every dataset,
table or query call answers 403 `insufficient_scope`. Limits: 1,000 requests per
fixed 60 s window per token, enforced only with `options.rate_limits`;
`X-RateLimit-Reset` and a 429's `Retry-After` are milliseconds since the epoch.
Writes as Redivis makes them (no row writes): a next version of the dataset
(`POST /datasets/:ref/versions`), stream uploads to its tables (`POST
/tables/:ref:next/uploads`, then `POST /uploads/:id/rows`), each table appending them
or, with `uploadMergeStrategy` "replace" (`PATCH /tables/:ref:next`), replaced by them,
and its release (`POST /datasets/:ref/versions/next/release`), when the uploads take
effect all at once. Reads always serve the current version; versions keep no numbers.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Annotated, Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from emulators.control import EmulatorOptions, emulator_state
from emulators.routing import assemble, pack, unpack
from emulators.seed import SeedWorld
from emulators.tenants import FixedWindow, tenant_worlds

DEMO_TOKEN = "redivis-demo-token"
TENANT2_TOKEN = "redivis-tenant-2"
LIMITED_TOKEN = "redivis-limited"
ORGANIZATION = "acme"
DATASET = "crm"
RATE_LIMIT = 1000
RATE_WINDOW_SECONDS = 60
MAX_RESULTS = 1000
LIST_DEFAULT = 100

Row = dict[str, Any]
VARIABLES: dict[str, list[tuple[str, str]]] = {
    "contacts": [
        ("id", "string"),
        ("first_name", "string"),
        ("last_name", "string"),
        ("email", "string"),
        ("phone", "string"),
        ("job_title", "string"),
        ("company_id", "string"),
        ("created_at", "dateTime"),
        ("updated_at", "dateTime"),
    ],
    "companies": [
        ("id", "string"),
        ("name", "string"),
        ("domain", "string"),
        ("industry", "string"),
        ("employee_count", "integer"),
        ("created_at", "dateTime"),
        ("updated_at", "dateTime"),
    ],
    "deals": [
        ("id", "string"),
        ("name", "string"),
        ("stage", "string"),
        ("status", "string"),
        ("currency", "string"),
        ("amount", "float"),
        ("close_date", "date"),
        ("company_id", "string"),
        ("contact_id", "string"),
        ("created_at", "dateTime"),
        ("updated_at", "dateTime"),
    ],
    "notes": [
        ("id", "string"),
        ("target_type", "string"),
        ("target_id", "string"),
        ("title", "string"),
        ("body", "string"),
        ("author", "string"),
        ("created_at", "dateTime"),
    ],
}
PREFIX = {"contacts": "person", "companies": "org", "deals": "deal", "notes": "note"}
TABLE_ORDER = ("contacts", "companies", "deals", "notes")


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _millis(moment: float) -> int:
    return int(moment * 1000)


def _error(status: int, kind: str, description: str, **extra: Any) -> JSONResponse:
    body = {"status": status, "error": kind, "error_description": description, **extra}
    return JSONResponse(body, status_code=status)


class ApiError(Exception):
    def __init__(self, status: int, kind: str, description: str, **extra: Any) -> None:
        super().__init__(description)
        self.status, self.kind, self.description = status, kind, description
        self.extra = extra


def _id(table: str, index: int) -> str:
    return f"{PREFIX[table]}_{index + 1:06d}"


@dataclass
class Upload:
    """A stream upload to a table of the next version: its rows, applied on release."""

    id: str
    table: str
    name: str
    rows: list[Row] = field(default_factory=list)


@dataclass
class NextVersion:
    """The dataset's unreleased version: its tables' merge strategies and its uploads."""

    created: float = field(default_factory=time.time)
    strategies: dict[str, str] = field(default_factory=dict)  # table -> append | replace
    uploads: list[Upload] = field(default_factory=list)


@dataclass
class Dataset:
    tables: dict[str, list[Row]]
    created: float = field(default_factory=time.time)
    updated: float = 0.0  # the last release (0: none since the seed)
    next: NextVersion | None = None

    def release(self) -> None:
        """The next version's uploads take effect: appended, or replacing the table."""
        assert self.next is not None
        tables = {name: list(rows) for name, rows in self.tables.items()}
        for name in {u.table for u in self.next.uploads}:
            uploaded = [r for u in self.next.uploads if u.table == name for r in u.rows]
            replace = self.next.strategies.get(name) == "replace"
            tables[name] = uploaded if replace else tables[name] + uploaded
            ids = [r["id"] for r in tables[name]]
            if len(set(ids)) != len(ids):
                raise ApiError(400, "invalid_request", f"Rows of {name} would repeat an id.")
            tables[name].sort(key=lambda r: str(r["id"]))
        self.tables, self.next, self.updated = tables, None, time.time()


def _dataset(world: SeedWorld) -> Dataset:
    tables: dict[str, list[Row]] = {t: [] for t in TABLE_ORDER}
    for c in world.companies:
        tables["companies"].append(
            {
                "id": _id("companies", c.index),
                "name": c.name,
                "domain": c.domain,
                "industry": c.industry,
                "employee_count": c.employee_count,
                "created_at": _stamp(c.created_at),
                "updated_at": _stamp(c.updated_at),
            }
        )
    for p in world.contacts:
        tables["contacts"].append(
            {
                "id": _id("contacts", p.index),
                "first_name": p.first_name,
                "last_name": p.last_name,
                "email": p.email,
                "phone": p.phone,
                "job_title": p.title,
                "company_id": None if p.company is None else _id("companies", p.company),
                "created_at": _stamp(p.created_at),
                "updated_at": _stamp(p.updated_at),
            }
        )
    for d in world.deals:
        tables["deals"].append(
            {
                "id": _id("deals", d.index),
                "name": d.name,
                "stage": d.stage,
                "status": d.status,
                "currency": d.currency,
                "amount": d.amount,
                "close_date": d.close_date.isoformat(),
                "company_id": None if d.company is None else _id("companies", d.company),
                "contact_id": _id("contacts", d.contacts[0]) if d.contacts else None,
                "created_at": _stamp(d.created_at),
                "updated_at": _stamp(d.updated_at),
            }
        )
    kinds = {"contact": "contacts", "company": "companies", "deal": "deals"}
    for n in world.notes:
        tables["notes"].append(
            {
                "id": _id("notes", n.index),
                "target_type": n.target_kind,
                "target_id": _id(kinds[n.target_kind], n.target),
                "title": n.title,
                "body": n.body,
                "author": n.author,
                "created_at": _stamp(n.created_at),
            }
        )
    return Dataset(tables)


def _norm(name: str) -> str:
    """Names are case-insensitive and any non-alphanumeric character may be `_`."""
    return re.sub(r"[^a-z0-9]", "_", name.lower())


VERSION = re.compile(r"^(current|next|v\d+_\d+)$")


def _split(part: str) -> str:
    """`name[:refId][:version]` -> name, or 404 for a version this dataset lacks."""
    name, *tags = part.split(":")
    for tag in tags:
        # Tags that look like versions must name ours; anything else is a refId, ignored.
        if VERSION.match(tag.lower()) and tag.lower() not in ("current", "next", "v1_0"):
            raise ApiError(404, "not_found", f"Version {tag!r} not found.")
    return _norm(name)


def _dataset_of(reference: str) -> None:
    """Check `owner.dataset[:refId][:version]` names our dataset, else 404."""
    text = unquote(reference)
    parts = text.split(".")
    if len(parts) != 2 or _norm(parts[0]) != ORGANIZATION or _split(parts[1]) != DATASET:
        raise ApiError(404, "not_found", f"Dataset {text!r} not found.")


def _table_of(reference: str, default_dataset: str | None = None) -> str:
    """`owner.dataset[:refId][:version].table[:refId]` -> the table name, or 404.

    With a query's `defaultDataset`, a bare `table` name is resolved inside it.
    """
    text = unquote(reference).strip("`")
    parts = text.split(".")
    if len(parts) == 1 and default_dataset is not None:
        _dataset_of(default_dataset)
        parts = [ORGANIZATION, DATASET, parts[0]]
    if len(parts) != 3:
        raise ApiError(404, "not_found", f"Table {text!r} not found.")
    owner, dataset, table = _norm(parts[0]), _split(parts[1]), _split(parts[2])
    if owner != ORGANIZATION or dataset != DATASET or table not in VARIABLES:
        raise ApiError(404, "not_found", f"Table {text!r} not found.")
    return table


# --- the SQL subset --------------------------------------------------------------------

TOKEN = re.compile(
    r"\s*(?:(?P<num>-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<ident>`[^`]+`|[A-Za-z_][A-Za-z0-9_.:]*)"
    r"|(?P<op><=|>=|!=|<>|=|<|>|\(|\)|,|\*))"
)
# GoogleSQL escapes inside a quoted string literal, besides octal, hex and Unicode ones.
ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "?": "?",
    "'": "'",
    '"': '"',
    "`": "`",
}
HEX_DIGITS = {"x": 2, "X": 2, "u": 4, "U": 8}  # escape letter -> how many hex digits follow
OCTAL = "01234567"
HEX = "0123456789abcdefABCDEF"


def _bad(description: str) -> ApiError:
    return ApiError(400, "invalid_request", description)


def _string(sql: str, start: int) -> tuple[str, int]:
    """The single-quoted literal opening at `sql[start]`, decoded, and the index after it.

    BigQuery's lexical rules: a backslash starts an escape, `''` is no escape (the
    literal ends at the first quote, so a quote right after it is a syntax error),
    and a single-quoted literal holds no raw newline.
    """
    out: list[str] = []
    i = start + 1
    while True:
        if i >= len(sql):
            raise _bad(f"Unterminated string literal at offset {start}.")
        ch = sql[i]
        if ch == "'":
            if sql.startswith("'", i + 1):
                raise _bad(
                    f"Syntax error at offset {i + 1}: '' does not escape a quote inside a "
                    "string literal (the literal ended); write \\' instead."
                )
            return "".join(out), i + 1
        if ch in "\r\n":
            raise _bad(f"A string literal cannot hold a raw newline (offset {i}); write \\n.")
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= len(sql):
            raise _bad(f"Unterminated string literal at offset {start}.")
        code = sql[i + 1]
        if code in ESCAPES:
            out.append(ESCAPES[code])
            i += 2
        elif code in "0123":
            digits = sql[i + 1 : i + 4]
            if len(digits) < 3 or any(d not in OCTAL for d in digits):
                raise _bad(f"Illegal escape sequence \\{digits}: octal needs 3 octal digits.")
            out.append(chr(int(digits, 8)))
            i += 4
        elif code in HEX_DIGITS:
            count = HEX_DIGITS[code]
            digits = sql[i + 2 : i + 2 + count]
            if len(digits) < count or any(d not in HEX for d in digits):
                raise _bad(f"Illegal escape sequence \\{code}{digits}: needs {count} hex digits.")
            point = int(digits, 16)
            if point > 0x10FFFF or 0xD800 <= point <= 0xDFFF:
                raise _bad(f"Illegal escape sequence \\{code}{digits}: not a Unicode scalar value.")
            out.append(chr(point))
            i += 2 + count
        elif code in "\r\n":
            raise _bad(f"Illegal escaped newline in a string literal (offset {i}).")
        else:
            raise _bad(f"Illegal escape sequence \\{code} in a string literal (offset {i}).")


def _like(pattern: str) -> re.Pattern[str]:
    """A LIKE pattern as a regex: `%` any run, `_` one character, `\\` makes the next literal."""
    parts: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= len(pattern):
                raise _bad("LIKE pattern ends with a backslash.")
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        parts.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(parts), re.DOTALL)


def _tokens(sql: str) -> list[tuple[str, str]]:
    """(kind, text) pairs; a string token carries its decoded value instead of its text."""
    try:
        sql.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad("The query is not valid UTF-8 (it holds a lone surrogate).") from None
    out: list[tuple[str, str]] = []
    position = 0
    sql = sql.strip().rstrip(";")
    while position < len(sql):
        while position < len(sql) and sql[position].isspace():
            position += 1
        if sql.startswith("'", position):
            value, position = _string(sql, position)
            out.append(("str", value))
            continue
        match = TOKEN.match(sql, position)
        if match is None or match.end() == position:
            raise _bad(f"Unsupported SQL near {sql[position : position + 20]!r}.")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        position = match.end()
    return out


class Parser:
    """SELECT cols FROM t [WHERE ...] [ORDER BY ...] [LIMIT n] [OFFSET m], nothing more."""

    def __init__(self, sql: str, default_dataset: str | None = None) -> None:
        self.tokens = _tokens(sql)
        self.default_dataset = default_dataset
        self.used: list[str] = []  # every column named anywhere, checked once the table is known
        self.i = 0

    def peek(self) -> str:
        if self.i >= len(self.tokens):
            return ""
        kind, text = self.tokens[self.i]
        return "'" if kind == "str" else str(text).upper()  # a string is never a keyword

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.tokens):
            raise ApiError(
                400, "invalid_request", f"Unexpected end of query (expected {expected})."
            )
        token = self.tokens[self.i]
        if expected is not None and (token[0] == "str" or token[1].upper() != expected):
            raise ApiError(400, "invalid_request", f"Expected {expected}, found {token[1]!r}.")
        self.i += 1
        return token

    def ident(self) -> str:
        kind, value = self.take()
        if kind != "ident":
            raise ApiError(400, "invalid_request", f"Expected a column name, found {value!r}.")
        name = value.strip("`").lower()
        self.used.append(name)
        return name

    def literal(self) -> Any:
        kind, value = self.take()
        if kind == "str":
            return value
        if kind == "num":
            return float(value) if any(c in value for c in ".eE") else int(value)
        if value.upper() in ("TRUE", "FALSE"):
            return value.upper() == "TRUE"
        if value.upper() == "NULL":
            return None
        raise ApiError(400, "invalid_request", f"Expected a literal, found {value!r}.")

    def parse(
        self,
    ) -> tuple[
        list[str] | None, str, Callable[[Row], bool], list[tuple[str, bool]], int | None, int
    ]:
        self.take("SELECT")
        columns: list[str] | None = None
        if self.peek() == "*":
            self.take()
        else:
            columns = [self.ident()]
            while self.peek() == ",":
                self.take()
                columns.append(self.ident())
        self.take("FROM")
        kind, reference = self.take()
        if kind != "ident":
            raise _bad(f"Expected a table reference, found {reference!r}.")
        try:
            table = _table_of(reference, self.default_dataset)
        except ApiError as error:  # a bad table in SQL is a bad query, not a missing resource
            raise ApiError(400, "invalid_request", error.description) from None
        where: Callable[[Row], bool] = lambda row: True  # noqa: E731
        order: list[tuple[str, bool]] = []
        limit, offset = None, 0
        if self.peek() == "WHERE":
            self.take()
            where = self.disjunction()
        if self.peek() == "ORDER":
            self.take()
            self.take("BY")
            while True:
                column = self.ident()
                descending = False
                if self.peek() in ("ASC", "DESC"):
                    descending = self.take()[1].upper() == "DESC"
                order.append((column, descending))
                if self.peek() != ",":
                    break
                self.take()
        if self.peek() == "LIMIT":
            self.take()
            limit = self.count("LIMIT")
        if self.peek() == "OFFSET":
            self.take()
            offset = self.count("OFFSET")
        if self.i != len(self.tokens):
            raise ApiError(400, "invalid_request", f"Unsupported SQL: {self.tokens[self.i][1]!r}.")
        known = {name for name, _ in VARIABLES[table]}
        for column in self.used:
            if column not in known:
                raise ApiError(400, "invalid_request", f"Unknown variable {column!r} in {table}.")
        return columns, table, where, order, limit, offset

    def count(self, clause: str) -> int:
        kind, value = self.take()
        if kind != "num" or not value.isdigit():
            raise ApiError(400, "invalid_request", f"{clause} needs a non-negative integer.")
        return int(value)

    def disjunction(self) -> Callable[[Row], bool]:
        return self.joined("OR", self.conjunction, any)

    def conjunction(self) -> Callable[[Row], bool]:
        return self.joined("AND", self.condition, all)

    def joined(
        self,
        word: str,
        operand: Callable[[], Callable[[Row], bool]],
        combine: Callable[[Iterator[bool]], bool],
    ) -> Callable[[Row], bool]:
        """`operand (word operand)*`: the one predicate, or `combine` of them all."""
        parts = [operand()]
        while self.peek() == word:
            self.take()
            parts.append(operand())
        return parts[0] if len(parts) == 1 else (lambda row: combine(p(row) for p in parts))

    def condition(self) -> Callable[[Row], bool]:
        if self.peek() == "(":
            self.take()
            inner = self.disjunction()
            self.take(")")
            return inner
        if self.peek() == "LOWER":
            self.take()
            self.take("(")
            column = self.ident()
            self.take(")")
            self.take("LIKE")
            kind, pattern = self.take()
            if kind != "str":
                raise _bad(f"LIKE needs a string pattern, found {pattern!r}.")
            regex = _like(pattern)
            return lambda row: (
                row.get(column) is not None and bool(regex.fullmatch(str(row[column]).lower()))
            )
        column = self.ident()
        word = self.peek()
        if word == "IS":
            self.take()
            negate = self.peek() == "NOT"
            if negate:
                self.take()
            self.take("NULL")
            return lambda row: (row.get(column) is None) != negate
        if word == "IN":
            self.take()
            self.take("(")
            values = [self.literal()]
            while self.peek() == ",":
                self.take()
                values.append(self.literal())
            self.take(")")
            return lambda row: any(_equal(row.get(column), v) for v in values)
        _, op = self.take()
        value = self.literal()
        tests: dict[str, Callable[[Any, Any], bool]] = {
            "=": _equal,
            "!=": lambda a, b: a is not None and not _equal(a, b),
            "<>": lambda a, b: a is not None and not _equal(a, b),
            "<": lambda a, b: _compare(a, b) == -1,
            "<=": lambda a, b: _compare(a, b) in (-1, 0),
            ">": lambda a, b: _compare(a, b) == 1,
            ">=": lambda a, b: _compare(a, b) in (0, 1),
        }
        if op not in tests:
            raise ApiError(400, "invalid_request", f"Unsupported operator {op!r}.")
        test = tests[op]
        return lambda row: test(row.get(column), value)


def _equal(a: Any, b: Any) -> bool:
    return a is not None and b is not None and _compare(a, b) == 0


def _compare(a: Any, b: Any) -> int | None:
    if a is None or b is None:
        return None
    if isinstance(a, int | float) and isinstance(b, str):
        try:
            b = float(b)
        except ValueError:
            return None
    if isinstance(a, str) and isinstance(b, int | float):
        b = str(b)
    ordered: int = (a > b) - (a < b)
    return ordered


def _sorted(rows: list[Row], order: list[tuple[str, bool]]) -> list[Row]:
    rows = sorted(rows, key=lambda r: r["id"])  # ties: id ascending
    for column, descending in reversed(order):
        present = [r for r in rows if r.get(column) is not None]
        missing = [r for r in rows if r.get(column) is None]
        present.sort(key=lambda r: r[column], reverse=descending)
        # NULLs first ascending, last descending.
        rows = present + missing if descending else missing + present
    return rows


# --- paging ----------------------------------------------------------------------------


def _token(source: str, offset: int) -> str:
    return pack({"s": source, "o": offset})


def _untoken(token: str, source: str, size: int) -> int:
    try:
        data = unpack(token)
        offset = data["o"]
        owner = data["s"]
    except (ValueError, KeyError, TypeError):
        raise ApiError(400, "invalid_request", "pageToken is not valid.") from None
    if owner != source or not isinstance(offset, int) or not 0 < offset <= size:
        raise ApiError(400, "invalid_request", "pageToken does not belong to this listing.")
    return offset


FLAGS = {"exactReferences", "strictReferences"}  # accepted on any call, ignored
LIST_PARAMS = {"maxResults", "pageToken"} | FLAGS
ROW_PARAMS = {"format", "selectedVariables", "maxResults", "pageToken"} | FLAGS


def _check_params(request: Request, allowed: set[str]) -> None:
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise ApiError(400, "invalid_request", f"Unknown query parameter(s): {', '.join(unknown)}.")


def _max_results(raw: str | None, default: int | None, ceiling: int | None) -> int | None:
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1 or (ceiling is not None and int(raw) > ceiling):
        bound = f"between 1 and {ceiling}" if ceiling else "a positive integer"
        raise ApiError(400, "invalid_request", f"maxResults must be {bound}.")
    return int(raw)


def _rows_response(request: Request, source: str, rows: list[Row], columns: list[str]) -> Response:
    """Rows as jsonl; `maxResults` caps them and, being ≤ 1,000, offers a next-page token.

    Real Redivis has no paging here: `maxResults` alone is a plain cap of any size. The
    contract's extension: with `pageToken` it must be 1-1000, and when rows remain after
    a cap of at most 1,000 the header `X-Redivis-Next-Page-Token` carries the next token.
    """
    _check_params(request, ROW_PARAMS)
    params = request.query_params
    fmt = params.get("format", "jsonl")
    if fmt not in ("jsonl", "csv", "arrow"):
        raise ApiError(400, "invalid_request", f"Unknown format {fmt!r}.")
    if fmt != "jsonl":
        raise ApiError(400, "invalid_request", f"This server streams jsonl only, not {fmt}.")
    selected = columns
    if params.get("selectedVariables") is not None:
        wanted = [v.strip().lower() for v in params["selectedVariables"].split(",") if v.strip()]
        unknown = [v for v in wanted if v not in columns]
        if unknown or not wanted:
            raise ApiError(400, "invalid_request", f"Unknown variables: {', '.join(unknown)}.")
        selected = wanted
    token = params.get("pageToken")
    paging = token is not None
    limit = _max_results(params.get("maxResults"), None, MAX_RESULTS if paging else None)
    start = _untoken(token, source, len(rows)) if token is not None else 0
    end = len(rows) if limit is None else start + limit
    chunk = rows[start:end]
    body = "".join(json.dumps({c: r.get(c) for c in selected}) + "\n" for r in chunk)
    headers = {}
    if limit is not None and limit <= MAX_RESULTS and end < len(rows):
        headers["X-Redivis-Next-Page-Token"] = _token(source, end)
    return Response(body, media_type="application/x-ndjson", headers=headers)


def _listing(request: Request, source: str, items: list[Row]) -> JSONResponse:
    """`{"results": [...], "nextPageToken": ... | null}`, maxResults 1-1000, default 100."""
    _check_params(request, LIST_PARAMS)
    limit = _max_results(request.query_params.get("maxResults"), LIST_DEFAULT, MAX_RESULTS)
    assert limit is not None
    token = request.query_params.get("pageToken")
    start = _untoken(token, source, len(items)) if token is not None else 0
    chunk = items[start : start + limit]
    following = _token(source, start + limit) if start + limit < len(items) else None
    return JSONResponse({"results": chunk, "nextPageToken": following})


# --- the app ---------------------------------------------------------------------------


@dataclass
class Query:
    id: str
    owner: str  # the token that ran it; other tokens get 404, as for any hidden resource
    table: str
    rows: list[Row]
    columns: list[str]
    created: float


class Redivis:
    """The per-app state: one dataset per tenant token, finished queries, rate windows."""

    def __init__(self, options: EmulatorOptions) -> None:
        self.options = options
        self.datasets: dict[str, Dataset] = {}
        self.queries: dict[str, Query] = {}
        self.rate_window = FixedWindow(RATE_LIMIT, RATE_WINDOW_SECONDS)
        self.reset()

    def reset(self) -> None:
        demo, other = tenant_worlds(self.options)
        self.datasets = {DEMO_TOKEN: _dataset(demo), TENANT2_TOKEN: _dataset(other)}
        self.queries = {}
        self.rate_window.clear()

    def window(self, token: str) -> tuple[int, float]:
        """(requests left, window end as Unix time) of the token's fixed window."""
        span = self.rate_window.current(token)
        return span.remaining, span.end

    def spend(self, token: str) -> None:
        self.rate_window.spend(token)


def _throttled(reset: float) -> JSONResponse:
    response = _error(429, "rate_limit_exceeded", "Too many requests; retry after the given time.")
    response.headers.update(
        {
            "Retry-After": str(_millis(reset)),  # an instant in ms since the epoch, not a delay
            "X-RateLimit-Limit": str(RATE_LIMIT),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(_millis(reset)),
        }
    )
    return response


ERROR_KINDS = {
    400: "invalid_request",
    401: "invalid_token",
    403: "forbidden",
    404: "not_found",
    405: "invalid_request",
    429: "rate_limit_exceeded",
}
OPEN_PATHS = {"/api/v1/openAPI.json"}  # served without a token, like the real one


def _error_for(status: int, message: str) -> JSONResponse:
    return _error(status, ERROR_KINDS.get(status, "internal_error"), message)


def _dataset_resource(data: Dataset) -> Row:
    created, following = data.created, data.next
    return {
        "kind": "dataset",
        "id": "ds_crm",
        "name": DATASET,
        "qualifiedReference": f"{ORGANIZATION}.{DATASET}",
        "scopedReference": DATASET,
        "referenceId": "crm1",
        "uri": f"/datasets/{ORGANIZATION}.{DATASET}",
        "url": f"https://redivis.com/datasets/{ORGANIZATION}.{DATASET}",
        "owner": {"kind": "organization", "name": ORGANIZATION},
        "description": "CRM records",
        "accessLevel": "data",
        "publicAccessLevel": "none",
        "createdAt": _millis(created),
        "updatedAt": _millis(data.updated or created),
        "tableCount": len(VARIABLES),
        "numBytes": 0,
        "nextVersion": None
        if following is None
        else {"tag": "next", "datasetUri": f"/datasets/{ORGANIZATION}.{DATASET}:next"},
    }


def _table_resource(data: Dataset, table: str, *, full: bool = False) -> Row:
    reference = f"{ORGANIZATION}.{DATASET}.{table}"
    resource: Row = {
        "kind": "table",
        "id": hashlib.sha256(reference.encode()).hexdigest()[:12],
        "name": table,
        "uri": f"/tables/{reference}",
        "url": f"https://redivis.com/datasets/{ORGANIZATION}.{DATASET}/tables/{table}",
        "qualifiedReference": reference,
        "scopedReference": table,
        "referenceId": hashlib.sha256(table.encode()).hexdigest()[:4],
        "hash": hashlib.sha256(json.dumps(data.tables[table][-1:]).encode()).hexdigest()[:16],
        "isSample": False,
        "isFileIndex": False,
        "createdAt": _millis(data.created),
        "updatedAt": _millis(data.updated or data.created),
        "description": f"CRM {table}",
        "numRows": len(data.tables[table]),
        "numBytes": len(json.dumps(data.tables[table])),
        "uploadMergeStrategy": (data.next.strategies if data.next else {}).get(table, "append"),
        "variableCount": len(VARIABLES[table]),
    }
    if full:
        resource["container"] = _dataset_resource(data)
        resource["accessLevel"] = "data"
    return resource


def _variable_resource(table: str, index: int, *, full: bool = False) -> Row:
    column, kind = VARIABLES[table][index]
    resource: Row = {
        "kind": "variable",
        "uri": f"/tables/{ORGANIZATION}.{DATASET}.{table}/variables/{column}",
        "url": f"https://redivis.com/datasets/{ORGANIZATION}.{DATASET}/tables/{table}",
        "name": column,
        "type": kind,
    }
    if full:
        resource["description"] = f"{table}.{column}"
        resource["valueLabels"] = []
    else:
        resource.update({"index": index, "label": column.replace("_", " "), "isFileId": False})
    return resource


def _query_resource(query: Query) -> Row:
    kinds = dict(VARIABLES[query.table])
    return {
        "kind": "query",
        "uri": f"/queries/{query.id}",
        "id": query.id,
        "status": "completed",  # the emulator runs every query synchronously
        "errorMessage": None,
        "outputNumRows": len(query.rows),
        "outputNumBytes": len(json.dumps(query.rows)),
        "outputSchema": [{"name": c, "type": kinds[c]} for c in query.columns],
        "createdAt": _millis(query.created),
    }


async def _gate(request: Request, call_next: Callable[[Request], Any]) -> Response:
    """Auth, the per-token rate window and its headers, HEAD error payloads."""
    if not request.url.path.startswith("/api/v1/") or request.url.path in OPEN_PATHS:
        response: Response = await call_next(request)
        return response
    api: Redivis = emulator_state(request)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or token not in (*api.datasets, LIMITED_TOKEN):
        response = _error(401, "invalid_token", "The access token is missing or invalid.")
    else:
        response = await _metered(api, token, request, call_next)
    if request.method == "HEAD" and response.status_code >= 400:
        # HEAD answers have no body, so the error travels percent-encoded in a header.
        # A refusal built here has its `body`; a route's answer comes through `call_next`
        # as a stream.
        chunks = getattr(response, "body_iterator", None)
        body = bytes(response.body) if chunks is None else b"".join([c async for c in chunks])
        headers = dict(response.headers)
        headers["X-Redivis-Error-Payload"] = quote(body.decode())
        headers.pop("content-length", None)
        return Response(status_code=response.status_code, headers=headers)
    return response


async def _metered(
    api: Redivis, token: str, request: Request, call_next: Callable[[Request], Any]
) -> Response:
    """The answer within the token's rate window, or a 429 once it is spent."""
    remaining, reset = api.window(token)
    if api.options.rate_limits and remaining <= 0:
        return _throttled(reset)
    if api.options.rate_limits:  # an unenforced budget is not spent either
        api.spend(token)
        remaining -= 1
    request.state.token = token
    response: Response = await call_next(request)
    response.headers.update(
        {
            "X-RateLimit-Limit": str(RATE_LIMIT),
            "X-RateLimit-Remaining": str(max(0, remaining)),
            "X-RateLimit-Reset": str(_millis(reset)),
        }
    )
    return response


async def _api(request: Request) -> Redivis:
    api: Redivis = emulator_state(request)
    return api


def _scoped(scope: str) -> Callable[[Request], Awaitable[Dataset]]:
    """A dependency giving the caller's dataset; the limited token lacks every data scope."""

    async def dataset(request: Request) -> Dataset:
        token: str = request.state.token
        if token == LIMITED_TOKEN:
            raise ApiError(
                403,
                "insufficient_scope",
                f"This call needs the {scope} scope.",
                scope=[scope],
            )
        return (await _api(request)).datasets[token]

    return dataset


Api = Annotated[Redivis, Depends(_api)]
Overview = Annotated[Dataset, Depends(_scoped("data.overview"))]
Metadata = Annotated[Dataset, Depends(_scoped("data.metadata"))]
Data = Annotated[Dataset, Depends(_scoped("data.data"))]
Edit = Annotated[Dataset, Depends(_scoped("data.edit"))]


# --- datasets --------------------------------------------------------------------------

datasets = APIRouter(prefix="/api/v1")


@datasets.get("/organizations/{org}/datasets")
async def list_datasets(org: str, request: Request, data: Overview) -> Response:
    if _norm(org) != ORGANIZATION:
        raise ApiError(404, "not_found", f"Organization {org!r} not found.")
    return _listing(request, f"datasets:{_norm(org)}", [_dataset_resource(data)])


@datasets.get("/datasets/{reference}")
@datasets.head("/datasets/{reference}", include_in_schema=False)
async def get_dataset(reference: str, request: Request, data: Overview) -> Response:
    _check_params(request, FLAGS)
    _dataset_of(reference)
    return JSONResponse(_dataset_resource(data))


@datasets.get("/datasets/{reference}/tables")
async def list_tables(reference: str, request: Request, data: Overview) -> Response:
    _dataset_of(reference)
    items = [_table_resource(data, t) for t in TABLE_ORDER]
    return _listing(request, f"tables:{ORGANIZATION}.{DATASET}", items)


@datasets.post("/datasets/{reference}/versions")
async def create_version(reference: str, data: Edit) -> Response:
    _dataset_of(reference)
    if data.next is not None:
        raise ApiError(400, "invalid_request", "The dataset already has a next version.")
    data.next = NextVersion()
    return JSONResponse(_version_resource(data.next))


@datasets.post("/datasets/{reference}/versions/next/release")
async def release_version(reference: str, data: Edit) -> Response:
    _dataset_of(reference)
    if data.next is None:
        raise ApiError(400, "invalid_request", "The dataset has no next version to release.")
    data.release()
    return JSONResponse(_dataset_resource(data))


def _version_resource(version: NextVersion) -> Row:
    return {
        "kind": "version",
        "tag": "next",
        "datasetUri": f"/datasets/{ORGANIZATION}.{DATASET}:next",
        "isReleased": False,
        "createdAt": _millis(version.created),
    }


# --- tables ----------------------------------------------------------------------------

tables = APIRouter(prefix="/api/v1/tables/{reference}")


@tables.get("")
@tables.head("", include_in_schema=False)
async def get_table(reference: str, request: Request, data: Overview) -> Response:
    _check_params(request, FLAGS)
    return JSONResponse(_table_resource(data, _table_of(reference), full=True))


@tables.get("/variables")
async def list_variables(reference: str, request: Request, _: Metadata) -> Response:
    name = _table_of(reference)
    items = [_variable_resource(name, i) for i in range(len(VARIABLES[name]))]
    return _listing(request, f"variables:{name}", items)


@tables.get("/variables/{variable}")
async def get_variable(reference: str, variable: str, request: Request, _: Metadata) -> Response:
    _check_params(request, FLAGS)
    name = _table_of(reference)
    for index, (column, _kind) in enumerate(VARIABLES[name]):
        if column == _norm(variable):
            return JSONResponse(_variable_resource(name, index, full=True))
    raise ApiError(404, "not_found", f"Variable {variable!r} not found in {name}.")


@tables.get("/rows")
async def table_rows(reference: str, request: Request, data: Data) -> Response:
    if await request.body():
        raise ApiError(400, "invalid_request", "GET requests carry no body.")
    name = _table_of(reference)
    columns = [c for c, _ in VARIABLES[name]]
    return _rows_response(request, f"table:{name}", data.tables[name], columns)


def _next_of(reference: str, data: Dataset) -> tuple[str, NextVersion]:
    """The table a `:next` reference names and the next version; 400 for a released one."""
    table = _table_of(reference)
    dataset_part = unquote(reference).strip("`").split(".")[1]
    if "next" not in (tag.lower() for tag in dataset_part.split(":")[1:]):
        raise ApiError(400, "invalid_request", "Released tables cannot change: use version next.")
    if data.next is None:
        raise ApiError(404, "not_found", "The dataset has no next version.")
    return table, data.next


async def _json_object(request: Request) -> Row:
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "invalid_request", "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "The body must be a JSON object.")
    return body


@tables.patch("")
async def update_table(reference: str, request: Request, data: Edit) -> Response:
    table, version = _next_of(reference, data)
    strategy = (await _json_object(request)).get("uploadMergeStrategy", "append")
    if strategy not in ("append", "replace"):
        raise ApiError(400, "invalid_request", "uploadMergeStrategy is append or replace.")
    version.strategies[table] = strategy
    return JSONResponse(_table_resource(data, table, full=True))


@tables.post("/uploads")
async def create_upload(reference: str, request: Request, data: Edit) -> Response:
    table, version = _next_of(reference, data)
    body = await _json_object(request)
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise ApiError(400, "invalid_request", "`name` (text) is required.")
    if body.get("type", "delimited") != "stream":
        raise ApiError(400, "invalid_request", "This server takes stream uploads only.")
    upload = Upload(f"up_{len(version.uploads) + 1:06d}", table, name)
    version.uploads.append(upload)
    return JSONResponse(_upload_resource(upload))


def _upload_resource(upload: Upload) -> Row:
    return {
        "kind": "upload",
        "id": upload.id,
        "uri": f"/uploads/{upload.id}",
        "name": upload.name,
        "type": "stream",
        "status": "completed",
        "numRows": len(upload.rows),
    }


uploads = APIRouter(prefix="/api/v1/uploads")


@uploads.post("/{upload_id}/rows")
async def insert_rows(upload_id: str, request: Request, data: Edit) -> Response:
    upload = next((u for u in data.next.uploads if u.id == upload_id), None) if data.next else None
    if upload is None:
        raise ApiError(404, "not_found", f"Upload {upload_id!r} not found.")
    rows = (await _json_object(request)).get("rows")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ApiError(400, "invalid_request", "`rows` must be a list of objects.")
    upload.rows += [_typed_row(upload.table, row) for row in rows]
    return JSONResponse({"insertedRows": len(rows)})


def _typed_row(table: str, row: Row) -> Row:
    """`row` with every variable of `table`, each value of its type (dateTime in the
    stored form); 400 for an unknown variable or a value of the wrong type."""
    kinds = dict(VARIABLES[table])
    unknown = sorted(set(row) - set(kinds))
    if unknown:
        raise ApiError(400, "invalid_request", f"Unknown variables: {', '.join(unknown)}.")
    if not isinstance(row.get("id"), str) or not row["id"]:
        raise ApiError(400, "invalid_request", "Every row needs its `id` (text).")
    return {column: _typed(kind, row.get(column)) for column, kind in kinds.items()}


def _typed(kind: str, value: Any) -> Any:
    try:
        if value is None:
            return None
        if kind == "dateTime":
            moment = datetime.fromisoformat(str(value).replace(" ", "T").replace("Z", "+00:00"))
            return _stamp(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
        if kind == "date":
            return date.fromisoformat(str(value)).isoformat()
        if kind == "integer":
            return int(value)
        return float(value) if kind == "float" else str(value)
    except (TypeError, ValueError):
        raise ApiError(400, "invalid_request", f"{value!r} is not a {kind}.") from None


# --- queries ---------------------------------------------------------------------------

queries = APIRouter(prefix="/api/v1/queries")


async def _query_body(request: Request) -> tuple[str, str | None]:
    """The SQL and default dataset of a query request, checked."""
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "invalid_request", "The body is not valid JSON.") from None
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        raise ApiError(400, "invalid_request", "`query` (a SQL string) is required.")
    extra = sorted(set(body) - {"query", "timeoutMs", "defaultDataset"})
    if extra:
        raise ApiError(400, "invalid_request", f"Unknown body field(s): {', '.join(extra)}.")
    timeout = body.get("timeoutMs", 30000)
    if type(timeout) is not int or not 0 <= timeout <= 60000:
        raise ApiError(400, "invalid_request", "timeoutMs must be between 0 and 60000.")
    default = body.get("defaultDataset")
    if default is not None and not isinstance(default, str):
        raise ApiError(400, "invalid_request", "defaultDataset must be a dataset reference.")
    return body["query"], default


@queries.post("")
async def run_query(request: Request, api: Api, data: Data) -> Response:
    _check_params(request, FLAGS)
    columns, name, where, order, limit, offset = Parser(*await _query_body(request)).parse()
    selected = columns or [c for c, _ in VARIABLES[name]]
    rows = _sorted([r for r in data.tables[name] if where(r)], order)
    rows = rows[offset:] if limit is None else rows[offset : offset + limit]
    query = Query(
        id=f"q_{len(api.queries) + 1:08d}",
        owner=request.state.token,
        table=name,
        rows=[{c: r.get(c) for c in selected} for r in rows],
        columns=selected,
        created=time.time(),
    )
    api.queries[query.id] = query
    return JSONResponse(_query_resource(query))


def find_query(request: Request, api: Redivis, query_id: str) -> Query:
    """The caller's query `query_id`; another token's query is hidden (404)."""
    query = api.queries.get(query_id)
    if query is None or query.owner != request.state.token:
        raise ApiError(404, "not_found", f"Query {query_id!r} not found.")
    return query


@queries.get("/{query_id}")
async def get_query(query_id: str, request: Request, api: Api, _: Data) -> Response:
    _check_params(request, FLAGS)
    return JSONResponse(_query_resource(find_query(request, api, query_id)))


@queries.get("/{query_id}/rows")
async def query_rows(query_id: str, request: Request, api: Api, _: Data) -> Response:
    query = find_query(request, api, query_id)
    return _rows_response(request, f"query:{query_id}", query.rows, query.columns)


# --- the app ---------------------------------------------------------------------------


async def _api_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    return _error(error.status, error.kind, error.description, **error.extra)


async def _http_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    return _error_for(error.status_code, str(error.detail))


async def _validation_error(_: Request, error: Exception) -> Response:
    return _error_for(400, "The request is not valid.")


def create_app(options: EmulatorOptions) -> FastAPI:
    api = Redivis(options)
    app = FastAPI(
        title="Redivis API emulator",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openAPI.json",
    )
    return assemble(
        app,
        api,
        options,
        handlers={ApiError: _api_error},
        http_error=_http_error,
        validation_error=_validation_error,
        gate=_gate,
        hooks=(_error_for, lambda: _throttled(time.time() + 1)),
        routers=(datasets, tables, uploads, queries),
    )

"""Trusted documents: the operations a client build ships, read once at start-up.

`persisted_documents = "file.json"` names a manifest in either of the two formats client
tooling writes:

- Apollo's persisted query manifest (`@apollo/generate-persisted-query-manifest`):
  `{"format": "apollo-persisted-query-manifest", "version": 1,
    "operations": [{"id": "...", "name": "ListContacts", "type": "query", "body": "..."}]}`
- graphql-codegen's client preset (`persisted-documents.json`): `{"<hash>": "<document>"}`.

Every document must parse, hold at least one operation and validate against the schema; an
Apollo entry must hold the operation its `name` and `type` say. An id shaped like a SHA-256
(64 hex digits, or `sha256:` and those) must be the SHA-256 of its document, so a document
edited by hand without its id is caught. Anything wrong stops start-up with a ConfigError
naming the file and the entry.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    parse,
    validate,
)

from gateway.configerrors import ConfigError

APOLLO_FORMAT = "apollo-persisted-query-manifest"
OPERATION_TYPES = ("query", "mutation", "subscription")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def sha256_hex(text: str) -> str:
    """The lower-case hex SHA-256 of `text` in UTF-8, as Apollo Client and codegen hash it."""
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()


def document_key(identifier: str) -> str:
    """The key a document id is looked up by: a SHA-256 id (bare, or `sha256:` as in the
    GraphQL over HTTP persisted documents appendix) as lower-case hex; any other id as it is."""
    bare = identifier.removeprefix("sha256:")
    return bare.lower() if _SHA256.fullmatch(bare) else identifier


def is_sha256(key: str) -> bool:
    return _SHA256.fullmatch(key) is not None


@dataclass(frozen=True)
class Manifest:
    """The trusted documents by key (`document_key` of their ids), the SHA-256 of each
    document (a client may also send the text itself), and their operations' names."""

    documents: Mapping[str, str]
    hashes: frozenset[str]
    names: frozenset[str]

    def trusts(self, text: str) -> bool:
        return sha256_hex(text) in self.hashes


def load_manifest(path: Path, schema: GraphQLSchema | None = None) -> Manifest:
    """The manifest at `path`, every document checked (against `schema` when given)."""
    where = f"persisted_documents: {path}"
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{where}: cannot be read ({error})") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{where}: not JSON ({error})") from None
    return parse_manifest(data, where, schema)


def parse_manifest(data: object, where: str, schema: GraphQLSchema | None = None) -> Manifest:
    """The manifest in `data` (decoded JSON); ConfigError starting with `where` if it is wrong."""
    documents: dict[str, str] = {}
    names: set[str] = set()
    for identifier, body, expected in _entries(data, where):
        at = f"{where}: document {identifier!r}"
        key = document_key(identifier)
        if is_sha256(key) and sha256_hex(body) != key:
            raise ConfigError(f"{at}: the id is not the SHA-256 of the document")
        if documents.get(key, body) != body:
            raise ConfigError(f"{at}: the id is given to two different documents")
        document = _parsed(body, at)
        operations = _operations(document, at)
        if schema is not None and (errors := validate(schema, document)):
            raise ConfigError(f"{at}: invalid against the schema: {errors[0].message}")
        if expected is not None and expected not in {(o.name, o.type) for o in operations}:
            name, kind = expected
            raise ConfigError(f"{at}: the document holds no {kind} named {name!r}")
        documents[key] = body
        names.update(o.name for o in operations if o.name is not None)
    return Manifest(
        documents=documents,
        hashes=frozenset(sha256_hex(body) for body in documents.values()),
        names=frozenset(names),
    )


@dataclass(frozen=True)
class _Operation:
    name: str | None
    type: str


Entry = tuple[str, str, tuple[str, str] | None]  # id, document, (name, type) it must hold


def _entries(data: object, where: str) -> Iterator[Entry]:
    """Each entry of either format: its id, its document, and what an Apollo entry names."""
    if isinstance(data, dict) and "format" in data:
        yield from _apollo_entries(data, where)
        return
    if not isinstance(data, dict) or not all(
        isinstance(key, str) and key and isinstance(value, str) for key, value in data.items()
    ):
        raise ConfigError(
            f'{where}: neither an Apollo persisted query manifest ({{"format": '
            f'"{APOLLO_FORMAT}", ...}}) nor a map of document ids to documents '
            "(graphql-codegen's persisted-documents.json)"
        )
    for identifier, body in data.items():
        yield identifier, body, None


def _apollo_entries(data: dict[str, object], where: str) -> Iterator[Entry]:
    if data.get("format") != APOLLO_FORMAT:
        raise ConfigError(f"{where}: unknown format {data.get('format')!r}; {APOLLO_FORMAT!r}")
    if data.get("version") != 1:
        raise ConfigError(f"{where}: unknown manifest version {data.get('version')!r}; 1")
    operations = data.get("operations")
    if not isinstance(operations, list):
        raise ConfigError(f"{where}: `operations` must be a list")
    for index, entry in enumerate(operations):
        at = f"{where}: operations[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{at}: must be an object {{id, name, type, body}}")
        for field in ("id", "name", "type", "body"):
            if not isinstance(entry.get(field), str) or not entry[field]:
                raise ConfigError(f"{at}: `{field}` must be a non-empty string")
        if entry["type"] not in OPERATION_TYPES:
            raise ConfigError(f"{at}: `type` must be one of {', '.join(OPERATION_TYPES)}")
        yield entry["id"], entry["body"], (entry["name"], entry["type"])


def _parsed(body: str, at: str) -> DocumentNode:
    try:
        return parse(body, no_location=True)
    except GraphQLError as error:
        raise ConfigError(f"{at}: does not parse: {error.message}") from None


def _operations(document: DocumentNode, at: str) -> list[_Operation]:
    operations = [
        _Operation(d.name.value if d.name else None, d.operation.value)
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
    ]
    if not operations:
        raise ConfigError(f"{at}: holds no operation")
    return operations

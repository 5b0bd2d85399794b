"""What is learnt from a query text once: its parsed document, its validation, its arguments.

Clients send the same few texts again and again, so each is parsed, validated and searched
for its arguments once. These caches are bounded in bytes as well as in entries: a text of a
megabyte (a long comment) parses to a document holding it and every token, and a few hundred
of them would otherwise take gigabytes. Keys are digests of the text, never the text, and
values are measured once, when stored (gateway.sizes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Iterator
from typing import Any, Generic, TypeVar

from cachetools import LRUCache
from graphql import DocumentNode, GraphQLError, parse
from strawberry.extensions import SchemaExtension

from gateway.sizes import deep_size

V = TypeVar("V")

# Distinct texts kept per cache, and the bytes each cache may hold.
DOCUMENT_CACHE_SIZE = 256
DOCUMENT_CACHE_BYTES = 32 * 2**20
# A value above this share of a cache's bytes is used once and not kept.
ENTRY_SHARE = 8


def text_key(query: str) -> str:
    """The cache key of a query text: a digest, as short for a megabyte as for a line."""
    return hashlib.sha256(query.encode(errors="surrogatepass")).hexdigest()


class DocumentCache(Generic[V]):
    """The most recently used values, at most `maxsize` of them and `max_bytes` together."""

    def __init__(
        self, *, maxsize: int = DOCUMENT_CACHE_SIZE, max_bytes: int = DOCUMENT_CACHE_BYTES
    ) -> None:
        self.maxsize = maxsize
        self.max_bytes = max_bytes
        self._store: LRUCache[Hashable, tuple[V, int]] = LRUCache(
            maxsize=max_bytes, getsizeof=_held_size
        )

    def get(self, key: Hashable) -> V | None:
        held = self._store.get(key)
        return None if held is None else held[0]

    def put(self, key: Hashable, value: V) -> None:
        size = deep_size(value)
        if size > self.max_bytes // ENTRY_SHARE:
            return
        self._store[key] = (value, size)
        while len(self._store) > self.maxsize:
            self._store.popitem()

    @property
    def size(self) -> int:
        """The bytes held, as measured when stored."""
        return int(self._store.currsize)

    def __len__(self) -> int:
        return len(self._store)

    def clear(self) -> None:
        self._store.clear()


def _held_size(held: tuple[Any, int]) -> int:
    return held[1]


documents: DocumentCache[DocumentNode] = DocumentCache()


class ParsedDocuments(SchemaExtension):
    """Parses a query text once (Strawberry's ParserCache keeps every text whole, by count)."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query
        if query is not None and context.graphql_document is None:
            options = context.parse_options
            key = (text_key(query), tuple(sorted(options.items())))
            document = documents.get(key)
            if document is None:
                try:
                    document = parse(query, **options)
                except GraphQLError:
                    document = None  # Strawberry parses it again and reports the error
                else:
                    documents.put(key, document)
            context.graphql_document = document
        yield

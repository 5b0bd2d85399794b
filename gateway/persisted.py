"""Persisted documents: requests that name their document instead of sending it.

Two protocols, one lookup:

- Automatic persisted queries (Apollo's, `extensions.persistedQuery {version: 1,
  sha256Hash}`), which Apollo Client's persisted-queries link and urql's persisted exchange
  speak: a hash the gateway does not know answers PERSISTED_QUERY_NOT_FOUND (status 200,
  as Apollo Server answers, so no client's error handling hides it), the client sends the
  text with its hash once, the gateway checks the hash and keeps the text
  (`gateway.query_store`) once it has run without a request error, and the hash alone works
  from then on, over GET too (URLs a CDN can cache).
- Trusted documents (`gateway.manifest`), by `documentId` (the GraphQL over HTTP persisted
  documents appendix) or by `extensions.persistedQuery.sha256Hash`.

With `persisted_only`, a client may run only the manifest's documents (by id, or by sending
a text that is one of them) unless it has the `ad_hoc` scope; on an open gateway with
GraphiQL on, every request is the one anonymous client's and GraphiQL's among them, so that
client may send any document. Without the scope, the APQ store is neither read nor written:
what one client registered never becomes another's trusted document.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cross_web import AsyncHTTPRequestAdapter
from strawberry.http import GraphQLRequestData

from gateway.clients import Client
from gateway.errors import GatewayError
from gateway.manifest import Manifest, document_key, is_sha256, sha256_hex
from gateway.query_store import QueryStore

AD_HOC = "ad_hoc"  # the scope that lets a client send documents outside the manifest


class PersistedQueryError(GatewayError):
    """A request refused by its persisted document; `status` is the HTTP status it gets
    when it is the request's only operation (in a batch, the item's error is all)."""

    def __init__(self, message: str, code: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def not_found() -> PersistedQueryError:
    # The message and code Apollo Client and urql look for before sending the text.
    return PersistedQueryError("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND", 200)


def not_supported() -> PersistedQueryError:
    # Apollo Client then stops sending hashes and sends every text.
    return PersistedQueryError("PersistedQueryNotSupported", "PERSISTED_QUERY_NOT_SUPPORTED", 200)


def bad_request(message: str) -> PersistedQueryError:
    return PersistedQueryError(message, "BAD_REQUEST", 400)


@dataclass
class DocumentRequest(GraphQLRequestData):
    """A request's parameters with the `documentId` Strawberry does not read."""

    document_id: object = None


class PersistedDocuments:
    """Resolves each request's document: from the manifest, the APQ store (None: APQ off)
    or its own text; and refuses what `persisted_only` does not allow."""

    def __init__(
        self,
        *,
        manifest: Manifest | None = None,
        store: QueryStore | None = None,
        persisted_only: bool = False,
        open_ad_hoc: bool = False,
    ) -> None:
        self.manifest = manifest
        self.store = store
        self.persisted_only = persisted_only
        # Whether the anonymous client of an open gateway may send any document.
        self.open_ad_hoc = open_ad_hoc

    def ad_hoc(self, client: Client | None) -> bool:
        """Whether `client` may run documents that are not in the manifest."""
        if not self.persisted_only:
            return True
        return self.open_ad_hoc if client is None else AD_HOC in client.scopes

    async def resolve(self, data: GraphQLRequestData, client: Client | None) -> str | None:
        """Fill in `data.query` from the document the request names, or refuse it. Returns
        the hash to register the request's text under once it has run, if any."""
        ad_hoc = self.ad_hoc(client)
        document_id = getattr(data, "document_id", None)
        persisted = (data.extensions or {}).get("persistedQuery")
        register = None
        if document_id is not None:
            if data.query is not None:
                raise bad_request("Send either `query` or `documentId`, not both.")
            if not isinstance(document_id, str) or not document_id:
                raise bad_request("`documentId` must be a non-empty string.")
            data.query = await self._lookup(document_key(document_id), ad_hoc)
            return None
        if persisted is not None:
            digest = requested_hash(persisted)
            if data.query is None:
                data.query = await self._lookup(digest, ad_hoc)
                return None
            if sha256_hex(data.query) != digest:
                raise PersistedQueryError(
                    "provided sha does not match query: `extensions.persistedQuery.sha256Hash` "
                    "must be the SHA-256 of `query`.",
                    "PERSISTED_QUERY_HASH_MISMATCH",
                    400,
                )
            register = digest if self.store is not None and ad_hoc else None
        if data.query is None:
            raise bad_request("The request has no `query`.")
        if not ad_hoc and (self.manifest is None or not self.manifest.trusts(data.query)):
            raise PersistedQueryError(
                "This gateway runs only its persisted documents: send the document's "
                "`documentId` (or `extensions.persistedQuery.sha256Hash`).",
                "PERSISTED_QUERY_NOT_IN_LIST",
                403,
            )
        return register

    async def register(self, digest: str, text: str) -> None:
        """Keep `text` (whose SHA-256 is `digest`) for the requests that send the hash alone."""
        if self.store is not None:
            await self.store.put(digest, text)

    async def _lookup(self, key: str, ad_hoc: bool) -> str:
        if self.manifest is not None:
            trusted = self.manifest.documents.get(key)
            if trusted is not None:
                return trusted
        if self.store is not None and ad_hoc and is_sha256(key):
            text = await self.store.get(key)
            if text is not None:
                return text
        if self.store is None and self.manifest is None:
            raise not_supported()
        raise not_found()


def requested_hash(persisted: object) -> str:
    """The lower-case hex hash of an `extensions.persistedQuery`, or BAD_REQUEST."""
    if not isinstance(persisted, dict):
        raise bad_request("`extensions.persistedQuery` must be an object {version, sha256Hash}.")
    version = persisted.get("version")
    if isinstance(version, bool) or version != 1:
        raise bad_request("Unsupported persisted query version: only version 1 is known.")
    digest = persisted.get("sha256Hash")
    if not isinstance(digest, str) or not is_sha256(digest):
        raise bad_request("`extensions.persistedQuery.sha256Hash` must be 64 hex digits.")
    return digest.lower()


async def document_ids(request: AsyncHTTPRequestAdapter) -> list[object]:
    """The `documentId` of each operation of the request (None where it has none), read
    again from the request: Strawberry keeps only the parameters that come with a text."""
    if request.method == "GET":
        return [request.query_params.get("documentId")]
    body = json.loads(await request.get_body())  # read and checked once already: cached
    items = body if isinstance(body, list) else [body]
    return [item.get("documentId") for item in items]


def with_document_id(item: GraphQLRequestData, document_id: object) -> GraphQLRequestData:
    """`item`, with the `documentId` it was sent with if any."""
    if document_id is None:
        return item
    return DocumentRequest(
        item.query, item.variables, item.operation_name, item.extensions, item.protocol, document_id
    )

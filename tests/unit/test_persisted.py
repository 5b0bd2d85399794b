"""How a request's document is found: its text, an APQ hash, a trusted document's id; and
what `persisted_only` refuses."""

from __future__ import annotations

from typing import Any

import pytest
from strawberry.http import GraphQLRequestData

from gateway.clients import Client
from gateway.manifest import Manifest, sha256_hex
from gateway.persisted import DocumentRequest, PersistedDocuments, PersistedQueryError
from gateway.query_store import QueryStore

TRUSTED = "query Trusted { __typename }"
OTHER = "query Other { __typename }"
MANIFEST = Manifest(
    documents={sha256_hex(TRUSTED): TRUSTED, "custom-1": OTHER},
    hashes=frozenset({sha256_hex(TRUSTED), sha256_hex(OTHER)}),
    names=frozenset({"Trusted", "Other"}),
)
AD_HOC = Client("tools", scopes=frozenset({"read", "ad_hoc"}))
READER = Client("web")


def apq_store() -> QueryStore:
    return QueryStore(max_entries=10, max_bytes=10_000, max_document=10_000)


def request(
    query: str | None = None, digest: str | None = None, version: Any = 1, **more: Any
) -> GraphQLRequestData:
    extensions = None
    if digest is not None:
        extensions = {"persistedQuery": {"version": version, "sha256Hash": digest}}
    return DocumentRequest(query, None, None, extensions, **more)


async def refused(
    documents: PersistedDocuments, data: GraphQLRequestData, client: Client | None = None
) -> PersistedQueryError:
    with pytest.raises(PersistedQueryError) as raised:
        await documents.resolve(data, client)
    return raised.value


async def test_a_text_alone_runs_as_sent() -> None:
    data = request(OTHER)
    assert await PersistedDocuments(store=apq_store()).resolve(data, None) is None
    assert data.query == OTHER


async def test_the_apq_round_trip_registers_the_text_and_then_runs_the_hash() -> None:
    documents = PersistedDocuments(store=apq_store())
    digest = sha256_hex(OTHER)
    error = await refused(documents, request(digest=digest))
    assert (error.message, error.code, error.status) == (
        "PersistedQueryNotFound",
        "PERSISTED_QUERY_NOT_FOUND",
        200,
    )
    assert await documents.resolve(request(OTHER, digest.upper()), None) == digest
    await documents.register(digest, OTHER)
    data = request(digest=digest)
    assert await documents.resolve(data, None) is None
    assert data.query == OTHER


async def test_a_hash_that_is_not_the_texts_is_refused() -> None:
    error = await refused(PersistedDocuments(store=apq_store()), request(OTHER, "0" * 64))
    assert (error.code, error.status) == ("PERSISTED_QUERY_HASH_MISMATCH", 400)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (request(digest=sha256_hex(OTHER), version=2), "Unsupported persisted query version"),
        (request(digest=sha256_hex(OTHER), version=True), "Unsupported persisted query version"),
        (request(digest="abc"), "must be 64 hex digits"),
        (DocumentRequest(None, None, None, {"persistedQuery": "x"}), "must be an object"),
        (request(), "has no `query`"),
        (request(OTHER, document_id="custom-1"), "not both"),
        (request(document_id=5), "`documentId` must be a non-empty string"),
    ],
)
async def test_malformed_persisted_requests_are_bad_requests(
    data: GraphQLRequestData, says: str
) -> None:
    error = await refused(PersistedDocuments(store=apq_store(), manifest=MANIFEST), data)
    assert (error.code, error.status) == ("BAD_REQUEST", 400)
    assert says in error.message


async def test_without_apq_or_a_manifest_a_hash_is_not_supported() -> None:
    error = await refused(PersistedDocuments(), request(digest=sha256_hex(OTHER)))
    assert (error.code, error.status) == ("PERSISTED_QUERY_NOT_SUPPORTED", 200)
    # The text and its hash still run; nothing is kept.
    assert await PersistedDocuments().resolve(request(OTHER, sha256_hex(OTHER)), None) is None


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (request(document_id=f"sha256:{sha256_hex(TRUSTED)}"), TRUSTED),
        (request(document_id=sha256_hex(TRUSTED)), TRUSTED),
        (request(document_id="custom-1"), OTHER),
        (request(digest=sha256_hex(TRUSTED)), TRUSTED),
    ],
)
async def test_trusted_documents_run_by_id_for_every_client(
    data: GraphQLRequestData, text: str
) -> None:
    documents = PersistedDocuments(manifest=MANIFEST, persisted_only=True)
    assert await documents.resolve(data, READER) is None
    assert data.query == text


async def test_persisted_only_refuses_other_texts_unless_the_client_may_send_them() -> None:
    documents = PersistedDocuments(manifest=MANIFEST, store=apq_store(), persisted_only=True)
    ad_hoc = "query AdHoc { __typename }"
    error = await refused(documents, request(ad_hoc), READER)
    assert (error.code, error.status) == ("PERSISTED_QUERY_NOT_IN_LIST", 403)
    await refused(documents, request(ad_hoc, sha256_hex(ad_hoc)), READER)
    assert await documents.resolve(request(TRUSTED), READER) is None  # the text of one
    assert await documents.resolve(request(ad_hoc), AD_HOC) is None
    assert await refused(documents, request(ad_hoc), None)  # an open gateway without GraphiQL


async def test_what_an_ad_hoc_client_registered_never_runs_for_another() -> None:
    documents = PersistedDocuments(manifest=MANIFEST, store=apq_store(), persisted_only=True)
    ad_hoc = "query AdHoc { __typename }"
    digest = sha256_hex(ad_hoc)
    assert await documents.resolve(request(ad_hoc, digest), AD_HOC) == digest
    await documents.register(digest, ad_hoc)
    assert await documents.resolve(request(digest=digest), AD_HOC) is None
    error = await refused(documents, request(digest=digest), READER)
    assert error.code == "PERSISTED_QUERY_NOT_FOUND"


async def test_the_open_gateways_client_may_send_any_document_while_graphiql_is_on() -> None:
    documents = PersistedDocuments(manifest=MANIFEST, persisted_only=True, open_ad_hoc=True)
    assert await documents.resolve(request(OTHER + " "), None) is None
    assert documents.ad_hoc(None)
    assert not documents.ad_hoc(READER)

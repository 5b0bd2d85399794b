"""Trusted document manifests: Apollo's and graphql-codegen's formats, checked at start-up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.configerrors import ConfigError
from gateway.manifest import Manifest, document_key, load_manifest, parse_manifest, sha256_hex
from schema import schema

LIST = 'query ListContacts { contacts(provider: "haste", first: 2) { totalCount } }'
NODE = "query Node($id: ID!) { node(id: $id) { id } }"
DELETE = 'mutation DeleteOne { deleteContact(input: { id: "x" }) { deletedId } }'


def apollo(*operations: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": list(operations),
    }


def entry(body: str, name: str, kind: str = "query", **changes: Any) -> dict[str, Any]:
    return {"id": sha256_hex(body), "name": name, "type": kind, "body": body, **changes}


def load(data: object) -> Manifest:
    return parse_manifest(data, "persisted_documents: ops.json", schema._schema)


def refusal(data: object) -> str:
    with pytest.raises(ConfigError) as raised:
        load(data)
    message = str(raised.value)
    assert message.startswith("persisted_documents: ops.json: ")
    return message


def test_an_apollo_manifest_gives_its_documents_by_id_hashes_and_names() -> None:
    manifest = load(apollo(entry(LIST, "ListContacts"), entry(DELETE, "DeleteOne", "mutation")))
    assert manifest.documents == {sha256_hex(LIST): LIST, sha256_hex(DELETE): DELETE}
    assert manifest.hashes == {sha256_hex(LIST), sha256_hex(DELETE)}
    assert manifest.names == {"ListContacts", "DeleteOne"}
    assert manifest.trusts(LIST)
    assert not manifest.trusts(LIST + " ")


def test_a_codegen_map_gives_its_documents_and_their_operation_names() -> None:
    manifest = load({sha256_hex(LIST): LIST, "custom-id-7": NODE})
    assert manifest.documents == {sha256_hex(LIST): LIST, "custom-id-7": NODE}
    assert manifest.names == {"ListContacts", "Node"}


def test_ids_are_looked_up_as_lower_case_hex_with_or_without_the_sha256_prefix() -> None:
    digest = sha256_hex(LIST)
    manifest = load({f"sha256:{digest.upper()}": LIST})
    assert manifest.documents == {digest: LIST}
    assert document_key(f"sha256:{digest}") == document_key(digest.upper()) == digest
    assert document_key("Relay-md5-id") == "Relay-md5-id"


def test_the_same_document_under_the_same_id_twice_is_one_document() -> None:
    manifest = load(apollo(entry(LIST, "ListContacts"), entry(LIST, "ListContacts")))
    assert len(manifest.documents) == 1


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ([LIST], "neither an Apollo persisted query manifest"),
        ({"abc": 5}, "neither an Apollo persisted query manifest"),
        ({"format": "relay", "version": 1, "operations": []}, "unknown format 'relay'"),
        ({**apollo(), "version": 2}, "unknown manifest version 2"),
        ({**apollo(), "operations": {}}, "`operations` must be a list"),
        ({**apollo(), "operations": ["query { x }"]}, "operations[0]: must be an object"),
        (apollo({**entry(LIST, "ListContacts"), "body": ""}), "`body` must be a non-empty"),
        (apollo(entry(LIST, "ListContacts", "fetch")), "`type` must be one of"),
        (apollo(entry(LIST, "Other")), "holds no query named 'Other'"),
        (apollo(entry(LIST, "ListContacts", "mutation")), "holds no mutation named"),
        ({sha256_hex(LIST): NODE}, "the id is not the SHA-256 of the document"),
        ({"a": "query {"}, "document 'a': does not parse"),
        ({"a": "fragment F on Contact { id }"}, "document 'a': holds no operation"),
        ({"a": "{ noSuchField }"}, "document 'a': invalid against the schema"),
    ],
)
def test_a_bad_manifest_stops_start_up_naming_the_file_and_what_is_wrong(
    data: object, says: str
) -> None:
    assert says in refusal(data)


def test_one_id_for_two_documents_is_refused() -> None:
    twice = apollo(entry(LIST, "ListContacts"), {**entry(NODE, "Node"), "id": "dup"})
    twice["operations"] = [{**twice["operations"][0], "id": "dup"}, twice["operations"][1]]
    assert "given to two different documents" in refusal(twice)


def test_a_file_that_is_missing_or_not_json_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(ConfigError, match=r"missing\.json: no such file"):
        load_manifest(missing)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ConfigError, match=r"broken\.json: not JSON"):
        load_manifest(broken)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(apollo(entry(LIST, "ListContacts"))))
    assert load_manifest(good, schema._schema).names == {"ListContacts"}

"""How the schema package is put together: global ids read back what the nodes write, the
schema reaches the data sources only through the resolvers, and no type check is waived."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strawberry.relay import GlobalID

from gateway.errors import BadUserInput
from gateway.records import CompanyRecord, ContactRecord, DealRecord, Entity, NoteRecord
from resolvers.globalids import TYPE_NAMES, node_key, parse_global_id
from schema import types as t
from tests.support.ids import gid

ROOT = Path(__file__).resolve().parents[2]

# Text as JSON decodes it from an API, less lone surrogates (UTF-8 cannot carry them).
providers = st.text(
    st.characters(blacklist_characters=":", blacklist_categories=["Cs"]), min_size=1, max_size=20
)
remote_ids = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=40)


@given(st.sampled_from(list(Entity)), providers, remote_ids)
def test_a_node_id_reads_back_as_its_entity_provider_and_remote_id(entity, provider, remote_id):
    written = str(GlobalID(TYPE_NAMES[entity], node_key(provider, remote_id)))
    assert written == gid(TYPE_NAMES[entity], provider, remote_id)
    assert parse_global_id(written, "id") == (entity, provider, remote_id)


@pytest.mark.parametrize(
    "value",
    ["not base64!", gid("Provider", "attio", "1"), gid("Contact", "", "1"), "Q29udGFjdDphdHRpbw=="],
)
def test_an_id_this_gateway_never_wrote_is_bad_user_input(value):
    with pytest.raises(BadUserInput):
        parse_global_id(value, "id")


@pytest.mark.parametrize(
    ("record_type", "node_type"),
    [
        (ContactRecord, t.Contact),
        (CompanyRecord, t.Company),
        (DealRecord, t.Deal),
        (NoteRecord, t.Note),
    ],
)
def test_every_record_becomes_its_node_type_keyed_by_provider_and_remote_id(record_type, node_type):
    record = record_type(provider="haste-a", remote_id="r:1")
    node = t.to_node(record)
    assert type(node) is node_type
    assert (node.key, node.provider, node.remote_id, node.record) == (
        "haste-a:r:1",
        "haste-a",
        "r:1",
        record,
    )


def _imports(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            modules |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
    return modules


def test_schema_modules_import_nothing_of_the_data_sources():
    offenders = {
        path.name: sorted(m for m in _imports(path) if m.startswith("gateway.datasources"))
        for path in (ROOT / "schema").glob("*.py")
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_links_does_not_import_the_types():
    # The types import links; the other way round would be a cycle again.
    assert not {m for m in _imports(ROOT / "schema" / "links.py") if m.startswith("schema")}


def test_no_type_check_is_waived_in_schema_resolvers_or_the_endpoint():
    files = [*(ROOT / "schema").glob("*.py"), *(ROOT / "resolvers").glob("*.py")]
    files.append(ROOT / "gateway" / "endpoint.py")
    waived = [p.name for p in files if "type: ignore" in p.read_text()]
    assert waived == []

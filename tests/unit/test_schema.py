"""The committed SDL is what `crm-gateway schema` prints; everything is documented."""

from __future__ import annotations

import difflib
from pathlib import Path

from graphql import GraphQLEnumType, GraphQLInputObjectType, GraphQLInterfaceType, GraphQLObjectType

from gateway.cli import main
from schema import schema

ROOT = Path(__file__).resolve().parents[2]


def test_schema_file_matches_the_cli_output(capsys):
    assert main(["schema"]) == 0
    printed = capsys.readouterr().out
    committed = (ROOT / "schema.graphql").read_text()
    diff = "\n".join(
        difflib.unified_diff(committed.splitlines(), printed.splitlines(), lineterm="")
    )
    assert printed == committed, f"schema.graphql drifted; run `make schema` and review:\n{diff}"


def test_every_type_and_field_has_a_description():
    missing = []
    for name, graphql_type in schema._schema.type_map.items():
        if name.startswith("__") or name in {"String", "Int", "Float", "Boolean", "ID"}:
            continue
        if not graphql_type.description:
            missing.append(name)
        if isinstance(
            graphql_type, (GraphQLObjectType, GraphQLInterfaceType, GraphQLInputObjectType)
        ):
            for field_name, field in graphql_type.fields.items():
                if not field.description:
                    missing.append(f"{name}.{field_name}")
                for arg_name, arg in getattr(field, "args", {}).items():
                    if not arg.description:
                        missing.append(f"{name}.{field_name}({arg_name})")
        if isinstance(graphql_type, GraphQLEnumType):
            missing += [
                f"{name}.{v}" for v, value in graphql_type.values.items() if not value.description
            ]
    assert missing == []

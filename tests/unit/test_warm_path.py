"""The warm path's shortcuts keep their answers: cached validation, ready lookups, cursors."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from graphql import parse
from strawberry.schema.schema import validate_document

import schema as schema_package
from gateway.errors import BadUserInput, NotFound, UpstreamUnavailable
from gateway.pagination.cursors import CursorCodec
from gateway.records import CompanyRecord, Entity
from resolvers.context import InputLimits
from resolvers.loaders import NOT_READY, Loaders
from schema import MAX_ALIASES, MAX_DEPTH, build_schema
from schema.bounds import check_arguments


def _deep(depth: int) -> str:
    inner = "name"
    for _ in range(depth):
        inner = f"company {{ contacts {{ edges {{ node {{ {inner} }} }} }} }}"
    return f'{{ contacts(provider: "p") {{ edges {{ node {{ {inner} }} }} }} }}'


async def test_limits_hold_every_time_a_query_is_sent() -> None:
    schema = build_schema()
    deep = _deep(MAX_DEPTH)
    aliases = "{ " + " ".join(f"a{i}: providers {{ name }}" for i in range(MAX_ALIASES + 1)) + " }"
    for _ in range(3):
        result = await schema.execute(deep)
        assert result.errors
        assert "exceeds maximum operation depth" in result.errors[0].message
        result = await schema.execute(aliases)
        assert result.errors
        assert "aliases found" in result.errors[0].message


async def test_a_query_text_is_validated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    schema = build_schema()
    calls: list[object] = []

    def counted(*args: Any) -> Any:
        calls.append(args)
        return validate_document(*args)

    monkeypatch.setattr(schema_package, "validate_document", counted)
    query = '{ contacts(provider: "p", first: 1) { edges { cursor } } } '  # unique text
    for _ in range(3):
        result = await schema.execute(query)
        assert result.errors  # no context: execution fails, validation passed
        assert "Cannot query" not in result.errors[0].message
    assert len(calls) == 1
    invalid = "{ providers { nope } }"
    for _ in range(2):
        result = await schema.execute(invalid)
        assert result.errors
        assert "Cannot query field 'nope'" in result.errors[0].message
    assert len(calls) == 2


def test_arguments_are_found_once_per_text() -> None:
    schema = build_schema()._schema
    query = 'query($f: Int) { contacts(provider: "p", first: $f) { edges { cursor } } }'
    check_arguments(schema, parse(query), None, {"f": 1}, InputLimits(), query)
    # Another document of the same text: the arguments found first are used, with new values.
    with pytest.raises(BadUserInput) as refused:
        check_arguments(
            schema, parse(query), None, {"f": 1}, InputLimits(max_string_length=0), query
        )
    assert refused.value.argument == "provider"


async def test_a_refused_document_stays_refused_without_validation() -> None:
    schema = build_schema()
    query = "{ " + "providers { name } " * 25 + "}"
    for _ in range(2):
        result = await schema.execute(query)
        assert result.errors
        assert "selected more than" in result.errors[0].message


class _Source:
    name = "p"

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers

    def valid_id(self, entity: Entity, remote_id: str) -> bool:
        return True

    async def get_many(self, entity: Entity, ids: list[str]) -> list[Any]:
        return [self.answers[i] for i in ids]


async def test_ready_answers_only_finished_lookups() -> None:
    company = CompanyRecord(provider="p", remote_id="1", name="Acme")
    source = _Source(
        {"1": company, "2": NotFound("gone"), "3": UpstreamUnavailable("down", provider="p")}
    )
    loaders = Loaders({"p": source}, batching=True)
    loader = loaders.record(source, Entity.COMPANY)  # type: ignore[arg-type]
    assert loaders.ready("p", Entity.COMPANY, "1") is NOT_READY
    pending = [loader.load(i) for i in ("1", "2", "3")]
    assert loaders.ready("p", Entity.COMPANY, "1") is NOT_READY  # asked, not answered yet
    for future in pending:
        with contextlib.suppress(UpstreamUnavailable):
            await future
    assert loaders.ready("p", Entity.COMPANY, "1") is company
    assert loaders.ready("p", Entity.COMPANY, "2") is None  # does not exist
    assert loaders.ready("p", Entity.COMPANY, "3") is NOT_READY  # the lookup reports it
    assert loaders.ready("other", Entity.COMPANY, "1") is NOT_READY


def test_remembered_cursors_are_the_ones_signed_afresh() -> None:
    codec, fresh = CursorCodec(b"k" * 32), CursorCodec(b"k" * 32)
    position = {"h": "list", "k": "42", "i": 3, "n": None, "z": True}
    first = codec.encode("binding", position)
    assert codec.encode("binding", dict(position)) == first == fresh.encode("binding", position)
    assert codec.decode(first, "binding", "after") == position
    assert codec.encode("other", position) != first
    assert CursorCodec(b"x" * 32).encode("binding", position) != first
    listed = {"h": ["not", "hashable"], "k": "1"}
    assert codec.decode(codec.encode("binding", listed), "binding", "after") == listed

"""The input walk against an oracle: refused exactly when some list, string or nesting is too big."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import GraphQLScalarType, parse
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import BadUserInput
from resolvers.context import InputLimits
from schema import schema
from schema.bounds import MAX_REPEATS, _Walk, repeated_field

LIMITS = InputLimits(
    max_list_length=3, max_string_length=4, max_input_depth=3, max_input_values=10**6
)


def _json_type() -> GraphQLScalarType:
    found = schema._schema.get_type("JSON")
    assert isinstance(found, GraphQLScalarType)
    return found


JSON = _json_type()

values = st.recursive(
    st.none() | st.integers() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=30,
)


def _too_big(value: Any, depth: int = 1) -> bool:
    if isinstance(value, str):
        return len(value) > LIMITS.max_string_length
    if isinstance(value, list | dict):
        if depth > LIMITS.max_input_depth or len(value) > LIMITS.max_list_length:
            return True
        items = list(value.values()) + list(value) if isinstance(value, dict) else value
        return any(_too_big(item, depth + 1) for item in items)
    return False


@given(values)
def test_json_input_is_refused_exactly_when_a_bound_is_exceeded(value: Any) -> None:
    if _too_big(value):
        with pytest.raises(BadUserInput) as refused:
            _Walk(LIMITS).value(value, JSON, "input.customFields", 1)
        assert refused.value.argument == "input.customFields"
    else:
        _Walk(LIMITS).value(value, JSON, "input.customFields", 1)


def test_total_values_are_counted_across_arguments() -> None:
    walk = _Walk(InputLimits(max_input_values=5))
    walk.value(["a", "b"], JSON, "a", 1)
    with pytest.raises(BadUserInput, match="more than 5 values"):
        walk.value(["c", "d"], JSON, "b", 1)


@pytest.mark.parametrize(
    ("document", "refused"),
    [
        ("{ " + "providers { name } " * MAX_REPEATS + "}", None),
        ("{ " + "providers { name } " * (MAX_REPEATS + 1) + "}", "providers"),
        ("{ " + "... on Query { providers { name } } " * (MAX_REPEATS + 1) + "}", "providers"),
        (
            "{ ...A ...B } fragment A on Query { "
            + "providers { name } " * MAX_REPEATS
            + "} fragment B on Query { providers { name } }",
            "providers",
        ),
        ("{ " + " ".join(f"p{i}: providers {{ name }}" for i in range(200)) + " }", None),
        ("{ ...A } fragment A on Query { ...A providers { name } }", None),
    ],
)
def test_repeated_response_names(document: str, refused: str | None) -> None:
    assert repeated_field(parse(document)) == refused

"""Filter constants folded once, before any data source: an `or` or `in` of nothing matches
nothing, an `and` of nothing everything, nested too; the simplified tree means the same as
the one the client sent, by a plain evaluation over every record of a small domain."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.listquery import NOTHING, All, AnyOf, Cond, Expr, ListQuery, simplify
from schema.filters import ContactFilter, StringFilter, list_query

VALUES = (0, 1, 2)
RECORDS = [dict(zip("ab", pair, strict=True)) for pair in itertools.product(VALUES, VALUES)]

leaves = st.builds(Cond, st.sampled_from("ab"), st.just("eq"), st.sampled_from(VALUES)) | st.builds(
    Cond, st.sampled_from("ab"), st.just("in"), st.lists(st.sampled_from(VALUES), max_size=2)
)
trees = st.recursive(
    leaves,
    lambda inner: (
        st.builds(All, st.tuples() | st.lists(inner, max_size=3).map(tuple))
        | st.builds(AnyOf, st.tuples() | st.lists(inner, max_size=3).map(tuple))
    ),
    max_leaves=8,
)


def plain(expr: Expr | None, record: dict[str, Any]) -> bool:
    """The filter's meaning, written out independently of the gateway's own evaluation."""
    if expr is None:
        return True
    if isinstance(expr, Cond):
        if expr.op == "in":
            return record[expr.field] in expr.value
        return bool(record[expr.field] == expr.value)
    results = [plain(part, record) for part in expr.parts]
    return all(results) if isinstance(expr, All) else any(results)


def constant_free(expr: Expr) -> bool:
    """No empty group or `in`, no one-part group, no group directly inside its own kind."""
    if isinstance(expr, Cond):
        return not (expr.op == "in" and not expr.value)
    return len(expr.parts) > 1 and all(
        not isinstance(part, type(expr)) and constant_free(part) for part in expr.parts
    )


@given(trees)
def test_simplifying_keeps_the_meaning_and_leaves_no_constant_inside(expr: Expr) -> None:
    simple = simplify(expr)
    assert [plain(simple, r) for r in RECORDS] == [plain(expr, r) for r in RECORDS]
    assert simple is None or simple == NOTHING or constant_free(simple)
    assert simplify(simple) == simple
    assert ListQuery(expr).filter == simple


A0 = Cond("a", "eq", 0)
B1 = Cond("b", "eq", 1)


@pytest.mark.parametrize(
    ("expr", "simple"),
    [
        (AnyOf(()), NOTHING),
        (All(()), None),
        (Cond("a", "in", []), NOTHING),
        (All((AnyOf(()),)), NOTHING),
        (AnyOf((All(()),)), None),
        (All((A0, AnyOf(()))), NOTHING),
        (AnyOf((A0, All(()))), None),
        (AnyOf((A0, Cond("b", "in", []))), A0),
        (All((A0, All(()), All((B1,)))), All((A0, B1))),
        (AnyOf((AnyOf((A0,)), AnyOf((B1, AnyOf(()))))), AnyOf((A0, B1))),
    ],
)
def test_the_cases_the_issue_names(expr: Expr, simple: Expr | None) -> None:
    assert simplify(expr) == simple


def test_the_schema_keeps_empty_groups_for_the_query_to_fold() -> None:
    """The GraphQL inputs reach the ListQuery with their empty lists: `or: []` is no longer
    dropped as if it were absent, and an empty object inside `or` still means everything."""
    contacts: Any = ContactFilter  # made by a decorator: mypy cannot see its fields
    turing = contacts(last_name=StringFilter(eq="Turing"))

    def query(**parts: Any) -> ListQuery:
        return list_query(contacts(**parts), None, "p")

    assert query(or_=[]).matches_nothing
    assert query(and_=[contacts(or_=[])]).matches_nothing
    assert query(or_=[contacts(and_=[])]).filter is None
    assert query(or_=[turing, contacts()]).filter is None
    assert query(last_name=StringFilter(in_=[])).matches_nothing
    assert query(or_=[turing, contacts(last_name=StringFilter(in_=[]))]).filter == Cond(
        "last_name", "eq", "Turing"
    )
    assert not ListQuery().matches_nothing

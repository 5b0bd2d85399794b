"""The cost estimate through the whole stack in process: never below what is really sent.

Generated operations (nested connections, fragments on concrete and abstract types, named
fragments, aliases, `nodes` with id lists, variables of every coercible kind, @skip and
@include, cursors, invalid windows) run cold and warm on a fresh stack; each answer's
estimate is checked against the requests the emulators counted. The ways past
`max_operation_cost` found before are refused outright.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from graphql import GraphQLObjectType
from hypothesis import given, settings
from hypothesis import strategies as st
from strawberry.types.field import StrawberryField

from gateway.datasources import source_class
from gateway.records import Entity
from schema import schema
from schema.cost import COST
from tests.support.kinds import ALL_KINDS
from tests.support.stack import Stack, running_stack

LISTS = {"Contact": "contacts", "Company": "companies", "Deal": "deals", "Note": "notes"}
# The relationship fields of each record type: name -> the type they lead to.
LINKS = {
    "Contact": {"company": "Company", "deals": "Deal", "notes": "Note"},
    "Company": {"contacts": "Contact", "deals": "Deal", "notes": "Note"},
    "Deal": {"company": "Company", "contacts": "Contact", "notes": "Note"},
    "Note": {"target": ""},
}
SCALARS = {
    "Contact": ["name", "title"],
    "Company": ["name", "domain"],
    "Deal": ["name", "stage"],
    "Note": ["title", "body"],
}
SIZES = [3, 10, 100, 0, 1, 25, -1]
LIMIT = 120  # above it an operation is refused and sends nothing: keeps examples quick


# --- what the generated operations may name ------------------------------------------


@dataclass(frozen=True)
class Table:
    """Global ids and root-list cursors of the in-process emulators' data (the same in
    every fresh stack: seeded data, one cursor secret)."""

    ids: list[str]
    cursors: dict[tuple[str, str], list[str]]


async def _table() -> Table:
    ids: list[str] = []
    cursors: dict[tuple[str, str], list[str]] = {}
    async with running_stack() as stack:
        for kind in ALL_KINDS:
            entities = source_class(kind).describe().entities
            for type_name, field_name in LISTS.items():
                if Entity(type_name.lower()) not in entities:
                    continue
                query = f'{{ l: {field_name}(provider: "{kind}", first: 40) '
                query += "{ edges { cursor node { id } } } }"
                edges = (await stack.data(query))["l"]["edges"]
                ids += [e["node"]["id"] for e in edges]
                cursors[kind, field_name] = [e["cursor"] for e in edges]
    return Table(ids, cursors)


@pytest.fixture(scope="module")
def table() -> Table:
    return asyncio.run(_table())


# --- generated operations ---------------------------------------------------------------


@dataclass
class Operation:
    """An operation as it is drawn: its text grows with the variables and fragments it
    declares."""

    draw: Any
    table: Table
    variables: dict[str, Any] = field(default_factory=dict)
    definitions: list[str] = field(default_factory=list)
    fragments: list[str] = field(default_factory=list)
    aliases: int = 0

    def variable(self, type_name: str, value: Any) -> str:
        name = f"v{len(self.definitions)}"
        self.definitions.append(f"${name}: {type_name}")
        self.variables[name] = value
        return f"${name}"

    def size(self, name: str) -> str:
        value = self.draw(st.sampled_from(SIZES))
        how = self.draw(st.sampled_from(["literal", "int", "float", "default"]))
        if how == "literal" or value < 0:
            return f"{name}: {value}"
        if how == "default":  # the variable's own default stands
            variable = f"v{len(self.definitions)}"
            self.definitions.append(f"${variable}: Int = {value}")
            return f"{name}: ${variable}"
        # JSON has no int: 10.0 is an Int all the same once GraphQL coerces it.
        return f"{name}: {self.variable('Int', float(value) if how == 'float' else value)}"

    def window(self, kind: str | None, entity_field: str) -> str:
        args = [self.size(self.draw(st.sampled_from(["first", "first", "last"])))]
        cursors = self.table.cursors.get((kind or "", entity_field)) or [
            c for cs in self.table.cursors.values() for c in cs
        ]
        if cursors and self.draw(st.booleans()):
            cursor = self.draw(st.sampled_from(cursors))
            args.append(f'after: "{cursor}"' if "first" in args[0] else f'before: "{cursor}"')
        return ", ".join(args)

    def wrap(self, type_name: str, inner: str) -> str:
        """`inner` (selected on a `type_name` object) as it is, or inside a fragment."""
        how = self.draw(st.sampled_from(["plain", "plain", "inline", "node", "record", "named"]))
        condition = {"inline": type_name, "node": "Node", "record": "Record"}.get(how)
        if condition is not None:
            return f"... on {condition} {{ ... on {type_name} {{ {inner} }} }}"
        if how == "named":
            name = f"F{len(self.fragments)}"
            on = self.draw(st.sampled_from([type_name, "Node", "Record"]))
            body = inner if on == type_name else f"... on {type_name} {{ {inner} }}"
            self.fragments.append(f"fragment {name} on {on} {{ {body} }}")
            return f"...{name}"
        return inner

    def directive(self) -> str:
        how = self.draw(st.sampled_from(["", "", "", "skip", "include"]))
        if not how:
            return ""
        value = self.draw(st.booleans())
        given = self.variable("Boolean!", value) if self.draw(st.booleans()) else str(value)
        return f" @{how}(if: {given.lower()})"

    def record(self, type_name: str, depth: int) -> str:
        """A selection on a record of `type_name`."""
        parts = ["id", self.draw(st.sampled_from(SCALARS[type_name]))]
        links = LINKS[type_name]
        names = self.draw(st.lists(st.sampled_from(sorted(links)), max_size=3)) if depth else []
        for name in names:
            self.aliases += 1
            alias = f"a{self.aliases}: "
            parts.append(alias + self.link(type_name, name, links[name], depth - 1))
        return self.wrap(type_name, " ".join(parts))

    def link(self, type_name: str, name: str, target: str, depth: int) -> str:
        if name == "target":
            inner = " ".join(
                f"... on {t} {{ {self.record(t, depth)} }}" for t in LINKS if t != "Note"
            )
            return f"target{self.directive()} {{ __typename {inner} }}"
        if name == "company":
            fields = self.draw(st.sampled_from(["id name", "id remoteId", None]))
            inner = fields if fields is not None else self.record("Company", depth)
            return f"company{self.directive()} {{ {inner} }}"
        window = self.window(None, LISTS[target])
        count = "totalCount " if self.draw(st.booleans()) else ""
        connection = f"{count}edges {{ cursor node {{ {self.record(target, depth)} }} }}"
        return f"{name}({window}){self.directive()} {{ {connection} }}"

    def root(self, index: int) -> str:
        how = self.draw(st.sampled_from(["list", "list", "nodes", "node"]))
        if how == "list":
            kind = self.draw(st.sampled_from(ALL_KINDS))
            type_name = self.draw(st.sampled_from(sorted(LISTS)))
            window = self.window(kind, LISTS[type_name])
            count = "totalCount " if self.draw(st.booleans()) else ""
            node = self.record(type_name, self.draw(st.integers(0, 2)))
            selection = f"{count}edges {{ cursor node {{ {node} }} }}"
            return f'r{index}: {LISTS[type_name]}(provider: "{kind}", {window}) {{ {selection} }}'
        depth = self.draw(st.integers(0, 2))
        inner = " ".join(f"... on {t} {{ {self.record(t, depth)} }}" for t in LISTS)
        if how == "node":
            given = self.draw(st.sampled_from(self.table.ids))
            return f'r{index}: node(id: "{given}") {{ id {inner} }}'
        ids = self.draw(st.lists(st.sampled_from([*self.table.ids, "bm9wZQ"]), max_size=70))
        return f"r{index}: nodes(ids: {self.variable('[ID!]!', ids)}) {{ id {inner} }}"

    def text(self, roots: list[str]) -> str:
        head = f"query({', '.join(self.definitions)})" if self.definitions else "query"
        return "\n".join([f"{head} {{ {' '.join(roots)} }}", *self.fragments])


@st.composite
def operations(draw: Any, table: Table) -> tuple[str, dict[str, Any]]:
    operation = Operation(draw, table)
    roots = [operation.root(i) for i in range(draw(st.integers(1, 3)))]
    return operation.text(roots), operation.variables


# --- measuring ----------------------------------------------------------------------------


async def sent(stack: Stack) -> int:
    counts = [(await c.get("/_emulator/stats")).json()["requests"] for c in stack.direct.values()]
    return sum(counts)


async def measured(stack: Stack, query: str, variables: dict[str, Any]) -> tuple[Any, int]:
    """The answer and the requests the emulators received while it ran."""
    before = await sent(stack)
    body = await stack.post(query, variables)
    return body, await sent(stack) - before


@settings(max_examples=30)
@given(data=st.data())
def test_the_estimate_is_never_below_what_is_sent(table: Table, data: st.DataObject) -> None:
    query, variables = data.draw(operations(table), label="operation")

    async def check() -> None:
        async with running_stack(max_operation_cost=LIMIT) as stack:
            for run in ("cold", "warm"):
                body, actual = await measured(stack, query, variables)
                cost = body["extensions"]["cost"]
                assert cost["actual"] == actual, (run, cost, actual)
                assert cost["estimated"] >= actual, (run, cost, body.get("errors"))
                if cost["estimated"] > LIMIT:
                    [error] = body["errors"]
                    assert error["extensions"]["code"] == "OPERATION_TOO_COSTLY"
                    assert actual == 0

    asyncio.run(check())


# --- the ways past the limit found before: each refused, nothing sent --------------------


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[Stack]:
    async with running_stack(max_operation_cost=50) as running:
        yield running


NESTED = "deals(first: 10) { edges { node { id } } } notes(first: 10) { edges { node { id } } }"


async def refused(stack: Stack, query: str, variables: dict[str, Any] | None = None) -> None:
    body, actual = await measured(stack, query, variables or {})
    assert actual == 0
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "OPERATION_TOO_COSTLY", error
    assert error["extensions"]["limit"] == 50
    estimated = error["extensions"]["estimated"]
    assert estimated > 50
    assert body["extensions"]["cost"] == {"estimated": estimated, "actual": 0}


def contacts(selection: str, first: str = "100", alias: str = "") -> str:
    """A hasteCRM contacts window (hasteCRM reads children per parent: nesting is dear)."""
    window = f'{alias}contacts(provider: "haste", first: {first})'
    return f"{window} {{ edges {{ node {{ {selection} }} }} }}"


async def test_the_plain_query_is_refused(stack: Stack) -> None:
    await refused(stack, "{ " + contacts(f"id {NESTED}") + " }")


@pytest.mark.parametrize("abstract", ["Node", "Record"])
async def test_connections_inside_an_abstract_fragment_are_counted(
    stack: Stack, abstract: str
) -> None:
    selection = f"... on {abstract} {{ ... on Contact {{ {NESTED} }} }}"
    await refused(stack, "{ " + contacts(selection) + " }")
    named = "{ " + contacts("...Linked") + " } "
    named += f"fragment Linked on {abstract} {{ ... on Contact {{ {NESTED} }} }}"
    await refused(stack, named)


async def test_nodes_count_what_each_record_asks(stack: Stack) -> None:
    listed = await stack.data("{ " + contacts("id", "61", "c: ") + " }")
    ids = [e["node"]["id"] for e in listed["c"]["edges"]]
    assert len(ids) == 61
    query = "query($ids: [ID!]!) { nodes(ids: $ids) { "
    query += f"... on Node {{ ... on Contact {{ {NESTED} }} }} }} }}"
    await refused(stack, query, {"ids": ids})


async def test_a_float_for_an_int_variable_is_coerced_not_free(stack: Stack) -> None:
    query = "query($f: Int) { " + contacts(f"id {NESTED}", "$f") + " }"
    await refused(stack, query, {"f": 100.0})


async def test_a_refused_sibling_leaves_the_others_counted(stack: Stack) -> None:
    selection = f"id {NESTED} bad: notes(first: -1) {{ edges {{ node {{ id }} }} }}"
    await refused(stack, "{ " + contacts(selection) + " }")
    # And at the root: a refused list costs nothing, the others what they cost.
    query = "{ " + contacts("id", "-1", "a: ") + contacts(f"id {NESTED}", "100", "b: ") + " }"
    await refused(stack, query)


async def test_each_alias_costs_on_its_own(stack: Stack) -> None:
    edges = (
        await stack.data('{ c: contacts(provider: "haste", first: 30) { edges { cursor } } }')
    )["c"]["edges"]
    aliases = " ".join(
        f'a{i}: contacts(provider: "haste", first: 100, after: "{edges[at]["cursor"]}") '
        "{ edges { node { ...Linked } } }"
        for i, at in enumerate((3, 10, 20))
    )
    query = f"{{ {aliases} }} fragment Linked on Record {{ ... on Contact {{ {NESTED} }} }}"
    await refused(stack, query)


async def test_an_estimator_failure_refuses_the_operation(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any) -> int:
        raise TypeError("a bug")

    monkeypatch.setattr(source_class("haste"), "estimate_list", broken)
    body, actual = await measured(
        stack, '{ contacts(provider: "haste", first: 1) { edges { cursor } } }', {}
    )
    assert actual == 0
    [error] = body["errors"]
    assert error["extensions"]["code"] == "OPERATION_TOO_COSTLY"
    assert error["extensions"].get("estimated") is None  # unknown, not 0
    assert body["extensions"]["cost"] == {"estimated": None, "actual": 0}
    assert "could not estimate" in error["message"]


# --- every field that may read upstream says what it costs --------------------------------

# Resolvers that send nothing of their own: their cost is their connection's or none.
FREE = {
    ("Query", "providers"),  # configuration only
    ("ContactConnection", "totalCount"),  # counted by the field that made the connection
    ("CompanyConnection", "totalCount"),
    ("DealConnection", "totalCount"),
    ("NoteConnection", "totalCount"),
}
# Built from the record itself.
FREE |= {(t, n) for t in LISTS for n in ("id", "customFields", "remoteData")}


def resolved_fields() -> Iterator[tuple[str, str, StrawberryField]]:
    graphql_schema = schema._schema
    for type_ in graphql_schema.type_map.values():
        if type_.name.startswith("__") or type_ is graphql_schema.mutation_type:
            continue  # a root mutation field costs its write, whatever it is
        if not isinstance(type_, GraphQLObjectType):
            continue  # an interface's fields resolve on the types implementing it
        for name, definition in getattr(type_, "fields", {}).items():
            made = (definition.extensions or {}).get("strawberry-definition")
            if isinstance(made, StrawberryField) and made.base_resolver is not None:
                yield type_.name, name, made


def test_every_resolver_declares_its_cost_or_is_known_free() -> None:
    undeclared = {
        (type_name, name)
        for type_name, name, made in resolved_fields()
        if COST not in made.metadata and (type_name, name) not in FREE
    }
    assert undeclared == set()


async def test_a_skipped_company_is_not_looked_up(stack: Stack) -> None:
    # The window's companies are looked up ahead of their fields only where execution
    # will resolve them: the estimate does not count a skipped field.
    query = (
        'query($no: Boolean! = true) { contacts(provider: "attio", first: 20) '
        "{ edges { node { id company @skip(if: $no) { name } } } } }"
    )
    body, actual = await measured(stack, query, {})
    assert "errors" not in body
    assert body["extensions"]["cost"]["estimated"] >= actual >= 1

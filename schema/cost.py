"""The cost of an operation in upstream requests: estimated before it runs, counted after.

Before execution (after the input bounds), the operation is prepared as graphql-core
prepares it to execute (`Executor.build`: the operation, its fragments, its variables
coerced to their types, defaults filled in) and walked with graphql-core's own field
collection, so the estimate sees the fields execution will resolve: fragments of every
kind (inline, named, on an interface or a union, nested), each alias on its own, @skip and
@include, and each field's arguments coerced as its resolver gets them. A selection on an
abstract type costs the sum over its possible types.

A field that reads upstream declares its cost where it is made (`declare`, in the field
factories of schema/query.py and schema/types.py); the cost asks the data source what the
read will send (`DataSource.estimate_*`: blocks not cached, id batches, per-parent reads)
and adds what the field's own selection costs on the records it returns. A field that
declares nothing costs what its selection costs. A root mutation field costs its write. A
subscription is estimated per event: what its root field's selection costs on one event
(schema/subscription.py declares the event's record), refused as a query would be.

Above `max_operation_cost` the operation is refused with OPERATION_TOO_COSTLY and nothing
is sent; so is an operation the estimator fails on (never taken as free). Every response
carries `extensions.cost {estimated, actual}`, `actual` being the requests the operation
really sent (counted by `gateway.metrics` for the operation).

The estimate is an upper bound of the plan under the assumptions the data sources state
(`gateway.datasources.estimates`: ASSUMED_CHILDREN, a parent's child list within one
page, links to records that exist); retries and query polls are not in it. A field whose
arguments its resolver refuses (a negative `first`) sends nothing and costs nothing; its
siblings cost the same.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    SelectionSetNode,
    get_named_type,
    is_abstract_type,
)
from graphql.execution import Executor
from graphql.execution.collect_fields import (
    FieldDetailsList,
    GroupedFieldSet,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import get_argument_values
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from gateway import metrics
from gateway.errors import GatewayError, OperationTooCostly
from gateway.operations import Op
from gateway.pagination.connection import ConnectionArgs, PageLimits, check_args
from gateway.records import Entity, Link
from resolvers.context import DataSource
from resolvers.globalids import TYPE_NAMES, parse_global_id
from resolvers.relations import KNOWN_FROM_ID
from schema.bounds import refused

log = logging.getLogger("gateway.cost")

COST = "gateway.cost"  # the key of a field's cost in its Strawberry metadata
CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
TARGETS = (Entity.CONTACT, Entity.COMPANY, Entity.DEAL)


@dataclass(frozen=True)
class At:
    """Where a selection is asked: the provider its records come from (None above any
    record) and how many objects of its type there are at most."""

    source: DataSource | None
    n: int


@dataclass(frozen=True)
class Asked:
    """One field as execution resolves it: its nodes (every occurrence under one response
    name), its arguments coerced, its type, and where it is asked."""

    plan: Plan
    details: FieldDetailsList
    args: dict[str, Any]
    type: GraphQLOutputType
    at: At

    def below(self, at: At, type_: GraphQLNamedType | None = None) -> int:
        """What the field's selection costs on `at`'s objects, as `type_` (default: its own
        type, every possible type of an abstract one)."""
        return self.plan.selection(type_ or get_named_type(self.type), self.details, at)

    def window(self) -> ConnectionArgs:
        """The connection's window, checked as its resolver checks it (GatewayError)."""
        args = ConnectionArgs(
            first=self.args.get("first"),
            after=self.args.get("after"),
            last=self.args.get("last"),
            before=self.args.get("before"),
        )
        return check_args(args, self.plan.limits)

    def filtered(self) -> bool:
        return self.args.get("filter") is not None or self.args.get("orderBy") is not None

    def names(self, type_: GraphQLNamedType | None = None) -> set[str]:
        """The names of the fields selected on the field's (concrete) type."""
        named = type_ or get_named_type(self.type)
        if not isinstance(named, GraphQLObjectType):
            return set()
        return {d[0].node.name.value for d in self.plan.collect(named, self.details).values()}


FieldCost = Callable[[Asked], int]


def declare(cost: FieldCost) -> dict[str, FieldCost]:
    """A field's Strawberry metadata saying what asking it costs."""
    return {COST: cost}


def _declared(definition: GraphQLField) -> FieldCost | None:
    field = (definition.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(field, StrawberryField):
        return None
    cost: FieldCost | None = field.metadata.get(COST)
    return cost


def size(args: ConnectionArgs) -> int:
    """How many records a window holds at most."""
    return args.first if args.first is not None else (args.last or 0)


class Plan:
    """One prepared operation, walked field by field as execution will resolve it."""

    def __init__(
        self,
        executor: Executor[Any],
        sources: Mapping[str, DataSource],
        limits: PageLimits,
        batching: bool,
        whole_max: int = 2000,
    ) -> None:
        self.executor = executor
        self.whole_max = whole_max
        self.schema: GraphQLSchema = executor.schema
        self.sources = sources
        self.limits = limits
        self.batching = batching

    def operation(self) -> int:
        operation = self.executor.operation
        root = self.schema.get_root_type(operation.operation)
        if root is None:
            return 0  # execution reports it
        grouped = collect_fields(
            self.schema,
            self.executor.fragments,
            self.executor.variable_values,
            root,
            operation,
        ).grouped_field_set
        top = At(None, 1)
        return sum(self.field(root, details, top) for details in grouped.values())

    def collect(self, type_: GraphQLObjectType, details: FieldDetailsList) -> GroupedFieldSet:
        return collect_subfields(
            self.schema,
            self.executor.fragments,
            self.executor.variable_values,
            self.executor.operation,
            type_,
            details,
        ).grouped_field_set

    def selection(self, type_: GraphQLNamedType, details: FieldDetailsList, at: At) -> int:
        if at.n <= 0:
            return 0
        if is_abstract_type(type_):
            # Which types the records will have is known only upstream: each may be any.
            possible = self.schema.get_possible_types(type_)
            return sum(self.selection(t, details, at) for t in possible)
        if not isinstance(type_, GraphQLObjectType):
            return 0
        return sum(self.field(type_, d, at) for d in self.collect(type_, details).values())

    def field(self, parent: GraphQLObjectType, details: FieldDetailsList, at: At) -> int:
        node = details[0].node
        definition = parent.fields.get(node.name.value)
        if definition is None:
            return 0  # __typename
        try:
            args = get_argument_values(
                definition,
                node,
                self.executor.variable_values,
                details[0].fragment_variable_values,
            )
        except GraphQLError:
            return 0  # execution fails the field with this error; its resolver never runs
        asked = Asked(self, details, args, definition.type, at)
        if parent is self.schema.mutation_type:
            return self.write(asked)
        cost = _declared(definition)
        return asked.below(at) if cost is None else cost(asked)

    # --- what the data sources send ----------------------------------------------------

    def lookups(self, source: DataSource, entity: Entity, n: int) -> int:
        if not self.batching:
            return n * source.estimate_lookup(entity, 1)
        return source.estimates.lookups(entity, n)

    # --- writes ------------------------------------------------------------------------

    def write(self, asked: Asked) -> int:
        name = asked.details[0].node.name.value
        raw = asked.args.get("input")
        data: dict[str, Any] = raw if isinstance(raw, dict) else {}
        items = 1
        if name.startswith("bulk"):
            listed = data.get("contacts") or data.get("ids") or []
            items = len(listed) if isinstance(listed, list) else 1
            cost = items
        elif name == "mergeContacts":
            losers = data.get("loserIds") or []
            cost = (len(losers) if isinstance(losers, list) else 1) + 1
        elif name.startswith("update"):
            cost = max((s.estimate_write(Op.UPDATE) for s in self.sources.values()), default=1)
        else:
            cost = 1
        # What the payload selects further (a contact's company...), by any provider.
        nested = (asked.below(At(source, items)) for source in self.sources.values())
        return cost + max(nested, default=0)


# --- the fields that read upstream (declared by the factories that make them) ------------


def linked(link: Link) -> FieldCost:
    """`Contact.deals`...: the children of every parent, then their fields."""

    def cost(asked: Asked) -> int:
        plan, source, n = asked.plan, asked.at.source, asked.at.n
        if source is None or link not in source.links:
            return 0  # UNSUPPORTED before anything is sent
        try:
            args = asked.window()
        except GatewayError:
            return 0  # refused by the resolver, nothing sent
        # The plan the resolver's `nested_window` takes, as its family costs it.
        read = source.estimate_nested(link, args, n, plan.batching)
        return read + asked.below(At(source, n * size(args)))

    return cost


def to_company(link: Link) -> FieldCost:
    """`Contact.company`, `Deal.company`: one company per record, looked up by id."""

    def cost(asked: Asked) -> int:
        plan, source, n = asked.plan, asked.at.source, asked.at.n
        if source is None or link not in source.links:
            return 0
        inline = source.inline_fields.get(link)
        if inline is not None and _answered_inline(asked, inline):
            return 0  # answered by what the API sent with the record
        return plan.lookups(source, Entity.COMPANY, n) + asked.below(At(source, n))

    return cost


def _answered_inline(asked: Asked, inline: frozenset[str]) -> bool:
    """Whether the fields asked of a to-one link are all among what the API sent inline,
    as `resolvers.relations.covered` decides (a directive makes it a lookup)."""
    fragments = asked.plan.executor.fragments
    seen: set[str] = set()
    if any(_directives(d.node.selection_set, fragments, seen) for d in asked.details):
        return False
    names = {CAMEL.sub("_", name).lower() for name in asked.names()}
    return names <= KNOWN_FROM_ID | inline


def _directives(
    selection_set: SelectionSetNode | None, fragments: Mapping[str, Any], seen: set[str]
) -> bool:
    """Whether a directive stands anywhere in `selection_set` (each fragment read once)."""
    for selection in selection_set.selections if selection_set is not None else ():
        if selection.directives:
            return True
        inner = None
        if isinstance(selection, InlineFragmentNode | FieldNode):
            inner = selection.selection_set
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in seen:
                seen.add(name)
                inner = fragments[name].definition.selection_set
        if _directives(inner, fragments, seen):
            return True
    return False


def note_target(asked: Asked) -> int:
    """`Note.target`: a lookup per note, of whichever type it points at."""
    plan, source, n = asked.plan, asked.at.source, asked.at.n
    if source is None or Link.NOTE_TARGET not in source.links:
        return 0
    cost = 0
    for entity in TARGETS:
        type_ = plan.schema.get_type(TYPE_NAMES[entity])
        assert type_ is not None
        cost += plan.lookups(source, entity, n) + asked.below(At(source, n), type_)
    return cost


def by_ids(asked: Asked) -> int:
    """`node(id:)` and `nodes(ids:)`: lookups batched per provider and entity."""
    plan = asked.plan
    given = asked.args["ids"] if "ids" in asked.args else [asked.args.get("id")]
    wanted: dict[tuple[str, Entity], list[str]] = {}
    for value in given or ():
        try:
            entity, provider, remote_id = parse_global_id(str(value), "ids")
        except GatewayError:
            continue  # that item fails alone, unsent
        wanted.setdefault((provider, entity), []).append(remote_id)
    cost = 0
    for (provider, entity), remote in wanted.items():
        source = plan.sources.get(provider)
        if source is None or entity not in source.entities:
            continue
        valid = [i for i in remote if source.valid_id(entity, i)]
        type_ = plan.schema.get_type(TYPE_NAMES[entity])
        assert type_ is not None
        # Each item resolves its own selection, a repeated id too.
        cost += plan.lookups(source, entity, len(set(valid)))
        cost += asked.below(At(source, len(valid)), type_)
    return cost


# --- the operation -----------------------------------------------------------------------


def estimate(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    sources: Mapping[str, DataSource],
    limits: PageLimits,
    *,
    batching: bool = True,
    whole_max: int = 2000,
) -> int:
    """The upstream requests the operation will send at most (nothing is sent)."""
    built = Executor.build(
        schema,
        document,
        raw_variable_values=dict(variables) if isinstance(variables, Mapping) else None,
        operation_name=operation_name,
    )
    if isinstance(built, list):
        return 0  # execution refuses it the same way, before any resolver runs
    return Plan(built, sources, limits, batching, whole_max).operation()


class OperationCost(SchemaExtension):
    """Refuses an operation estimated above `max_operation_cost`; reports estimate and
    actual cost in every response's `extensions.cost`. Runs after InputBounds."""

    def __init__(self) -> None:
        self.estimated: int | None = 0
        self.stats: metrics.OperationStats | None = None

    def on_operation(self) -> Iterator[None]:
        # The operation's counter, set by Observe (which runs first).
        self.stats = metrics.current()
        yield

    def on_execute(self) -> Iterator[None]:
        ec = self.execution_context
        context = ec.context
        gateway = getattr(context, "gateway", None)
        sources = getattr(context, "sources", None)
        if (
            ec.result is None
            and ec.graphql_document is not None
            and gateway is not None
            and sources is not None
        ):
            ec.result = self._check(gateway, sources)
        yield

    def _check(self, gateway: Any, sources: Mapping[str, DataSource]) -> Any:
        """None to run the operation, else the refusal to answer instead."""
        ec = self.execution_context
        assert ec.graphql_document is not None
        limit = gateway.max_operation_cost
        try:
            self.estimated = estimate(
                ec.schema._schema,
                ec.graphql_document,
                ec.operation_name,
                ec.variables,
                sources,
                gateway.limits,
                batching=gateway.batching,
                whole_max=gateway.merge_whole_max,
            )
        except Exception:
            # Free it is not: an operation whose cost is unknown is not run.
            log.exception("could not estimate the operation's cost")
            self.estimated = None
            return refused(
                OperationTooCostly(
                    "the gateway could not estimate how many upstream requests the operation "
                    "would send, so it was not run. Ask for fewer records or fewer nested "
                    "lists.",
                    estimated=None,
                    limit=limit,
                )
            )
        if self.estimated <= limit:
            return None
        return refused(
            OperationTooCostly(
                f"the operation would send about {self.estimated} upstream requests; "
                f"at most {limit} are allowed. Ask for fewer records or fewer nested lists.",
                estimated=self.estimated,
                limit=limit,
            )
        )

    def get_results(self) -> dict[str, Any]:
        stats = self.stats
        actual = stats.requests if stats is not None else 0
        return {"cost": {"estimated": self.estimated, "actual": actual}}

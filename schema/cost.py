"""The cost of an operation in upstream requests: estimated before it runs, counted after.

Before execution (after the input bounds), the operation's selection is walked
with its variables, and each read asks its data source what it will send
(`DataSource.estimate_*`: blocks not cached, id batches, per-parent reads).
Above `max_operation_cost` the operation is refused with OPERATION_TOO_COSTLY
and nothing is sent. Every response carries `extensions.cost {estimated,
actual}`, `actual` being the requests the operation really sent (counted by
`gateway.metrics` for the operation).

The estimate is an upper bound of the plan under the assumptions the data
sources state (`DataSource.ASSUMED_CHILDREN`, a parent's child list within
one page, links to records that exist); retries and query polls are not in it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Undefined,
    get_operation_ast,
    value_from_ast_untyped,
)
from strawberry.extensions import SchemaExtension

from gateway import metrics
from gateway.errors import GatewayError, OperationTooCostly
from gateway.operations import Op
from gateway.pagination import ConnectionArgs, PageLimits, check_args
from gateway.records import CHILD_ENTITY, Entity, Link
from resolvers.context import DataSource
from resolvers.globalids import TYPE_NAMES, parse_global_id
from resolvers.relations import KNOWN_FROM_ID
from schema.bounds import refused, variable_values

log = logging.getLogger("gateway.cost")

ROOT_LISTS = {
    "contacts": Entity.CONTACT,
    "companies": Entity.COMPANY,
    "deals": Entity.DEAL,
    "notes": Entity.NOTE,
}
# Fields of a mutation payload that hold a record (or several: bulk results).
PAYLOAD_RECORDS = {"contact": Entity.CONTACT, "company": Entity.COMPANY, "deal": Entity.DEAL}
PAYLOAD_RECORDS["note"] = Entity.NOTE


@dataclass
class _Walk:
    sources: Mapping[str, DataSource]
    limits: PageLimits
    batching: bool
    variables: dict[str, Any]
    fragments: dict[str, FragmentDefinitionNode]

    def fields(
        self, selection_set: SelectionSetNode | None, type_name: str | None
    ) -> list[FieldNode]:
        """The fields of a selection set on `type_name` (None: any), fragments flattened."""
        found: list[FieldNode] = []
        if selection_set is None:
            return found

        def applies(condition: Any) -> bool:
            return condition is None or type_name is None or condition.name.value == type_name

        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                found.append(selection)
            elif isinstance(selection, InlineFragmentNode):
                if applies(selection.type_condition):
                    found += self.fields(selection.selection_set, type_name)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None and applies(fragment.type_condition):
                    found += self.fields(fragment.selection_set, type_name)
        return found

    def args(self, node: FieldNode) -> dict[str, Any]:
        values = {
            a.name.value: value_from_ast_untyped(a.value, self.variables)
            for a in node.arguments or ()
        }
        return {k: None if v is Undefined else v for k, v in values.items()}

    def window(self, node: FieldNode) -> ConnectionArgs:
        given = self.args(node)
        args = ConnectionArgs(
            first=given.get("first"),
            after=given.get("after"),
            last=given.get("last"),
            before=given.get("before"),
        )
        return check_args(args, self.limits)

    def nodes_of(self, connection: FieldNode, type_name: str) -> list[FieldNode]:
        """The fields selected on a connection's nodes (`edges { node }` and `nodes`)."""
        found: list[FieldNode] = []
        for field in self.fields(connection.selection_set, None):
            if field.name.value == "edges":
                for inner in self.fields(field.selection_set, None):
                    if inner.name.value == "node":
                        found += self.fields(inner.selection_set, type_name)
            elif field.name.value == "nodes":
                found += self.fields(field.selection_set, type_name)
        return found

    def lookups(self, source: DataSource, entity: Entity, n: int) -> int:
        if not self.batching:
            return n * source.estimate_lookup(entity, 1)
        return source.estimate_lookups(entity, n)

    def children(self, source: DataSource, link: Link, n: int) -> int:
        if not self.batching:
            per = max(
                source.estimate_children(link, 1), self.lookups(source, CHILD_ENTITY[link], 0)
            )
            return n * per
        batches = sum(source.estimate_children(link, min(100, n - s)) for s in range(0, n, 100))
        if link not in source.inline_links:
            return batches
        # Parents that list their children's ids inline look the children up by id instead.
        inline = source.estimate_lookups(CHILD_ENTITY[link], n * source.ASSUMED_CHILDREN)
        return max(batches, inline)

    # --- reads -------------------------------------------------------------------------

    def root_list(self, node: FieldNode, entity: Entity) -> int:
        given = self.args(node)
        source = self.sources.get(str(given.get("provider")))
        if source is None or entity not in source.entities:
            return 0  # refused by the resolver, nothing sent
        args = self.window(node)
        filtered = bool(given.get("filter")) or bool(given.get("orderBy"))
        selected = self.fields(node.selection_set, None)
        count = any(f.name.value == "totalCount" for f in selected)
        cost = source.estimate_list(entity, args, filtered, count)
        n = args.first if args.first is not None else (args.last or 0)
        return cost + self.record(source, entity, self.nodes_of(node, TYPE_NAMES[entity]), n)

    def record(self, source: DataSource, entity: Entity, fields: list[FieldNode], n: int) -> int:
        """What the fields selected on `n` records of `entity` cost."""
        if n <= 0:
            return 0
        cost = 0
        for field in fields:
            name = field.name.value
            if field.selection_set is None:
                continue
            if name == "company" and entity in (Entity.CONTACT, Entity.DEAL):
                link = Link.CONTACT_COMPANY if entity is Entity.CONTACT else Link.DEAL_COMPANY
                cost += self.company(source, link, field, n)
            elif name == "target" and entity is Entity.NOTE:
                if Link.NOTE_TARGET in source.links:
                    for target in (Entity.CONTACT, Entity.COMPANY, Entity.DEAL):
                        sub = self.fields(field.selection_set, TYPE_NAMES[target])
                        cost += self.lookups(source, target, n)
                        cost += self.record(source, target, sub, n)
            elif name in ("contacts", "deals", "notes"):
                cost += self.linked(source, entity, field, n)
        return cost

    def company(self, source: DataSource, link: Link, field: FieldNode, n: int) -> int:
        if link not in source.links:
            return 0
        sub = self.fields(field.selection_set, "Company")
        names = {f.name.value for f in sub}
        inline = source.inline_fields.get(link)
        if inline is not None and names <= KNOWN_FROM_ID | inline | {"remoteId"}:
            return 0  # answered by what the API sent with the record
        # At most one distinct company per record.
        return self.lookups(source, Entity.COMPANY, n) + self.record(source, Entity.COMPANY, sub, n)

    def linked(self, source: DataSource, entity: Entity, field: FieldNode, n: int) -> int:
        try:
            link = Link(f"{TYPE_NAMES[entity]}.{field.name.value}")
        except ValueError:
            return 0
        if link not in source.links:
            return 0
        child = CHILD_ENTITY[link]
        args = self.window(field)
        size = args.first if args.first is not None else (args.last or 0)
        sub = self.nodes_of(field, TYPE_NAMES[child])
        return self.children(source, link, n) + self.record(source, child, sub, n * size)

    def by_ids(self, ids: list[Any], fields: list[FieldNode] | None, node: FieldNode) -> int:
        """node(id:) and nodes(ids:): lookups batched per provider and entity."""
        wanted: dict[tuple[str, Entity], set[str]] = {}
        for value in ids:
            try:
                entity, provider, remote_id = parse_global_id(str(value), "ids")
            except GatewayError:
                continue
            wanted.setdefault((provider, entity), set()).add(remote_id)
        cost = 0
        for (provider, entity), remote in wanted.items():
            source = self.sources.get(provider)
            if source is None or entity not in source.entities:
                continue
            n = len([i for i in remote if source.valid_id(entity, i)])
            sub = self.fields(node.selection_set, TYPE_NAMES[entity])
            cost += self.lookups(source, entity, n) + self.record(source, entity, sub, n)
        return cost

    # --- writes ------------------------------------------------------------------------

    def write(self, node: FieldNode) -> int:
        name = node.name.value
        given = self.args(node)
        raw = given.get("input")
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
        # Records the payload selects further (a contact's company...), by any provider.
        nested = 0
        for source in self.sources.values():
            total = 0
            for field in self._payload(node.selection_set):
                entity = PAYLOAD_RECORDS.get(field.name.value)
                if entity is None:
                    entity = PAYLOAD_RECORDS.get(field.name.value.removesuffix("s"))
                if entity is not None and entity in source.entities:
                    sub = self.fields(field.selection_set, TYPE_NAMES[entity])
                    total += self.record(source, entity, sub, items)
            nested = max(nested, total)
        return cost + nested

    def _payload(self, selection_set: SelectionSetNode | None) -> Iterator[FieldNode]:
        """Fields of a payload that hold records, through wrappers like `results`."""
        for field in self.fields(selection_set, None):
            if field.selection_set is None:
                continue
            yield field
            if field.name.value not in PAYLOAD_RECORDS:
                yield from self._payload(field.selection_set)

    # --- the operation -----------------------------------------------------------------

    def operation(self, operation: OperationDefinitionNode) -> int:
        cost = 0
        mutation = operation.operation.value == "mutation"
        for node in self.fields(operation.selection_set, None):
            with suppress(GatewayError):  # a bad argument: its resolver reports it, unsent
                cost += self.root(node, mutation)
        return cost

    def root(self, node: FieldNode, mutation: bool) -> int:
        name = node.name.value
        if mutation:
            return self.write(node)
        if name in ROOT_LISTS:
            return self.root_list(node, ROOT_LISTS[name])
        if name == "node":
            return self.by_ids([self.args(node).get("id")], None, node)
        if name == "nodes":
            ids = self.args(node).get("ids") or []
            return self.by_ids(ids if isinstance(ids, list) else [ids], None, node)
        return 0


def estimate(
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    sources: Mapping[str, DataSource],
    limits: PageLimits,
    *,
    batching: bool = True,
) -> int:
    """The upstream requests the operation will send at most (nothing is sent)."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return 0
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    values = variable_values(operation, variables)
    return _Walk(sources, limits, batching, values, fragments).operation(operation)


class OperationCost(SchemaExtension):
    """Refuses an operation estimated above `max_operation_cost`; reports estimate and
    actual cost in every response's `extensions.cost`. Runs after InputBounds."""

    def __init__(self) -> None:
        self.estimated = 0
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
            try:
                self.estimated = estimate(
                    ec.graphql_document,
                    ec.operation_name,
                    ec.variables,
                    sources,
                    gateway.limits,
                    batching=gateway.batching,
                )
            except Exception:
                self.estimated = 0
            limit = gateway.max_operation_cost
            if self.estimated > limit:
                error = OperationTooCostly(
                    f"the operation would send about {self.estimated} upstream requests; "
                    f"at most {limit} are allowed. Ask for fewer records or fewer nested lists.",
                    estimated=self.estimated,
                    limit=limit,
                )
                ec.result = refused(error)
        yield

    def get_results(self) -> dict[str, Any]:
        stats = self.stats
        actual = stats.requests if stats is not None else 0
        return {"cost": {"estimated": self.estimated, "actual": actual}}

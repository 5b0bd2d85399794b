"""Bounds on what one operation may ask, checked once per operation before it runs.

The token limit bounds the document only; variables carry the rest. Before
execution every argument of the operation is walked once, literals and
variables alike, against its input type: a list longer than `max_list_length`
(or a bulk or merge list above its own limit), a string longer than
`max_string_length`, nesting deeper than `max_input_depth` or more than
`max_input_values` values in all is BAD_USER_INPUT naming the argument's path
(`filter.email.in`). Nothing is sent upstream then.

Before validation, a selection set may not repeat one response name more than
MAX_REPEATS times (fragments included): graphql-core compares such fields pair
by pair, so a few kilobytes of `{ a {b} a {b} ... }` cost seconds of CPU.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import fields
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    get_operation_ast,
    value_from_ast_untyped,
    visit,
)
from graphql.language import ArgumentNode
from graphql.type import specified_scalar_types
from strawberry.extensions import SchemaExtension

from gateway.errors import BadUserInput, GatewayError
from gateway.settings import Settings
from resolvers.context import InputLimits
from schema.documents import DocumentCache, text_key

MAX_REPEATS = 20

# Lists with a limit of their own: (field, argument path) -> InputLimits attribute.
OWN_LIMITS = {
    ("bulkCreateContacts", "input.contacts"): "max_bulk_operations",
    ("bulkUpdateContacts", "input.contacts"): "max_bulk_operations",
    ("bulkDeleteContacts", "input.ids"): "max_bulk_operations",
    ("mergeContacts", "input.loserIds"): "max_merge_contacts",
}


def input_limits(settings: Settings) -> InputLimits:
    """The settings' input bounds: each limit is the setting of the same name."""
    return InputLimits(**{f.name: getattr(settings, f.name) for f in fields(InputLimits)})


class _Walk:
    """One operation's arguments, checked against the limits; raises BadUserInput."""

    def __init__(self, limits: InputLimits) -> None:
        self.limits = limits
        self.values = 0
        self.field = ""

    def argument(self, value: Any, type_: GraphQLInputType, name: str) -> None:
        self.value(value, type_, name, 1)

    def _count(self, path: str) -> None:
        self.values += 1
        if self.values > self.limits.max_input_values:
            raise BadUserInput(
                f"the operation's arguments hold more than {self.limits.max_input_values} "
                f"values (at `{path}`).",
                argument=path,
            )

    def _list(self, items: list[Any] | Mapping[str, Any], path: str, depth: int) -> None:
        if depth > self.limits.max_input_depth:
            raise BadUserInput(
                f"`{path}` is nested more than {self.limits.max_input_depth} levels deep.",
                argument=path,
            )
        own = OWN_LIMITS.get((self.field, path))
        cap = self.limits.max_list_length if own is None else getattr(self.limits, own)
        if len(items) > cap:
            raise BadUserInput(
                f"`{path}` holds {len(items)} items; at most {cap} are allowed.", argument=path
            )

    def _string(self, value: str, path: str) -> None:
        if len(value) > self.limits.max_string_length:
            raise BadUserInput(
                f"`{path}` is {len(value)} characters long; at most "
                f"{self.limits.max_string_length} are allowed.",
                argument=path,
            )

    def value(self, value: Any, type_: GraphQLInputType, path: str, depth: int) -> None:
        if isinstance(type_, GraphQLNonNull):
            type_ = type_.of_type
        if value is None:
            return
        self._count(path)
        if isinstance(type_, GraphQLList):
            if not isinstance(value, list):  # one value stands for a list of one
                self.value(value, type_.of_type, path, depth)
                return
            self._list(value, path, depth)
            for item in value:
                self.value(item, type_.of_type, path, depth + 1)
        elif isinstance(type_, GraphQLInputObjectType):
            if not isinstance(value, dict):
                return  # coercion refuses it
            self._list(value, path, depth)
            for name, item in value.items():
                field = type_.fields.get(name)
                if field is not None:
                    self.value(item, field.type, f"{path}.{name}", depth + 1)
        elif isinstance(value, str):
            self._string(value, path)
        elif isinstance(type_, GraphQLScalarType) and type_.name not in specified_scalar_types:
            self.json(value, path, depth)

    def json(self, value: Any, path: str, depth: int) -> None:
        """A custom scalar (JSON): any nesting of lists, objects and strings."""
        if isinstance(value, str):
            self._string(value, path)
        elif isinstance(value, list | dict):
            self._list(value, path, depth)
            for key, item in value.items() if isinstance(value, dict) else enumerate(value):
                if isinstance(key, str):
                    self._string(key, path)
                self._count(path)
                self.json(item, path, depth + 1)


class _Arguments(Visitor):
    """Collects each argument of the operation with its field and input type."""

    def __init__(self, type_info: TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info
        self.field = ""
        self.found: list[tuple[str, ArgumentNode, GraphQLInputType]] = []

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        self.field = node.name.value

    def enter_argument(self, node: ArgumentNode, *_: Any) -> None:
        definition = self.type_info.get_argument()
        if definition is not None:
            self.found.append((self.field, node, definition.type))


Arguments = tuple[tuple[str, ArgumentNode, GraphQLInputType], ...]


def _arguments(
    schema: GraphQLSchema, document: DocumentNode, operation_name: str | None
) -> tuple[OperationDefinitionNode, Arguments] | None:
    """The operation to run and its arguments (with their fields and types)."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return None  # graphql-core reports it
    type_info = TypeInfo(schema)
    arguments = _Arguments(type_info)
    visitor = TypeInfoVisitor(type_info, arguments)
    visit(operation, visitor)
    for fragment in document.definitions:
        if isinstance(fragment, FragmentDefinitionNode):
            visit(fragment, visitor)
    return operation, tuple(arguments.found)


# By query text: clients send the same few texts again and again, and only the variables'
# values change. (A document's own hash walks all of it.)
_found: DocumentCache[Any] = DocumentCache()


def variable_values(operation: OperationDefinitionNode, variables: Any) -> dict[str, Any]:
    """The operation's variables as given, or their defaults (left uncoerced)."""
    given = dict(variables) if isinstance(variables, Mapping) else {}
    values: dict[str, Any] = {}
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        if name in given:
            values[name] = given[name]
        elif definition.default_value is not None:
            values[name] = value_from_ast_untyped(definition.default_value)
    return values


def check_arguments(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Any,
    limits: InputLimits,
    query: str | None = None,
) -> None:
    """BadUserInput when an argument of the operation to run exceeds `limits`.

    `query`: the text `document` was parsed from, if any; its arguments are then found once.
    """
    key = (schema, text_key(query) if query is not None else None, operation_name)
    found = _found.get(key) if query is not None else None
    if found is None:
        found = _arguments(schema, document, operation_name)
        if query is not None:
            _found.put(key, found)
    if found is None:
        return
    operation, arguments = found
    values = variable_values(operation, variables)
    walk = _Walk(limits)
    for field, node, type_ in arguments:
        walk.field = field
        walk.argument(value_from_ast_untyped(node.value, values), type_, node.name.value)


def _selection_sets(node: Any) -> Iterator[SelectionSetNode]:
    stack = [node]
    while stack:
        current = stack.pop()
        selection_set = getattr(current, "selection_set", None)
        if selection_set is not None:
            yield selection_set
            stack.extend(selection_set.selections)


def repeated_field(document: DocumentNode) -> str | None:
    """A response name some selection set repeats more than MAX_REPEATS times, if any."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    names: dict[str, Counter[str]] = {}

    def count(selection_set: SelectionSetNode, seen: frozenset[str]) -> Counter[str]:
        total: Counter[str] = Counter()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total[(selection.alias or selection.name).value] += 1
            elif isinstance(selection, InlineFragmentNode):
                total.update(count(selection.selection_set, seen))
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is None or name in seen:
                    continue  # validation reports unknown fragments and cycles
                if name not in names:
                    names[name] = count(fragment.selection_set, seen | {name})
                total.update(names[name])
        return total

    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode | FragmentDefinitionNode):
            for selection_set in _selection_sets(definition):
                for name, times in count(selection_set, frozenset()).items():
                    if times > MAX_REPEATS:
                        return name
    return None


def refused(error: GatewayError) -> ExecutionResult:
    """The result an extension sets in place of execution's: nothing runs, nothing is sent."""
    return ExecutionResult(data=None, errors=[GraphQLError(error.message, original_error=error)])


class InputBounds(SchemaExtension):
    """Refuses oversized operations before they are validated or run."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        name = None if document is None else repeated_field(document)
        if name is not None:
            # Set before validation runs, so graphql-core skips its costly comparison.
            context.pre_execution_errors = [
                GraphQLError(
                    f"`{name}` is selected more than {MAX_REPEATS} times in one selection set.",
                    extensions={"code": "GRAPHQL_VALIDATION_FAILED"},
                )
            ]
        yield

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        gateway = getattr(context.context, "gateway", None)
        limits = getattr(gateway, "input_limits", None) or InputLimits()
        if context.graphql_document is not None:
            try:
                check_arguments(
                    context.schema._schema,
                    context.graphql_document,
                    context.operation_name,
                    context.variables,
                    limits,
                    context.query,
                )
            except BadUserInput as error:
                context.result = refused(error)
        yield

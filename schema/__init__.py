"""The GraphQL schema: unified CRM types over every configured provider."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from typing import Any

import strawberry
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxTokensLimiter,
    SchemaExtension,
    max_aliases,
    query_depth_limiter,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES, validate_document
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from gateway.errors import GatewayError
from schema import types
from schema.bounds import InputBounds
from schema.cost import OperationCost
from schema.documents import DocumentCache, ParsedDocuments, text_key
from schema.mutation import Mutation
from schema.observe import Observe
from schema.query import Query
from schema.stale import StaleMarker
from schema.subscription import RefusedSubscriptions, Subscription

log = logging.getLogger("gateway.errors")

MAX_DEPTH = 12
MAX_ALIASES = 50
MAX_TOKENS = 5000

# graphql-core ends a message with its guesses ("Did you mean 'name'?") for unknown fields,
# arguments, types, enum values and input fields; each guess leaks part of the schema.
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def _classify(error: GraphQLError) -> None:
    """Give every error an `extensions.code`; mask what the client must not see."""
    original = error.original_error
    if isinstance(original, GatewayError):
        error.extensions = {**(error.extensions or {}), **original.extensions}
        return
    if original is None or isinstance(original, GraphQLError):
        extensions = dict(error.extensions or {})
        if isinstance(error, GraphQLSyntaxError):
            extensions.setdefault("code", "GRAPHQL_PARSE_FAILED")
        elif error.message.startswith("Variable '$"):
            extensions.setdefault("code", "BAD_USER_INPUT")
        else:
            extensions.setdefault("code", "GRAPHQL_VALIDATION_FAILED")
        error.extensions = extensions
        return
    # Anything else is a bug of ours: log it whole, tell the client little.
    log.error("unexpected error at %s", error.path, exc_info=original)
    error.message = "Internal server error."
    error.extensions = {"code": "INTERNAL_SERVER_ERROR"}
    error.original_error = None


class GatewaySchema(strawberry.Schema):
    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """Strawberry's, never for a subscription: that streams (`stream`), and run as a
        query it would only fail. It is refused as an invalid operation type instead."""
        allowed = set(allowed_operation_types or DEFAULT_ALLOWED_OPERATION_TYPES)
        return await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed - {OperationType.SUBSCRIPTION},
            operation_extensions,
        )

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            if self.config.disable_field_suggestions:
                error.message = _SUGGESTION.sub("", error.message)
            _classify(error)
            if error.extensions and error.extensions.get("code") != "INTERNAL_SERVER_ERROR":
                log.info("%s: %s", error.extensions.get("code"), error.message)


class Limits(AddValidationRules):
    """Depth and alias limits, as validation rules built once: Strawberry's own limiter
    extensions build a new rule class per request, which no validation cache can key on."""

    RULES = (
        query_depth_limiter.create_validator(MAX_DEPTH, None),
        max_aliases.create_validator(MAX_ALIASES),
    )

    def __init__(self) -> None:
        super().__init__(list(self.RULES))


# By schema, query text and rules: the text's digest is quick, a document's hash walks all of it.
_validated: DocumentCache[list[GraphQLError]] = DocumentCache()


class CachedValidation(SchemaExtension):
    """Validates a document once per set of rules and reuses the errors (usually none).

    Must come after every extension that adds rules or refuses a document first
    (InputBounds): a verdict already set is left alone.
    """

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document, query = context.graphql_document, context.query
        if context.pre_execution_errors is None and document is not None and query is not None:
            schema = context.schema._schema
            key = (schema, text_key(query), context.validation_rules)
            errors = _validated.get(key)
            if errors is None:
                errors = validate_document(schema, document, context.validation_rules)
                _validated.put(key, errors)
            context.pre_execution_errors = list(errors)
        yield


def build_schema(
    *, introspection: bool = True, field_suggestions: bool = True, max_batch: int = 0
) -> strawberry.Schema:
    """The schema, with limits that keep one bad query from knocking the gateway over.

    `introspection` and `field_suggestions` off hide the schema from clients that were not
    given it (a deployment's default); the printed SDL is the same either way. `max_batch`:
    the most operations a batched request may hold (0: none; the endpoint runs them).
    """
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[types.Contact, types.Company, types.Deal, types.Note],
        extensions=[
            Observe,
            lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
            ParsedDocuments,
            Limits,
            InputBounds,
            OperationCost,
            RefusedSubscriptions,
            StaleMarker,
            *([] if introspection else [DisableIntrospection]),
            CachedValidation,
        ],
        config=StrawberryConfig(
            disable_field_suggestions=not field_suggestions,
            batching_config={"max_operations": max_batch} if max_batch else None,
        ),
    )


schema = build_schema()

__all__ = ["build_schema", "schema"]

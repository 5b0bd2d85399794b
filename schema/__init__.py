"""The GraphQL schema: unified CRM types over every configured provider."""

from __future__ import annotations

import logging

import strawberry
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.types import ExecutionContext

from gateway.errors import GatewayError
from schema import types
from schema.bounds import InputBounds
from schema.mutation import Mutation
from schema.query import Query

log = logging.getLogger("gateway.errors")

MAX_DEPTH = 12
MAX_ALIASES = 50
MAX_TOKENS = 5000


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
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            _classify(error)
            if error.extensions and error.extensions.get("code") != "INTERNAL_SERVER_ERROR":
                log.info("%s: %s", error.extensions.get("code"), error.message)


def build_schema() -> strawberry.Schema:
    """The schema, with limits that keep one bad query from knocking the gateway over."""
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        types=[types.Contact, types.Company, types.Deal, types.Note],
        extensions=[
            lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
            lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
            lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
            InputBounds,
        ],
    )


schema = build_schema()

__all__ = ["build_schema", "schema"]

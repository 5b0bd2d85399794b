"""The root Subscription type: `recordChanged`, one event per change to a record."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import AsyncIterator, Iterator
from typing import Annotated

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.relay import GlobalID
from strawberry.types.graphql import OperationType

import schema.cost as cost
import schema.types as t
from gateway.live import changes as live
from gateway.records import Entity
from resolvers.context import Context, Info
from resolvers.globalids import TYPE_NAMES, node_key
from resolvers.subscriptions import ChangeStream, changed_record, wanted


@strawberry.enum(description="The record types of the unified model.")
class RecordType(enum.Enum):
    CONTACT = strawberry.enum_value("contact", description="People.")
    COMPANY = strawberry.enum_value("company", description="Organisations.")
    DEAL = strawberry.enum_value("deal", description="Sales opportunities.")
    NOTE = strawberry.enum_value("note", description="Notes attached to a record.")


@strawberry.enum(name="ChangeKind", description="What happened to a record.")
class Kind(enum.Enum):
    CREATED = strawberry.enum_value("created", description="It was created.")
    UPDATED = strawberry.enum_value("updated", description="Some of its fields changed.")
    DELETED = strawberry.enum_value("deleted", description="It was deleted.")
    MERGED = strawberry.enum_value(
        "merged",
        description="Duplicates were merged into it (where the provider says which, each "
        "arrives as DELETED).",
    )


@strawberry.enum(name="ChangeSource", description="How the gateway learnt of a change.")
class Source(enum.Enum):
    WEBHOOK = strawberry.enum_value("webhook", description="The provider's webhook.")
    POLL = strawberry.enum_value("poll", description="Polling the provider for changes.")
    GATEWAY = strawberry.enum_value("gateway", description="A write through this gateway.")


def _record_cost(asked: cost.Asked) -> int:
    """One event's record: a lookup by id in whichever provider and type it is, and the
    fields selected on it; the dearest of them (an estimate is per event)."""
    plan = asked.plan
    dearest = 0
    for source in plan.sources.values():
        for entity in source.entities:
            type_ = plan.schema.get_type(TYPE_NAMES[entity])
            assert type_ is not None
            read = plan.lookups(source, entity, 1) + asked.below(cost.At(source, 1), type_)
            dearest = max(dearest, read)
    return dearest


def _event_cost(asked: cost.Asked) -> int:
    """What one event's selection costs: a subscription is estimated per event."""
    return asked.below(asked.at)


@strawberry.type(description="One change to one record, as it happened.")
class RecordChange:
    provider: str = strawberry.field(description="The provider instance holding the record.")
    kind: Kind = strawberry.field(description="What happened to it.")
    id: strawberry.ID = strawberry.field(
        description="The record's global id, as `node(id:)` takes it."
    )
    type: RecordType = strawberry.field(description="The record's type.")
    source: Source = strawberry.field(description="How the gateway learnt of it.")
    at: dt.datetime = strawberry.field(description="When the gateway learnt of it.")
    change: strawberry.Private[live.RecordChange]

    @strawberry.field(
        description="The record as it is now, read when the event is sent (through the "
        "cache and the provider's budget, only when selected); null once deleted.",
        metadata=cost.declare(_record_cost),
    )
    async def record(self, info: Info) -> t.Record | None:
        found = await changed_record(info.context, self.change)
        return None if found is None else t.to_node(found)


def event(change: live.RecordChange) -> RecordChange:
    """The GraphQL event of a change."""
    global_id = GlobalID(TYPE_NAMES[change.entity], node_key(change.provider, change.id))
    return RecordChange(
        provider=change.provider,
        kind=Kind[change.kind.name],
        id=strawberry.ID(str(global_id)),
        type=RecordType(change.entity.value),
        source=Source[change.source.name],
        at=change.at,
        change=change,
    )


Provider = Annotated[
    str | None,
    strawberry.argument(
        description="Only changes of this provider instance (or give `providers`)."
    ),
]
Providers = Annotated[
    list[str] | None,
    strawberry.argument(
        description="Only changes of these providers. Neither this nor `provider`: every "
        "provider the client may use."
    ),
]
Types = Annotated[
    list[RecordType] | None,
    strawberry.argument(description="Only changes to records of these types (default: all)."),
]


@strawberry.type(description="Live events from every configured provider.")
class Subscription:
    @strawberry.subscription(
        description="Each change to a record of the providers (webhooks, polling, and writes "
        "through the gateway), until the client stops it or its token expires.",
        metadata=cost.declare(_event_cost),
    )
    async def record_changed(
        self,
        info: Info,
        provider: Provider = None,
        providers: Providers = None,
        types: Types = None,
    ) -> AsyncIterator[RecordChange]:
        context = info.context
        if context.refusal is not None:
            raise context.refusal
        entities = None if types is None else [Entity[each.name] for each in types]
        return ChangeStream(context, wanted(context, provider, providers, entities), event)


class RefusedSubscriptions(SchemaExtension):
    """InputBounds and OperationCost refuse an operation by setting its result, which
    Strawberry heeds for queries and mutations only: a subscription's resolver raises the
    refusal instead, so nothing is streamed. Runs after both."""

    def on_execute(self) -> Iterator[None]:
        ec = self.execution_context
        refused = ec.result.errors if ec.result is not None else None
        if refused and isinstance(ec.context, Context) and _subscribing(ec.operation_type):
            first: GraphQLError = refused[0]
            ec.context.refusal = first.original_error or first
        yield


def _subscribing(operation_type: OperationType) -> bool:
    return operation_type is OperationType.SUBSCRIPTION

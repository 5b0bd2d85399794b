"""Writes through the gateway: check the input, send it once, say what happened.

Invalid input (unknown to the provider, a bad reference, or refused by the
provider as invalid) comes back as `userErrors`, field path and message.
A failed upstream call is a GraphQL error whose `extensions.writeOutcome`
tells the client whether it is safe to send again: NOT_APPLIED when the
provider surely did nothing (it refused, or the request never left),
UNKNOWN when it may have (a timeout or a 5xx after sending).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from gateway.datasources import DataSource
from gateway.errors import (
    BadUserInput,
    GatewayError,
    InvalidInput,
    NotFound,
    Unsupported,
    UpstreamError,
)
from gateway.live.changes import ChangeKind
from gateway.operations import Op
from gateway.records import AnyRecord, Entity
from resolvers.context import Context
from resolvers.globalids import parse_global_id
from resolvers.written import announce

Problem = tuple[list[str], str]
# Unified field name -> its GraphQL input name, for userErrors paths.
INPUT_NAMES = {
    "first_name": "firstName",
    "last_name": "lastName",
    "company_id": "companyId",
    "contact_ids": "contactIds",
    "custom_fields": "customFields",
    "close_date": "closeDate",
    "target": "targetId",
}
REFERENCES = {
    "company_id": (Entity.COMPANY,),
    "target": (Entity.CONTACT, Entity.COMPANY, Entity.DEAL),
}


audit_log = logging.getLogger("gateway.audit")


@dataclass
class Outcome:
    record: AnyRecord | None = None
    deleted_id: str | None = None
    problems: list[Problem] = field(default_factory=list)


@dataclass
class Audit:
    """What one write did, for its audit line: never field values, never credentials."""

    operation: str
    provider: str | None = None
    ids: list[str] = field(default_factory=list)  # remote ids, of the provider
    outcome: str = "ok"  # ok, userErrors, or the error code

    def done(self, problems: list[Problem], record: AnyRecord | None = None) -> None:
        if record is not None and record.remote_id not in self.ids:
            self.ids.append(record.remote_id)
        if problems:
            self.outcome = "userErrors"


@asynccontextmanager
async def _audited(context: Context, operation: str) -> AsyncIterator[Audit]:
    """Refuses a client without the `write` scope, then logs one line however it ends."""
    entry = Audit(operation)
    write_outcome = None
    try:
        context.require_write()
        yield entry
    except GatewayError as error:
        entry.outcome = error.code
        write_outcome = error.extensions.get("writeOutcome")
        raise
    except asyncio.CancelledError:
        entry.outcome, write_outcome = "CANCELLED", "UNKNOWN"
        raise
    except Exception:
        entry.outcome, write_outcome = "INTERNAL_SERVER_ERROR", "UNKNOWN"
        raise
    finally:
        line: dict[str, Any] = {
            "client": None if context.client is None else context.client.name,
            "provider": entry.provider,
            "operation": entry.operation,
            "ids": entry.ids,
            "outcome": entry.outcome,
        }
        if write_outcome is not None:
            line["writeOutcome"] = write_outcome
        # JSON keeps it one line whatever an id holds; `audit` serves structured handlers.
        audit_log.info("write %s", json.dumps(line), extra={"audit": line})


def _path(name: str) -> list[str]:
    return ["input", INPUT_NAMES.get(name, name)]


# Every provider carries an amount as a JSON number (a double), which holds any decimal of
# at most 15 digits exactly; more would be rounded, or overflow to infinity, on the way.
AMOUNT_DIGITS = 15


def _amount(source: DataSource, text: str) -> str | None:
    """What is wrong with a deal amount for `source` (None: nothing). Amounts travel as
    decimal strings so that no float rounding creeps in before this check."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        return 'must be a decimal number, e.g. "1250.50".'
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite
    while len(digits) > 1 and digits[-1] == 0:  # trailing zeros say nothing
        digits, exponent = digits[:-1], exponent + 1
    places = max(0, -exponent)
    if max(0, len(digits) + exponent) + places > AMOUNT_DIGITS:
        return f"must have at most {AMOUNT_DIGITS} digits in all (what every provider carries)."
    if source.amount_places is not None and places > source.amount_places:
        return f"{source.label} takes at most {source.amount_places} decimal places."
    return None


def _finite(value: Any) -> bool:
    """Whether a JSON value holds no infinity or NaN (JSON has none; a request may parse so)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


def _checked(source: DataSource, name: str, value: Any) -> str | None:
    """What is wrong with a value a provider would be sent (None: nothing)."""
    if name == "amount" and value is not None:
        return _amount(source, value)
    if not _finite(value):
        return "must hold finite numbers only."
    return None


def _values(
    source: DataSource, entity: Entity, raw: dict[str, Any], problems: list[Problem]
) -> dict[str, Any]:
    """Unified values for the data source: known fields only, checked, references resolved."""
    allowed = source.write_fields.get(entity, frozenset())
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in allowed:
            problems.append(
                (
                    _path(name),
                    f"{source.label} has no writable "
                    f"{INPUT_NAMES.get(name, name)} on {entity.plural}.",
                )
            )
            continue
        wrong = _checked(source, name, value)
        if wrong is not None:
            problems.append((_path(name), wrong))
            continue
        kinds = REFERENCES.get(name)
        if kinds is None or value is None:
            values[name] = value
            continue
        try:
            target, provider, remote_id = parse_global_id(str(value), INPUT_NAMES[name])
        except BadUserInput as error:
            problems.append((_path(name), error.message))
            continue
        if target not in kinds or provider != source.name or not source.valid_id(target, remote_id):
            problems.append(
                (
                    _path(name),
                    f"must be the id of a {' or '.join(k.value for k in kinds)} "
                    f"of provider {source.name!r}.",
                )
            )
            continue
        values[name] = (target, remote_id) if name == "target" else remote_id
    return values


async def _send(context: Context, source: DataSource, call: Any) -> Any:
    if context.expired():
        call.close()  # never started: surely not applied
        error = context.timeout(source.name)
        error.add(writeOutcome="NOT_APPLIED")
        raise error
    try:
        # Cut at the deadline, a write may or may not have reached the provider: UNKNOWN.
        return await context.before_deadline(source.name, call)
    except UpstreamError as error:
        error.add(writeOutcome="NOT_APPLIED" if error.not_applied else "UNKNOWN")
        raise


def _problems(error: InvalidInput | NotFound, missing: tuple[str, ...]) -> list[Problem]:
    """A refusal the client can correct, as userErrors: the provider's own field paths, or
    the record not found at `missing`."""
    if isinstance(error, InvalidInput):
        return [(["input", *path], message) for path, message in error.problems]
    return [(list(missing), error.message)]


async def _write(
    context: Context,
    source: DataSource,
    call: Any,
    outcome: Outcome,
    missing: tuple[str, ...] | None = ("input", "id"),
) -> Any:
    """The write's result, or None with `outcome.problems` set (`missing` None: a record
    not found is an error, not a problem)."""
    try:
        return await _send(context, source, call)
    except (InvalidInput, NotFound) as error:
        if missing is None and isinstance(error, NotFound):
            raise
        outcome.problems = _problems(error, missing or ())
    return None


def _name(op: str, entity: Entity, plural: bool = False) -> str:
    """The mutation's GraphQL name: createContact, bulkDeleteContacts..."""
    noun = {Entity.COMPANY: "Companies"}.get(entity, f"{entity.value.title()}s")
    return f"{op}{noun}" if plural else f"{op}{entity.value.title()}"


async def create(context: Context, entity: Entity, provider: str, raw: dict[str, Any]) -> Outcome:
    async with _audited(context, _name("create", entity)) as audit:
        source = context.source(provider)
        audit.provider = source.name
        source.require_write(entity, Op.CREATE)
        outcome = Outcome()
        values = _values(source, entity, raw, outcome.problems)
        if not outcome.problems:
            call = source.create(entity, values)
            outcome.record = await _write(context, source, call, outcome, missing=None)
        if outcome.record is not None:
            context.loaders.prime([outcome.record])
            announce(context, source.name, entity, ChangeKind.CREATED, outcome.record.remote_id)
        audit.done(outcome.problems, outcome.record)
        return outcome


def _target(context: Context, entity: Entity, global_id: str) -> tuple[DataSource, str]:
    found, provider, remote_id = parse_global_id(global_id, "id")
    if found is not entity:
        raise BadUserInput(f"`id` is not the id of a {entity.value}.", argument="id")
    return context.source(provider), remote_id


def _existing(
    context: Context, audit: Audit, entity: Entity, op: Op, global_id: str
) -> tuple[DataSource, str]:
    """The provider and remote id of the record an update or delete changes: refused before
    any request when the provider cannot `op` its `entity`s or the id cannot be one."""
    source, remote_id = _target(context, entity, global_id)
    audit.provider = source.name
    source.require_write(entity, op)
    source.require_id(entity, remote_id)
    audit.ids.append(remote_id)
    return source, remote_id


async def update(context: Context, entity: Entity, global_id: str, raw: dict[str, Any]) -> Outcome:
    async with _audited(context, _name("update", entity)) as audit:
        source, remote_id = _existing(context, audit, entity, Op.UPDATE, global_id)
        outcome = Outcome()
        values = _values(source, entity, raw, outcome.problems)
        if not values and not outcome.problems:
            outcome.problems.append((["input"], "nothing to update: give at least one field."))
        if not outcome.problems:
            call = source.update(entity, remote_id, values)
            outcome.record = await _write(context, source, call, outcome)
        if outcome.record is not None:
            context.loaders.forget(outcome.record)
            announce(context, source.name, entity, ChangeKind.UPDATED, remote_id)
        audit.done(outcome.problems)
        return outcome


async def delete(context: Context, entity: Entity, global_id: str) -> Outcome:
    async with _audited(context, _name("delete", entity)) as audit:
        source, remote_id = _existing(context, audit, entity, Op.DELETE, global_id)
        outcome = Outcome()
        await _write(context, source, source.delete(entity, remote_id), outcome)
        if not outcome.problems:
            outcome.deleted_id = global_id
            announce(context, source.name, entity, ChangeKind.DELETED, remote_id)
        audit.done(outcome.problems)
        return outcome


def _ids(
    context: Context, entity: Entity, values: list[str], argument: str
) -> tuple[DataSource, list[str]]:
    """The one provider and the remote ids of global ids that must all be `entity`s of it."""
    sources, remote = set(), []
    for value in values:
        found, provider, remote_id = parse_global_id(value, argument)
        if found is not entity:
            raise BadUserInput(f"`{argument}` must hold {entity.value} ids.", argument=argument)
        sources.add(provider)
        remote.append(remote_id)
    if len(sources) != 1:
        raise BadUserInput(f"`{argument}`: records of one provider only.", argument=argument)
    return context.source(sources.pop()), remote


async def merge_contacts(context: Context, winner: str, losers: list[str]) -> Outcome:
    async with _audited(context, "mergeContacts") as audit:
        if not losers:
            problem = (["input", "loserIds"], "give at least one contact to merge.")
        elif winner in losers:
            problem = (["input", "loserIds"], "a contact cannot be merged into itself.")
        else:
            outcome = await _merge(context, audit, winner, losers)
            audit.done(outcome.problems)
            return outcome
        audit.done([problem])
        return Outcome(problems=[problem])


async def _merge(context: Context, audit: Audit, winner: str, losers: list[str]) -> Outcome:
    source, ids = _ids(context, Entity.CONTACT, [winner, *losers], "input")
    audit.provider = source.name
    if source.can_merge_contacts:  # else refused as unsupported
        source.require_id(Entity.CONTACT, ids[0], "winnerId")
        for loser in ids[1:]:
            source.require_id(Entity.CONTACT, loser, "loserIds")
        audit.ids = list(ids)
    outcome = Outcome()
    call = source.merge_contacts(ids[0], ids[1:])
    outcome.record = await _write(context, source, call, outcome, missing=("input",))
    if outcome.record is not None:
        context.loaders.forget(outcome.record)
        # The winner holds what the others held; they are gone.
        announce(context, source.name, Entity.CONTACT, ChangeKind.MERGED, ids[0])
        announce(context, source.name, Entity.CONTACT, ChangeKind.DELETED, *ids[1:])
    return outcome


async def restore_deal(context: Context, global_id: str, *, archive: bool = False) -> Outcome:
    async with _audited(context, "archiveDeal" if archive else "restoreDeal") as audit:
        source, remote_id = _target(context, Entity.DEAL, global_id)
        audit.provider = source.name
        if source.can_archive_deals if archive else source.can_restore_deals:
            source.require_id(Entity.DEAL, remote_id)  # else refused as unsupported
            audit.ids.append(remote_id)
        outcome = Outcome()
        call = source.archive_deal(remote_id) if archive else source.restore_deal(remote_id)
        outcome.record = await _write(context, source, call, outcome)
        if outcome.record is not None:
            announce(context, source.name, Entity.DEAL, ChangeKind.UPDATED, remote_id)
        audit.done(outcome.problems)
        return outcome


@dataclass
class BulkItem:
    index: int
    record: AnyRecord | None = None
    deleted_id: str | None = None
    problems: list[Problem] = field(default_factory=list)


async def bulk(
    context: Context,
    entity: Entity,
    op: Op,
    provider: str | None,
    items: list[tuple[str | None, dict[str, Any]]],
) -> list[BulkItem]:
    """Several writes of one kind in one provider call; each item says how it went.

    `items` are (global id or None, raw fields). Items refused before sending keep
    their index and report why; the rest go out together.
    """
    async with _audited(context, _name(f"bulk{op.value.title()}", entity, plural=True)) as audit:
        results = [BulkItem(index) for index in range(len(items))]
        if items:
            source = _bulk_source(context, entity, provider, items)
            audit.provider = source.name
            sendable = _sendable(source, entity, op, items, results)
            audit.ids += [ready.operation[1] for ready in sendable if ready.operation[1]]
            if sendable:
                await _send_bulk(context, source, entity, sendable, results)
        for item in results:
            audit.done(item.problems, item.record)
        return results


class Ready(NamedTuple):
    """An item that passed the checks, ready to send."""

    position: int  # among the client's items
    global_id: str | None
    operation: tuple[Op, str | None, dict[str, Any] | None]  # as DataSource.bulk takes it


def _bulk_source(
    context: Context, entity: Entity, provider: str | None, items: list[tuple[str | None, Any]]
) -> DataSource:
    """The provider the items go to: named, or the one their ids all belong to."""
    if provider is not None:
        source = context.source(provider)
    else:
        source, _ = _ids(context, entity, [i for i, _ in items if i is not None], "input")
    if entity not in source.can_bulk:
        raise Unsupported(
            f"{source.label} has no bulk writes of {entity.plural}.",
            provider=source.name,
        )
    return source


def _sendable(
    source: DataSource,
    entity: Entity,
    op: Op,
    items: list[tuple[str | None, dict[str, Any]]],
    results: list[BulkItem],
) -> list[Ready]:
    """The items that pass the checks; the others get their problems in `results`."""
    sendable: list[Ready] = []
    for index, (global_id, raw) in enumerate(items):
        remote_id = None
        if global_id is not None:
            found, owner, remote_id = parse_global_id(global_id, "input")
            if (
                found is not entity
                or owner != source.name
                or not source.valid_id(entity, remote_id)
            ):
                results[index].problems.append(
                    (["input", "id"], f"not a {entity.value} of provider {source.name!r}.")
                )
                continue
        values = None if op is Op.DELETE else _values(source, entity, raw, results[index].problems)
        if not results[index].problems:
            sendable.append(Ready(index, global_id, (op, remote_id, values)))
    return sendable


async def _send_bulk(
    context: Context,
    source: DataSource,
    entity: Entity,
    sendable: list[Ready],
    results: list[BulkItem],
) -> None:
    """One provider call for every sendable item; each item's outcome into `results`."""
    operations = [ready.operation for ready in sendable]
    outcomes = await _send(context, source, source.bulk(entity, operations))
    for ready, outcome in zip(sendable, outcomes, strict=True):
        item = results[ready.position]
        if isinstance(outcome, InvalidInput | NotFound):
            item.problems = _problems(outcome, ("input", "id"))
        elif isinstance(outcome, str):
            item.deleted_id = ready.global_id
            announce(context, source.name, entity, ChangeKind.DELETED, outcome)
        elif not isinstance(outcome, Exception):
            item.record = outcome
            context.loaders.forget(outcome)
            kind = ChangeKind.CREATED if ready.operation[0] is Op.CREATE else ChangeKind.UPDATED
            announce(context, source.name, entity, kind, outcome.remote_id)

"""The root Mutation type: create, update and delete on any provider that can write."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from gateway.operations import Op
from gateway.records import Entity
from resolvers import mutations
from resolvers.context import Info
from schema import types as t


@strawberry.type(description="Why a write was refused: which input field, and what is wrong.")
class UserError:
    field: list[str] = strawberry.field(description="Path to the input field, e.g. [input, email].")
    message: str = strawberry.field(description="What is wrong with it.")


def _user_errors(outcome: mutations.Outcome) -> list[UserError]:
    return [UserError(field=path, message=message) for path, message in outcome.problems]


def _raw(data: Any) -> dict[str, Any]:
    """The fields the client gave (UNSET ones left out; null kept, meaning "clear")."""
    values = {}
    for f in dataclasses.fields(data):
        if f.name in ("provider", "id"):
            continue
        value = getattr(data, f.name)
        if value is strawberry.UNSET:
            continue
        # The data sources take a note's target as `target` (entity and id).
        values["target" if f.name == "target_id" else f.name] = value
    return values


# --- inputs ---------------------------------------------------------------------------

_OPT = strawberry.UNSET


@strawberry.input(description="Fields of a contact; leave a field out to keep it.")
class ContactFields:
    first_name: str | None = strawberry.field(default=_OPT, description="Given name.")
    last_name: str | None = strawberry.field(default=_OPT, description="Family name.")
    email: str | None = strawberry.field(default=_OPT, description="Primary email address.")
    title: str | None = strawberry.field(default=_OPT, description="Job title.")
    phone: str | None = strawberry.field(default=_OPT, description="Primary phone number.")
    status: str | None = strawberry.field(default=_OPT, description="The provider's status.")
    company_id: strawberry.ID | None = strawberry.field(
        default=_OPT, description="Global id of a company of the same provider."
    )
    custom_fields: JSON | None = strawberry.field(
        default=_OPT, description="Provider fields with no unified counterpart, by name."
    )


@strawberry.input(description="Fields of a company; leave a field out to keep it.")
class CompanyFields:
    name: str | None = strawberry.field(default=_OPT, description="Company name.")
    domain: str | None = strawberry.field(default=_OPT, description="Primary web domain.")
    industry: str | None = strawberry.field(default=_OPT, description="Industry or category.")
    description: str | None = strawberry.field(default=_OPT, description="Description.")
    custom_fields: JSON | None = strawberry.field(
        default=_OPT, description="Provider fields with no unified counterpart, by name."
    )


@strawberry.input(description="Fields of a deal; leave a field out to keep it.")
class DealFields:
    name: str | None = strawberry.field(default=_OPT, description="Deal name.")
    stage: str | None = strawberry.field(default=_OPT, description="Pipeline stage, as text.")
    amount: str | None = strawberry.field(
        default=_OPT, description='Deal value as a decimal string, e.g. "1250.50".'
    )
    currency: str | None = strawberry.field(default=_OPT, description="ISO 4217 code.")
    close_date: dt.date | None = strawberry.field(default=_OPT, description="Close date.")
    company_id: strawberry.ID | None = strawberry.field(
        default=_OPT, description="Global id of a company of the same provider."
    )
    custom_fields: JSON | None = strawberry.field(
        default=_OPT, description="Provider fields with no unified counterpart, by name."
    )


@strawberry.input(description="Fields of a note; leave a field out to keep it.")
class NoteFields:
    title: str | None = strawberry.field(default=_OPT, description="Title.")
    body: str | None = strawberry.field(default=_OPT, description="The note's text.")
    target_id: strawberry.ID | None = strawberry.field(
        default=_OPT, description="Global id of the contact, company or deal it is about."
    )


@strawberry.input(description="A new contact.")
class CreateContactInput(ContactFields):
    provider: str = strawberry.field(description="The provider instance to create it in.")


@strawberry.input(description="Changes to a contact.")
class UpdateContactInput(ContactFields):
    id: strawberry.ID = strawberry.field(description="The contact's global id.")


@strawberry.input(description="A new company.")
class CreateCompanyInput(CompanyFields):
    provider: str = strawberry.field(description="The provider instance to create it in.")


@strawberry.input(description="Changes to a company.")
class UpdateCompanyInput(CompanyFields):
    id: strawberry.ID = strawberry.field(description="The company's global id.")


@strawberry.input(description="A new deal.")
class CreateDealInput(DealFields):
    provider: str = strawberry.field(description="The provider instance to create it in.")


@strawberry.input(description="Changes to a deal.")
class UpdateDealInput(DealFields):
    id: strawberry.ID = strawberry.field(description="The deal's global id.")


@strawberry.input(description="A new note.")
class CreateNoteInput(NoteFields):
    provider: str = strawberry.field(description="The provider instance to create it in.")


@strawberry.input(description="Changes to a note.")
class UpdateNoteInput(NoteFields):
    id: strawberry.ID = strawberry.field(description="The note's global id.")


@strawberry.input(description="Contacts to fold into one.")
class MergeContactsInput:
    winner_id: strawberry.ID = strawberry.field(description="The contact that stays.")
    loser_ids: list[strawberry.ID] = strawberry.field(
        description="Contacts merged into it and removed (same provider)."
    )


@strawberry.input(description="Contacts to create in one call.")
class BulkCreateContactsInput:
    provider: str = strawberry.field(description="The provider instance to create them in.")
    contacts: list[ContactFields] = strawberry.field(description="One entry per new contact.")


@strawberry.input(description="Contacts to change in one call.")
class BulkUpdateContactsInput:
    contacts: list[UpdateContactInput] = strawberry.field(
        description="One entry per contact (all of one provider)."
    )


@strawberry.input(description="Contacts to delete in one call.")
class BulkDeleteContactsInput:
    ids: list[strawberry.ID] = strawberry.field(description="Global ids, all of one provider.")


@strawberry.type(description="How one operation of a bulk write went.")
class BulkContactResult:
    index: int = strawberry.field(description="Its position in the input list.")
    contact: t.Contact | None = strawberry.field(description="The contact as it now is.")
    deleted_id: str | None = strawberry.field(
        description="For deletes: the id deleted.", graphql_type=strawberry.ID | None
    )
    user_errors: list[UserError] = strawberry.field(description="Why it was refused.")


@strawberry.type(description="The outcome of each operation of a bulk write.")
class BulkContactsPayload:
    results: list[BulkContactResult] = strawberry.field(description="One per input, in order.")
    succeeded: int = strawberry.field(description="How many operations took effect.")
    failed: int = strawberry.field(description="How many were refused.")


def _bulk_payload(items: list[mutations.BulkItem]) -> BulkContactsPayload:
    results = [
        BulkContactResult(
            index=item.index,
            contact=None if item.record is None else t.Contact.from_record(item.record),  # type: ignore[arg-type]
            deleted_id=item.deleted_id,
            user_errors=[UserError(field=p, message=m) for p, m in item.problems],
        )
        for item in items
    ]
    failed = sum(1 for item in items if item.problems)
    return BulkContactsPayload(results=results, succeeded=len(items) - failed, failed=failed)


@strawberry.input(description="The record to delete.")
class DeleteInput:
    id: strawberry.ID = strawberry.field(description="The record's global id.")


# --- payloads -------------------------------------------------------------------------


@strawberry.type(description="The result of a contact write.")
class ContactPayload:
    contact: t.Contact | None = strawberry.field(description="The contact as it now is.")
    user_errors: list[UserError] = strawberry.field(description="Why the input was refused.")


@strawberry.type(description="The result of a company write.")
class CompanyPayload:
    company: t.Company | None = strawberry.field(description="The company as it now is.")
    user_errors: list[UserError] = strawberry.field(description="Why the input was refused.")


@strawberry.type(description="The result of a deal write.")
class DealPayload:
    deal: t.Deal | None = strawberry.field(description="The deal as it now is.")
    user_errors: list[UserError] = strawberry.field(description="Why the input was refused.")


@strawberry.type(description="The result of a note write.")
class NotePayload:
    note: t.Note | None = strawberry.field(description="The note as it now is.")
    user_errors: list[UserError] = strawberry.field(description="Why the input was refused.")


@strawberry.type(description="The result of a delete.")
class DeletePayload:
    deleted_id: str | None = strawberry.field(
        description="The global id of the deleted record; null when nothing was deleted.",
        graphql_type=strawberry.ID | None,
    )
    user_errors: list[UserError] = strawberry.field(description="Why the input was refused.")


def _amount(raw: dict[str, Any], outcome: mutations.Outcome) -> None:
    """Amounts travel as decimal strings so no float rounding creeps in; check them here."""
    if raw.get("amount") is not None:
        try:
            value = Decimal(raw["amount"])
            if not value.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            outcome.problems.append((["input", "amount"], "must be a decimal number."))


async def _write(info: Info, entity: Entity, op: str, data: Any) -> tuple[mutations.Outcome, Any]:
    raw = _raw(data)
    check = mutations.Outcome()
    if entity is Entity.DEAL:
        _amount(raw, check)
    if op == "create":
        outcome = await mutations.create(info.context, entity, data.provider, raw, check.problems)
    else:
        outcome = await mutations.update(info.context, entity, str(data.id), raw, check.problems)
    node = None if outcome.record is None else t.to_node(outcome.record)
    return outcome, node


@strawberry.type(description="Create, update and delete records in any provider that allows it.")
class Mutation:
    @strawberry.mutation(description="Create a contact in a provider.")
    async def create_contact(
        self,
        info: Info,
        input: Annotated[CreateContactInput, strawberry.argument(description="What to write.")],
    ) -> ContactPayload | None:
        outcome, node = await _write(info, Entity.CONTACT, "create", input)
        return ContactPayload(contact=node, user_errors=_user_errors(outcome))

    @strawberry.mutation(description="Change fields of a contact.")
    async def update_contact(
        self,
        info: Info,
        input: Annotated[UpdateContactInput, strawberry.argument(description="What to write.")],
    ) -> ContactPayload | None:
        outcome, node = await _write(info, Entity.CONTACT, "update", input)
        return ContactPayload(contact=node, user_errors=_user_errors(outcome))

    @strawberry.mutation(description="Delete a contact.")
    async def delete_contact(
        self,
        info: Info,
        input: Annotated[DeleteInput, strawberry.argument(description="What to write.")],
    ) -> DeletePayload | None:
        outcome = await mutations.delete(info.context, Entity.CONTACT, str(input.id))
        return DeletePayload(deleted_id=outcome.deleted_id, user_errors=_user_errors(outcome))

    @strawberry.mutation(description="Create a company in a provider.")
    async def create_company(
        self,
        info: Info,
        input: Annotated[CreateCompanyInput, strawberry.argument(description="What to write.")],
    ) -> CompanyPayload | None:
        outcome, node = await _write(info, Entity.COMPANY, "create", input)
        return CompanyPayload(company=node, user_errors=_user_errors(outcome))

    @strawberry.mutation(description="Change fields of a company.")
    async def update_company(
        self,
        info: Info,
        input: Annotated[UpdateCompanyInput, strawberry.argument(description="What to write.")],
    ) -> CompanyPayload | None:
        outcome, node = await _write(info, Entity.COMPANY, "update", input)
        return CompanyPayload(company=node, user_errors=_user_errors(outcome))

    @strawberry.mutation(description="Delete a company.")
    async def delete_company(
        self,
        info: Info,
        input: Annotated[DeleteInput, strawberry.argument(description="What to write.")],
    ) -> DeletePayload | None:
        outcome = await mutations.delete(info.context, Entity.COMPANY, str(input.id))
        return DeletePayload(deleted_id=outcome.deleted_id, user_errors=_user_errors(outcome))

    @strawberry.mutation(description="Create a deal in a provider.")
    async def create_deal(
        self,
        info: Info,
        input: Annotated[CreateDealInput, strawberry.argument(description="What to write.")],
    ) -> DealPayload | None:
        outcome, node = await _write(info, Entity.DEAL, "create", input)
        return DealPayload(deal=node, user_errors=_user_errors(outcome))

    @strawberry.mutation(description="Change fields of a deal.")
    async def update_deal(
        self,
        info: Info,
        input: Annotated[UpdateDealInput, strawberry.argument(description="What to write.")],
    ) -> DealPayload | None:
        outcome, node = await _write(info, Entity.DEAL, "update", input)
        return DealPayload(deal=node, user_errors=_user_errors(outcome))

    @strawberry.mutation(description="Delete a deal (some providers archive it instead).")
    async def delete_deal(
        self,
        info: Info,
        input: Annotated[DeleteInput, strawberry.argument(description="What to write.")],
    ) -> DeletePayload | None:
        outcome = await mutations.delete(info.context, Entity.DEAL, str(input.id))
        return DeletePayload(deleted_id=outcome.deleted_id, user_errors=_user_errors(outcome))

    @strawberry.mutation(description="Create a note about a contact, company or deal.")
    async def create_note(
        self,
        info: Info,
        input: Annotated[CreateNoteInput, strawberry.argument(description="What to write.")],
    ) -> NotePayload | None:
        outcome, node = await _write(info, Entity.NOTE, "create", input)
        return NotePayload(note=node, user_errors=_user_errors(outcome))

    @strawberry.mutation(description="Change a note.")
    async def update_note(
        self,
        info: Info,
        input: Annotated[UpdateNoteInput, strawberry.argument(description="What to write.")],
    ) -> NotePayload | None:
        outcome, node = await _write(info, Entity.NOTE, "update", input)
        return NotePayload(note=node, user_errors=_user_errors(outcome))

    @strawberry.mutation(description="Delete a note.")
    async def delete_note(
        self,
        info: Info,
        input: Annotated[DeleteInput, strawberry.argument(description="What to write.")],
    ) -> DeletePayload | None:
        outcome = await mutations.delete(info.context, Entity.NOTE, str(input.id))
        return DeletePayload(deleted_id=outcome.deleted_id, user_errors=_user_errors(outcome))

    @strawberry.mutation(
        description="Merge duplicate contacts into one (providers that can: see capabilities)."
    )
    async def merge_contacts(
        self,
        info: Info,
        input: Annotated[MergeContactsInput, strawberry.argument(description="What to merge.")],
    ) -> ContactPayload | None:
        outcome = await mutations.merge_contacts(
            info.context, str(input.winner_id), [str(i) for i in input.loser_ids]
        )
        node = None if outcome.record is None else t.to_node(outcome.record)
        return ContactPayload(contact=node, user_errors=_user_errors(outcome))  # type: ignore[arg-type]

    @strawberry.mutation(description="Bring back an archived deal (BasicsOS).")
    async def restore_deal(
        self,
        info: Info,
        input: Annotated[DeleteInput, strawberry.argument(description="The deal to restore.")],
    ) -> DealPayload | None:
        outcome = await mutations.restore_deal(info.context, str(input.id))
        node = None if outcome.record is None else t.to_node(outcome.record)
        return DealPayload(deal=node, user_errors=_user_errors(outcome))  # type: ignore[arg-type]

    @strawberry.mutation(description="Create many contacts in one call (hasteCRM).")
    async def bulk_create_contacts(
        self,
        info: Info,
        input: Annotated[
            BulkCreateContactsInput, strawberry.argument(description="What to create.")
        ],
    ) -> BulkContactsPayload | None:
        items: list[tuple[str | None, dict[str, Any]]] = [(None, _raw(c)) for c in input.contacts]
        return _bulk_payload(
            await mutations.bulk(info.context, Entity.CONTACT, Op.CREATE, input.provider, items)
        )

    @strawberry.mutation(description="Change many contacts in one call (hasteCRM).")
    async def bulk_update_contacts(
        self,
        info: Info,
        input: Annotated[
            BulkUpdateContactsInput, strawberry.argument(description="What to change.")
        ],
    ) -> BulkContactsPayload | None:
        items: list[tuple[str | None, dict[str, Any]]] = [
            (str(c.id), _raw(c)) for c in input.contacts
        ]
        return _bulk_payload(
            await mutations.bulk(info.context, Entity.CONTACT, Op.UPDATE, None, items)
        )

    @strawberry.mutation(description="Delete many contacts in one call (hasteCRM).")
    async def bulk_delete_contacts(
        self,
        info: Info,
        input: Annotated[
            BulkDeleteContactsInput, strawberry.argument(description="What to delete.")
        ],
    ) -> BulkContactsPayload | None:
        items: list[tuple[str | None, dict[str, Any]]] = [(str(i), {}) for i in input.ids]
        return _bulk_payload(
            await mutations.bulk(info.context, Entity.CONTACT, Op.DELETE, None, items)
        )

    @strawberry.mutation(
        description="Archive a deal: hidden from lists, kept for restoreDeal (BasicsOS, with a "
        "member's token)."
    )
    async def archive_deal(
        self,
        info: Info,
        input: Annotated[DeleteInput, strawberry.argument(description="The deal to archive.")],
    ) -> DealPayload | None:
        outcome = await mutations.restore_deal(info.context, str(input.id), archive=True)
        node = None if outcome.record is None else t.to_node(outcome.record)
        return DealPayload(deal=node, user_errors=_user_errors(outcome))  # type: ignore[arg-type]

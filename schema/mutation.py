"""The root Mutation type: create, update and delete on any provider that can write."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Any, TypeVar

import strawberry
from strawberry.scalars import JSON

import schema.types as t
from gateway.operations import Op
from gateway.records import AnyRecord, Entity
from resolvers import mutations
from resolvers.context import Info


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
            contact=_node(item.record, t.Contact),
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


N = TypeVar("N", t.Contact, t.Company, t.Deal, t.Note)


def _node(record: AnyRecord | None, cls: type[N]) -> N | None:
    node = None if record is None else t.to_node(record)
    return node if isinstance(node, cls) else None


async def _write(info: Info, entity: Entity, op: Op, data: Any) -> mutations.Outcome:
    raw = _raw(data)
    if op is Op.CREATE:
        return await mutations.create(info.context, entity, data.provider, raw)
    return await mutations.update(info.context, entity, str(data.id), raw)


PAYLOADS = {
    Entity.CONTACT: (t.Contact, ContactPayload),
    Entity.COMPANY: (t.Company, CompanyPayload),
    Entity.DEAL: (t.Deal, DealPayload),
    Entity.NOTE: (t.Note, NotePayload),
}


def _writer(entity: Entity, op: Op, input_type: type, description: str) -> Any:
    """The create, update or delete mutation of `entity`."""

    async def resolve(self: Any, info: Info, input: Any) -> Any:
        if op is Op.DELETE:
            done = await mutations.delete(info.context, entity, str(input.id))
            return DeletePayload(deleted_id=done.deleted_id, user_errors=_user_errors(done))
        node_type, payload = PAYLOADS[entity]
        outcome = await _write(info, entity, op, input)
        node = _node(outcome.record, node_type)
        # Each payload names its record after the entity: `contact`, `company`, ...
        return payload(**{entity.value: node, "user_errors": _user_errors(outcome)})

    resolve.__annotations__["input"] = Annotated[
        input_type, strawberry.argument(description="What to write.")
    ]
    resolve.__annotations__["return"] = (
        DeletePayload if op is Op.DELETE else PAYLOADS[entity][1]
    ) | None
    return strawberry.mutation(resolver=resolve, description=description)


@strawberry.type(description="Create, update and delete records in any provider that allows it.")
class Mutation:
    create_contact = _writer(
        Entity.CONTACT, Op.CREATE, CreateContactInput, "Create a contact in a provider."
    )
    update_contact = _writer(
        Entity.CONTACT, Op.UPDATE, UpdateContactInput, "Change fields of a contact."
    )
    delete_contact = _writer(Entity.CONTACT, Op.DELETE, DeleteInput, "Delete a contact.")
    create_company = _writer(
        Entity.COMPANY, Op.CREATE, CreateCompanyInput, "Create a company in a provider."
    )
    update_company = _writer(
        Entity.COMPANY, Op.UPDATE, UpdateCompanyInput, "Change fields of a company."
    )
    delete_company = _writer(Entity.COMPANY, Op.DELETE, DeleteInput, "Delete a company.")
    create_deal = _writer(Entity.DEAL, Op.CREATE, CreateDealInput, "Create a deal in a provider.")
    update_deal = _writer(Entity.DEAL, Op.UPDATE, UpdateDealInput, "Change fields of a deal.")
    delete_deal = _writer(
        Entity.DEAL, Op.DELETE, DeleteInput, "Delete a deal (some providers archive it instead)."
    )
    create_note = _writer(
        Entity.NOTE, Op.CREATE, CreateNoteInput, "Create a note about a contact, company or deal."
    )
    update_note = _writer(Entity.NOTE, Op.UPDATE, UpdateNoteInput, "Change a note.")
    delete_note = _writer(Entity.NOTE, Op.DELETE, DeleteInput, "Delete a note.")

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
        node = _node(outcome.record, t.Contact)
        return ContactPayload(contact=node, user_errors=_user_errors(outcome))

    @strawberry.mutation(description="Bring back an archived deal (BasicsOS).")
    async def restore_deal(
        self,
        info: Info,
        input: Annotated[DeleteInput, strawberry.argument(description="The deal to restore.")],
    ) -> DealPayload | None:
        outcome = await mutations.restore_deal(info.context, str(input.id))
        return DealPayload(deal=_node(outcome.record, t.Deal), user_errors=_user_errors(outcome))

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
        return DealPayload(deal=_node(outcome.record, t.Deal), user_errors=_user_errors(outcome))

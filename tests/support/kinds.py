"""Provider kinds for parametrize lists, from the registry and what each provider declares.

A suite's expectation lists exactly the kinds it applies to: a provider without contacts
on its companies, without a contact -> company link, without a whole-read plan or without
rate limits is left out of that expectation's list, never failed or skipped at run time.
"""

from __future__ import annotations

from gateway.datasources import DataSource, source_class
from gateway.limiter import Window
from gateway.providers import KINDS
from gateway.records import PARENT_ENTITY, Entity, Link

ALL_KINDS: tuple[str, ...] = KINDS
# Kinds whose API takes writes (contact writes: every writable kind has them).
WRITABLE_KINDS: tuple[str, ...] = tuple(k for k in KINDS if source_class(k).describe().writes)
# Each kind's entities, as its capabilities declare them, in this order.
ALL_ENTITIES = ("contact", "company", "deal", "note")
ENTITIES: dict[str, tuple[str, ...]] = {
    kind: tuple(e for e in ALL_ENTITIES if Entity(e) in source_class(kind).describe().entities)
    for kind in KINDS
}
# (kind, entity) for every entity of every kind.
ENTITY_CASES: list[tuple[str, str]] = [
    (kind, entity) for kind in KINDS for entity in ENTITIES[kind]
]


def with_links(*links: Link) -> tuple[str, ...]:
    """The kinds that declare every one of `links` (e.g. `Company.contacts`)."""
    return tuple(k for k in KINDS if set(links) <= source_class(k).describe().links)


# Kinds with a nested connection (a to-many link: Company.contacts, Deal.notes, ...).
NESTED_KINDS: tuple[str, ...] = tuple(
    k for k in KINDS if source_class(k).describe().links & PARENT_ENTITY.keys()
)


def rate_limits(kind: str) -> tuple[Window, ...]:
    """The rate limits `kind` declares (what its settings take unless told otherwise)."""
    return source_class(kind).rate_limits


RATE_LIMITED_KINDS: tuple[str, ...] = tuple(k for k in KINDS if rate_limits(k))


def batched_lookups(entity: Entity) -> tuple[str, ...]:
    """The kinds that look up many records of `entity` in a few requests, not one per id:
    they read the collection whole (`whole_reads`) or have their own batched `get_many`
    (an id-list filter)."""
    return tuple(
        k
        for k in KINDS
        if entity in source_class(k).whole_reads
        or source_class(k).get_many is not DataSource.get_many
    )

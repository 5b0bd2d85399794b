"""What the tests know of each provider's API, in one block per provider.

A provider's contract-test module, `tests/emulators/test_<kind>.py`, opens with its
`KNOWLEDGE`: how to read its emulator's data straight from the API, without any gateway
code (the truth the gateway's answers are compared with), and ids of its shapes. What the
provider can do is not repeated there: the suites read that from its data source's
`describe()` and its declared rate limits (`tests/support/kinds.py`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TypeVar

import httpx

from gateway.records import Entity

T = TypeVar("T")
# A company's name and domain.
CompanyFields = dict[str, str | None]


@dataclass(frozen=True)
class ProviderKnowledge:
    kind: str
    # An entity's remote ids in the API's default order: what a full walk must produce.
    remote_ids: Callable[[httpx.Client, Entity], list[str]]
    # An id the emulator hands out, and an id of the right shape that names no record, for
    # each entity the provider has.
    sample_ids: Mapping[Entity, str]
    unknown_ids: Mapping[Entity, str]
    # The first `count` contacts' company ids (None: no company); only where contacts link
    # to companies.
    contact_companies: Callable[[httpx.Client, int], dict[str, str | None]] | None = None
    # Every company's name and domain by id.
    companies: Callable[[httpx.Client], dict[str, CompanyFields]] | None = None
    # How many of a seed deal's contacts the API keeps (None: all of them).
    deal_contacts_kept: int | None = None


def module_of(kind: str) -> str:
    """Where the knowledge of `kind` is: its emulator's contract-test module."""
    return f"tests.emulators.test_{kind}"


@cache
def knowledge(kind: str) -> ProviderKnowledge:
    found = importlib.import_module(module_of(kind)).KNOWLEDGE
    assert isinstance(found, ProviderKnowledge), module_of(kind)
    assert found.kind == kind, (found.kind, kind)
    return found


def _read(emulator: str | httpx.Client, read: Callable[[httpx.Client], T]) -> T:
    """`read` on `emulator`: a client of it (the unit layer reaches its app in process), or
    its URL."""
    if isinstance(emulator, httpx.Client):
        return read(emulator)
    with httpx.Client(base_url=emulator) as client:
        return read(client)


def remote_ids(kind: str, emulator: str | httpx.Client, entity: str) -> list[str]:
    return _read(emulator, lambda client: knowledge(kind).remote_ids(client, Entity(entity)))


def contact_companies(
    kind: str, emulator: str | httpx.Client, count: int = 30
) -> dict[str, str | None]:
    read = knowledge(kind).contact_companies
    assert read is not None, f"{kind}: contacts name no company"
    return _read(emulator, lambda client: read(client, count))


def companies(kind: str, emulator: str | httpx.Client) -> dict[str, CompanyFields]:
    read = knowledge(kind).companies
    assert read is not None, f"{kind}: no company reader"
    return _read(emulator, read)

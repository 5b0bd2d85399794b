"""The provider registry: the one list of provider kinds and where each kind's parts live.

Everything that needs the kinds (settings validation, the CLI's choices, the demo, the
tests' parametrize lists) reads them here. Parts are named by module, never imported at
import time, so the emulators and the data sources stay unaware of each other: this
module imports neither. The emulators live beside the runtime, in their own package: the
runtime reaches one only through the functions at the end, by the name given here.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel

if TYPE_CHECKING:
    from fastapi import FastAPI

# The emulators' package: `EmulatorOptions` and `Faults` configure every kind's emulator.
EMULATORS = "emulators"


class SourceKind(Protocol):
    """What the settings read of a kind's data source class before any instance exists: the
    models of its options and its credentials. (`gateway.datasources.source_class` gives
    the class as a `DataSource`.)"""

    options_model: ClassVar[type[BaseModel]]
    credentials_model: ClassVar[type[BaseModel]]
    api_url: ClassVar[str]
    # Its webhook API (`gateway.datasources.webhooks.WebhookApi`); None: it has none.
    webhooks: ClassVar[type | None]


@dataclass(frozen=True)
class Provider:
    """One provider kind: its data source, its emulator and how the demo runs it."""

    kind: str
    # `module:Class` of its data source (which owns its settings models and capabilities).
    source: str
    # Module of its emulator, with `create_app(options)`.
    emulator: str
    demo_port: int
    # The emulator's own demo credentials (not secrets: they exist only on loopback).
    demo_credentials: Mapping[str, str]

    def source_class(self) -> type[SourceKind]:
        module, name = self.source.split(":")
        cls: type[SourceKind] = getattr(importlib.import_module(module), name)
        return cls


def _entry(kind: str, cls: str, port: int, credentials: dict[str, str]) -> Provider:
    return Provider(
        kind=kind,
        source=f"gateway.datasources.{kind}:{cls}",
        emulator=f"{EMULATORS}.{kind}",
        demo_port=port,
        demo_credentials=MappingProxyType(credentials),
    )


PROVIDERS: Mapping[str, Provider] = MappingProxyType(
    {
        p.kind: p
        for p in (
            _entry("revyops", "RevyOps", 8101, {"client_id": "revyops-demo-client"}),
            _entry("attio", "Attio", 8102, {"api_key": "attio-demo-key"}),
            _entry("haste", "Haste", 8103, {"token": "haste-demo-token"}),
            _entry("redivis", "Redivis", 8104, {"token": "redivis-demo-token"}),
            _entry("basicsos", "BasicsOS", 8105, {"token": "bos_crm_demo_admin"}),
        )
    }
)
KINDS: tuple[str, ...] = tuple(PROVIDERS)


def provider(kind: str) -> Provider:
    """The registry entry of `kind`; ValueError naming the known kinds otherwise."""
    if kind not in PROVIDERS:
        raise ValueError(f"unknown provider kind {kind!r}; expected one of {', '.join(KINDS)}")
    return PROVIDERS[kind]


def emulator_options(faults: Mapping[str, Any] | None = None, **values: Any) -> Any:
    """The emulators' `EmulatorOptions(**values)` with `Faults(**faults)`: how the CLI sets
    up an emulator without importing their package until it serves one."""
    package = importlib.import_module(EMULATORS)
    return package.EmulatorOptions(faults=package.Faults(**(faults or {})), **values)


def create_emulator(kind: str, options: Any = None) -> FastAPI:
    """The ASGI app emulating `kind`: its module's `create_app(options)`, `options` an
    `emulators.EmulatorOptions` (None: the defaults)."""
    module = importlib.import_module(provider(kind).emulator)
    app: FastAPI = module.create_app(emulator_options() if options is None else options)
    return app

"""Emulators of the provider APIs: independent implementations of their contracts.

They share the seed world and the control endpoints, never code with the data
sources or the pagination engine, so the tests can catch what the gateway gets
wrong.
"""

from __future__ import annotations

import importlib

from fastapi import FastAPI

from gateway.emulators.control import EmulatorOptions, Faults
from gateway.providers import KINDS, PROVIDERS, provider

DEMO_PORTS = {kind: entry.demo_port for kind, entry in PROVIDERS.items()}


def create_emulator(kind: str, options: EmulatorOptions | None = None) -> FastAPI:
    """The FastAPI app emulating provider `kind`."""
    module = importlib.import_module(provider(kind).emulator)
    app: FastAPI = module.create_app(options or EmulatorOptions())
    return app


__all__ = ["DEMO_PORTS", "KINDS", "EmulatorOptions", "Faults", "create_emulator"]

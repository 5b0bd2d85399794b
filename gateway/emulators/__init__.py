"""Emulators of the provider APIs: independent implementations of their contracts.

They share the seed world and the control endpoints, never code with the data
sources or the pagination engine, so the tests can catch what the gateway gets
wrong.
"""

from __future__ import annotations

import importlib

from fastapi import FastAPI

from gateway.emulators.control import EmulatorOptions, Faults

KINDS = ("revyops", "attio", "haste", "redivis", "basicsos")
DEMO_PORTS = {"revyops": 8101, "attio": 8102, "haste": 8103, "redivis": 8104, "basicsos": 8105}


def create_emulator(kind: str, options: EmulatorOptions | None = None) -> FastAPI:
    """The FastAPI app emulating provider `kind`."""
    if kind not in KINDS:
        raise ValueError(f"unknown emulator kind {kind!r}; expected one of {', '.join(KINDS)}")
    module = importlib.import_module(f"gateway.emulators.{kind}")
    app: FastAPI = module.create_app(options or EmulatorOptions())
    return app


__all__ = ["DEMO_PORTS", "KINDS", "EmulatorOptions", "Faults", "create_emulator"]

"""Emulators of the provider APIs: independent implementations of their contracts.

They share the seed world and the control endpoints, never code with the gateway (its
data sources, its pagination engine, even its registry), so the tests can catch what the
gateway gets wrong. Each kind's module builds its app with `create_app(options)`; the
gateway names those modules in its registry (`gateway/providers.py`) and loads one only
to serve it.
"""

from __future__ import annotations

from emulators.control import EmulatorOptions, Faults

__all__ = ["EmulatorOptions", "Faults"]

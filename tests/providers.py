"""Provider lists for parametrize, all taken from the registry and the capabilities."""

from __future__ import annotations

from gateway.datasources import source_class
from gateway.providers import KINDS

ALL_KINDS: tuple[str, ...] = KINDS
# Kinds whose API takes writes (contact writes: every writable kind has them).
WRITABLE_KINDS: tuple[str, ...] = tuple(k for k in KINDS if source_class(k).describe().writes)

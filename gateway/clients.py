"""Who is asking: a client of the gateway, as authentication established it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

SCOPES = frozenset({"read", "write", "ad_hoc"})


def normalize_scopes(values: Iterable[str]) -> frozenset[str]:
    """The known scopes among `values`; `write` implies `read`."""
    scopes = set(values) & SCOPES
    if "write" in scopes:
        scopes.add("read")
    return frozenset(scopes)


@dataclass(frozen=True)
class Client:
    """An authenticated client: its name, the provider instances it may use (None: all of
    them), its scopes, its weight in the providers' budgets, and when (POSIX seconds) the
    credential it presented stops being accepted (None: an API key, which does not expire)."""

    name: str
    providers: frozenset[str] | None = None
    scopes: frozenset[str] = frozenset({"read"})
    weight: float = 1.0
    expires_at: float | None = None

    def may_use(self, provider: str) -> bool:
        return self.providers is None or provider in self.providers

    @property
    def can_write(self) -> bool:
        return "write" in self.scopes


def provider_set(listed: Iterable[str]) -> frozenset[str] | None:
    """A `providers` list of the configuration: None when it holds "*"."""
    listed = list(listed)
    return None if "*" in listed else frozenset(listed)

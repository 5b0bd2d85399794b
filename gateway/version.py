"""The installed distribution's version, for `--version`, /healthz and span metadata."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "crm-gateway"


@cache
def gateway_version() -> str:
    """The version of the installed `crm-gateway`; a placeholder when run from a bare tree."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "0+unknown"

"""Global ids as any client can make them: base64 of `Type:provider:remoteId`."""

from __future__ import annotations

import base64


def raw_id(text: str) -> str:
    """Any text wrapped as a global id is (for ids the gateway must refuse)."""
    return base64.b64encode(text.encode()).decode()


def gid(type_name: str, provider: str, remote_id: str) -> str:
    return raw_id(f"{type_name}:{provider}:{remote_id}")

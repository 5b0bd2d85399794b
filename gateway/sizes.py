"""How many bytes a cached value holds: an estimate taken once, when it is stored.

Caches are bounded in bytes (`cache_max_bytes`, the document caches), not only in
entries: one entry may be a block of a hundred records or a parsed document of a
megabyte. The estimate walks the value's objects (containers, dataclasses, slotted
nodes) and adds up `sys.getsizeof`, each object once; what every entry shares
(None, booleans, enum members, classes, functions) is not counted. HTTP responses
are counted by their body and headers: their internals reach the connection pool.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Iterable, Iterator
from types import BuiltinFunctionType, FunctionType, MethodType, ModuleType
from typing import Any

import httpx

# Shared by every entry, or not data: never counted, never walked.
_SHARED = (
    type(None),
    bool,
    enum.Enum,
    type,
    ModuleType,
    FunctionType,
    BuiltinFunctionType,
    MethodType,
)
# Held whole, with nothing inside to walk.
_FLAT = (str, bytes, bytearray, int, float, complex, memoryview, range)
# A class's slot names, found once per class.
_slot_names: dict[type, tuple[str, ...]] = {}


def deep_size(value: object) -> int:
    """An estimate of the bytes `value` keeps alive, counting each object it reaches once."""
    seen: set[int] = set()
    stack: list[object] = [value]
    total = 0
    # A loop, not recursion: a parsed document's tokens are a linked list thousands long.
    while stack:
        item = stack.pop()
        if isinstance(item, _SHARED) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, httpx.Response):
            total += _response_size(item)
            continue
        total += sys.getsizeof(item)
        if not isinstance(item, _FLAT):
            stack.extend(_parts(item))
    return total


def _parts(item: object) -> Iterable[object]:
    if isinstance(item, dict):
        return _items(item)
    if isinstance(item, list | tuple | set | frozenset):
        return item
    return _attributes(item)


def _items(mapping: dict[Any, Any]) -> Iterator[object]:
    for key, value in mapping.items():
        yield key
        yield value


def _attributes(item: object) -> Iterator[object]:
    held = getattr(item, "__dict__", None)
    if isinstance(held, dict):
        yield held  # its own size counts, apart from the object's
    for name in _slots(type(item)):
        value = getattr(item, name, None)
        if value is not None:
            yield value


def _slots(cls: type) -> tuple[str, ...]:
    names = _slot_names.get(cls)
    if names is None:
        found: list[str] = []
        for klass in cls.__mro__:
            slots = klass.__dict__.get("__slots__", ())
            found.extend([slots] if isinstance(slots, str) else slots)
        names = _slot_names[cls] = tuple(n for n in found if n not in ("__dict__", "__weakref__"))
    return names


def _response_size(response: httpx.Response) -> int:
    try:
        body = len(response.content)
    except httpx.ResponseNotRead:
        body = 0
    headers = sum(len(k) + len(v) for k, v in response.headers.raw)
    # The objects around them (response, request, URL, header list) weigh about a kilobyte.
    return 1024 + body + headers + len(str(response.request.url))

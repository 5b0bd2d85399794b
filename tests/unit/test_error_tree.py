"""The tree drawn in gateway/errors.py's docstring is the class hierarchy and its codes."""

from __future__ import annotations

import inspect
import re
from typing import Any

from gateway import errors

# "    ├── Name*   CODE   (note)": indent, class name, whether it is also never-sent, code.
LINE = re.compile(r"^(?P<indent>[ │├└─]*?)(?P<name>[A-Z]\w+)(?P<star>\*?)\s+(?P<code>[A-Z_]+)")


def drawn() -> list[tuple[int, str, bool, str]]:
    """(depth, class name, starred, code) for each line of the tree."""
    rows = []
    for line in (errors.__doc__ or "").splitlines():
        match = LINE.match(line.removeprefix("    "))
        if match and match["name"] != "Graphql":
            rows.append(
                (len(match["indent"]) // 4, match["name"], bool(match["star"]), match["code"])
            )
    return rows


def test_every_error_class_is_drawn_once() -> None:
    classes = {
        name
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.GatewayError) and cls.__module__ == errors.__name__
    }
    names = [name for _, name, _, _ in drawn()]
    assert sorted(names) == sorted(classes)


def test_the_tree_is_the_hierarchy_and_the_codes_are_the_classes() -> None:
    parents: list[str] = []
    for depth, name, starred, code in drawn():
        cls = getattr(errors, name)
        del parents[depth:]
        if parents:
            assert cls.__mro__[1] is getattr(errors, parents[-1]) or (
                starred and issubclass(cls, getattr(errors, parents[-1]))
            ), f"{name} is drawn under {parents[-1]}"
        assert issubclass(cls, errors.UpstreamNotSent) is (starred or name == "UpstreamNotSent")
        assert cls.code == code, f"{name}: drawn {code}, is {cls.code}"
        parents.append(name)


def test_a_client_refused_for_a_moment_is_not_told_to_retry_now() -> None:
    # A slot 30 ms out once read as `retryAfter: 0.0`, and a polite client retried at once.
    def retry_after(seconds: float) -> Any:
        error = errors.ClientRateLimited("spent", provider="attio", retry_after=seconds)
        return error.extensions["retryAfter"]

    assert retry_after(0.03) == 0.1
    assert retry_after(0.0) == 0.1
    assert retry_after(1.23) == 1.3
    assert retry_after(2.0) == 2.0
    assert retry_after(0.3) == 0.3

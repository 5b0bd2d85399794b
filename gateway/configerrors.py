"""Configuration errors in plain words, each at the file and line of the key it is about.

    deploy/compose.toml:12: providers[1].base_ur: unknown key; did you mean `base_url`?

pydantic's messages speak of "inputs" and "models"; an operator wants the key, where it is,
and what it should be. tomllib keeps no line numbers, so `key_lines` finds them in the text
itself: good enough for TOML as people write it, and a message without a line otherwise.
A value is repeated in a message only when it is not a secret.

`ConfigError` carries them.
"""

from __future__ import annotations

import difflib
import os
import re
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeGuard, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_core import ErrorDetails

Loc = tuple[int | str, ...]


class ConfigError(Exception):
    """The configuration cannot be used; the message names the offending key."""


# A bare or quoted key, and dotted keys made of them.
_PART = re.compile(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""")
_DOTTED = rf"""(?:{_PART.pattern})(?:\s*\.\s*(?:{_PART.pattern}))*"""
_ARRAY_HEADER = re.compile(rf"\s*\[\[\s*({_DOTTED})\s*\]\]\s*(#.*)?")
_TABLE_HEADER = re.compile(rf"\s*\[\s*({_DOTTED})\s*\]\s*(#.*)?")
_KEY = re.compile(rf"\s*({_DOTTED})\s*=")
_STRING = re.compile(r""""(?:\\.|[^"\\])*"|'[^']*'""")

_EXPECTED = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "text",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}
_BOUNDS = {
    "greater_than_equal": ("ge", "must be at least"),
    "greater_than": ("gt", "must be more than"),
    "less_than_equal": ("le", "must be at most"),
    "less_than": ("lt", "must be less than"),
}


def _parts(dotted: str) -> list[str]:
    return [part.strip("\"'") for part in _PART.findall(dotted)]


def key_lines(text: str) -> dict[Loc, int]:
    """Line (from 1) of each table and key in TOML `text`, by the path pydantic reports.

    `[[providers]]` tables get their index (`("providers", 1, "kind")`); keys inside inline
    tables and multi-line arrays are not listed (their enclosing key is).
    """
    lines: dict[Loc, int] = {}
    arrays: dict[Loc, int] = {}  # tables in each array of tables so far
    table: Loc = ()
    depth = 0  # open brackets and braces of a value that spans lines
    in_string: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_string is not None:
            if line.count(in_string) % 2:
                in_string = None
            continue
        if depth == 0:
            if header := _ARRAY_HEADER.fullmatch(line):
                names = _parts(header[1])
                array = (*_resolve(names[:-1], arrays), names[-1])
                arrays[array] = arrays.get(array, 0) + 1
                table = (*array, arrays[array] - 1)
                lines.setdefault(array, number)
                lines[table] = number
                continue
            if header := _TABLE_HEADER.fullmatch(line):
                table = _resolve(_parts(header[1]), arrays)
                lines.setdefault(table, number)
                continue
            if key := _KEY.match(line):
                names = _parts(key[1])
                for end in range(1, len(names) + 1):
                    lines.setdefault((*table, *names[:end]), number)
        for quote in ('"""', "'''"):
            if line.count(quote) % 2:  # a multi-line string opens here
                in_string = quote
                line = line[: line.index(quote)]
        bare = _STRING.sub("", line).split("#", 1)[0]  # a `#` inside a string is no comment
        depth += bare.count("[") + bare.count("{") - bare.count("]") - bare.count("}")
        depth = max(depth, 0)
    return lines


def _resolve(names: Sequence[str], arrays: Mapping[Loc, int]) -> Loc:
    # A name that is an array of tables means its latest table, as in TOML.
    path: Loc = ()
    for name in names:
        path = (*path, name)
        if path in arrays:
            path = (*path, arrays[path] - 1)
    return path


def line_of(lines: Mapping[Loc, int], loc: Loc) -> int | None:
    """Line of `loc`, else of the nearest table or key that holds it; None at the top level."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def where(loc: Loc) -> str:
    """`providers[1].base_url` for `("providers", 1, "base_url")`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


def describe(
    error: ValidationError,
    model: type[BaseModel],
    path: Path | None = None,
    text: str = "",
    env_prefix: str = "",
) -> list[str]:
    """One line per problem in `error`, raised validating `model` from `path` (TOML `text`)."""
    lines = key_lines(text)
    problems: list[tuple[int, str]] = []
    for item in error.errors():
        loc = tuple(item["loc"])
        if item["type"] == "missing":  # a missing key has no line: its table has
            at, problem = loc[:-1], f"missing required key `{loc[-1]}` {_table(loc[:-1])}"
        else:
            at, problem = loc, _problem(item, model)
            problem = f"{where(loc)}: {problem}" if loc else problem
        origin = _origin(at, path, lines, env_prefix)
        line = line_of(lines, at) or 0
        problems.append((line, f"{origin}: {problem}" if origin else problem))
    # In the file's order, problems of the whole file first.
    return [problem for _, problem in sorted(problems, key=lambda pair: pair[0])]


def _origin(loc: Loc, path: Path | None, lines: Mapping[Loc, int], env_prefix: str) -> str:
    # The environment overrides the file, so a variable that is set is where the value came from.
    if env_prefix:
        names = []
        for part in loc:
            if isinstance(part, int):
                break
            names.append(part)
        present = {name.upper() for name in os.environ}
        for end in range(len(names), 0, -1):
            variable = (env_prefix + "__".join(names[:end])).upper()
            if variable in present:
                return f"environment variable {variable}"
    if path is None:
        return ""
    line = line_of(lines, loc)
    return f"{path}:{line}" if line is not None else str(path)


def _table(loc: Loc) -> str:
    names = ".".join(str(part) for part in loc if isinstance(part, str))
    if not names:
        return "at the top level"
    if loc and isinstance(loc[-1], int):
        return f"in [[{names}]] #{loc[-1] + 1}"
    return f"in [{names}]"


def _problem(item: ErrorDetails, model: type[BaseModel]) -> str:
    kind, loc, context = item["type"], tuple(item["loc"]), item.get("ctx", {})
    secret, annotation = _field(model, loc)
    if kind == "extra_forbidden":
        names = _names(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.6)
        return "unknown key" + (f"; did you mean `{close[0]}`?" if close else "")
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {_shown(item['input'], secret)}"
    if kind in _BOUNDS:
        name, words = _BOUNDS[kind]
        return f"{words} {_number(context[name])}"
    if kind == "literal_error":
        choices = [str(c) for c in get_args(_optional(annotation))] or [context["expected"]]
        got = item["input"]
        close = difflib.get_close_matches(got, choices, n=1) if isinstance(got, str) else []
        hint = f"; did you mean `{close[0]}`?" if close and not secret else ""
        return f"must be one of {', '.join(map(_quoted, choices))}, got {_shown(got, secret)}{hint}"
    if kind == "string_pattern_mismatch":
        return f"{_shown(item['input'], secret)} does not have the form `{context['pattern']}`"
    if kind == "string_too_short":
        least = context["min_length"]
        return "must not be empty" if least == 1 else f"must have at least {least} characters"
    if kind == "too_short":
        return f"needs at least {context['min_length']} items"
    if kind == "too_long":
        return f"takes at most {context['max_length']} items"
    if kind in ("value_error", "assertion_error"):
        return str(context.get("error", item["msg"]))
    return item["msg"]


def _number(bound: object) -> str:
    # Bounds of float fields come as 600.0: the file says 600.
    return str(int(bound)) if isinstance(bound, float) and bound.is_integer() else str(bound)


def _quoted(choice: str) -> str:
    return f'"{choice}"'


def _shown(value: object, secret: bool) -> str:
    if isinstance(value, bool):
        return "true or false" if secret else f"`{str(value).lower()}`"
    if isinstance(value, int | float):
        return "a number" if secret else f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return "text" if secret else f"text `{shown}`"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _field(model: type[BaseModel], loc: Loc) -> tuple[bool, Any]:
    """Whether the value at `loc` is (or is inside) a secret, and its type; an unknown place
    counts as secret."""
    annotation: Any = model
    for part in loc:
        annotation = _optional(annotation)
        if annotation is SecretStr:
            return True, annotation
        origin, args = get_origin(annotation), get_args(annotation)
        if origin is dict:
            annotation = args[1]
        elif origin is list and isinstance(part, int):
            annotation = args[0]
        elif origin is tuple and isinstance(part, int):
            annotation = args[min(part, len(args) - 1)]
        elif _is_model(annotation) and part in annotation.model_fields:
            annotation = annotation.model_fields[part].annotation
        else:
            return True, None
    annotation = _optional(annotation)
    return annotation is SecretStr or annotation is Any, annotation


def _optional(annotation: Any) -> Any:
    # `X | None` is X here: None is never the wrong value.
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation


def _names(model: type[BaseModel], loc: Loc) -> list[str]:
    _, annotation = _field(model, loc)
    annotation = _optional(annotation)
    return list(annotation.model_fields) if _is_model(annotation) else []


def _is_model(annotation: Any) -> TypeGuard[type[BaseModel]]:
    return (
        get_origin(annotation) is None
        and isinstance(annotation, type)
        and issubclass(annotation, BaseModel)
    )

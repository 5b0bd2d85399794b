"""Secrets in the configuration: read from the environment or from files, judged for strength,
and found where they sit inline in the config file.

Docker and Kubernetes hand secrets over as files (`/run/secrets/...`), so every variable the
configuration reads may instead name a file: `X_FILE` beside `X`, as the official images of
Postgres or MySQL do. A provider's `credentials_file` names files the same way.

Strength is zxcvbn's estimate of the guesses an attacker needs, not a list of known
placeholders: a secret copied from an example (`change-me-in-production`), a word or two
(`test-cursor-secret`) or a pattern (`0123456789abcdef`) all fall short of 10^16 guesses, as
much as 16 random characters take.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zxcvbn import zxcvbn

from gateway.configerrors import ConfigError

MIN_SECRET_LENGTH = 16
# log10 of the guesses a secret must take, by zxcvbn's estimate: 16 random characters.
MIN_GUESSES_LOG10 = 16
FILE_SUFFIX = "_FILE"
# Top-level settings that hold secrets: each may come from `CRM_GATEWAY_<KEY>_FILE`.
SECRET_SETTINGS = ("cursor_secret", "metrics_token", "redis_url")
# A secret file above this is not a secret but a mistake (a key bundle, a log).
MAX_SECRET_FILE = 64 * 1024
RANDOM_EXAMPLE = "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"


def weak_secret(value: str) -> str | None:
    """Why `value` is too weak to sign or guard anything, or None when it is strong enough."""
    if len(value) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters"
    # zxcvbn matches against dictionaries: only the first 100 characters count for speed,
    # and anything longer that is weak there is weak anyway.
    guesses = float(zxcvbn(value[:100])["guesses_log10"])
    if guesses < MIN_GUESSES_LOG10:
        return (
            f"is too easy to guess (about 10^{int(guesses)} guesses; it needs 10^"
            f"{MIN_GUESSES_LOG10}, as many as {MIN_SECRET_LENGTH} random characters)"
        )
    return None


def read_secret_file(where: str, path: str | Path) -> str:
    """The secret held in the file at `path` (one trailing newline dropped), which the key at
    `where` names."""
    file = Path(path)
    try:
        with file.open("rb") as handle:
            blob = handle.read(MAX_SECRET_FILE + 1)
    except FileNotFoundError:
        raise ConfigError(f"{where}: file {file} does not exist") from None
    except OSError as error:
        raise ConfigError(f"{where}: file {file} cannot be read ({error.strerror})") from None
    if len(blob) > MAX_SECRET_FILE:
        raise ConfigError(f"{where}: file {file} is larger than {MAX_SECRET_FILE} bytes")
    try:
        text = blob.decode()
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: file {file} is not UTF-8 text") from None
    value = text.removesuffix("\n").removesuffix("\r")
    if not value.strip():
        raise ConfigError(f"{where}: file {file} is empty")
    return value


def read_variable(where: str, variable: str) -> str:
    """The value of environment variable `variable`, which the key at `where` names, or of the
    file its `_FILE` variable names."""
    value = os.environ.get(variable)
    from_file = os.environ.get(variable + FILE_SUFFIX)
    if value is not None and from_file is not None:
        raise ConfigError(
            f"{where}: both {variable} and {variable}{FILE_SUFFIX} are set; set one of them"
        )
    if from_file is not None:
        return read_secret_file(f"{where} ({variable}{FILE_SUFFIX})", from_file)
    if value is None:
        raise ConfigError(
            f"{where}: environment variable {variable} is not set (nor {variable}{FILE_SUFFIX})"
        )
    if not value:
        raise ConfigError(f"{where}: environment variable {variable} is set but empty")
    return value


def file_variables(prefix: str) -> dict[str, str]:
    """The secret settings given as files: `<prefix><KEY>_FILE` for each of them."""
    values: dict[str, str] = {}
    for name in SECRET_SETTINGS:
        variable = f"{prefix}{name}".upper()
        path = os.environ.get(variable + FILE_SUFFIX)
        if path is None:
            continue
        if variable in os.environ:
            raise ConfigError(
                f"{name}: both {variable} and {variable}{FILE_SUFFIX} are set; set one of them"
            )
        values[name] = read_secret_file(f"{name} ({variable}{FILE_SUFFIX})", path)
    return values


def inline_secrets(document: Mapping[str, Any]) -> list[str]:
    """The keys of a parsed config file that hold a secret written into the file itself."""
    found = [name for name in SECRET_SETTINGS if isinstance(document.get(name), str)]
    if "@" not in str(document.get("redis_url", "@")):  # a URL with no password is no secret
        found.remove("redis_url")
    providers = document.get("providers")
    for index, table in enumerate(providers if isinstance(providers, list) else []):
        if not isinstance(table, Mapping):
            continue
        credentials = table.get("credentials")
        if isinstance(credentials, Mapping) and credentials:
            name = table.get("name", index)
            found += [f"providers.{name}.credentials.{key}" for key in sorted(credentials)]
    return found

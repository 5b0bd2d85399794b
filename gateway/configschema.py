"""The config file's JSON Schema, made from the settings models, for editors.

Taplo (Even Better TOML in VS Code, and the other editors it serves) reads a
`#:schema <path or URL>` line at the top of a TOML file and then completes keys,
shows their descriptions and marks typos. The models already say everything the
schema needs; what they cannot say in one model is per kind: which credentials a
`[[providers]]` table takes and which `options`, so each kind adds an if/then.
"""

from __future__ import annotations

from typing import Any

from gateway.providers import KINDS, provider
from gateway.settings import Settings

DRAFT = "https://json-schema.org/draft/2020-12/schema"
CREDENTIAL_KEYS = ("credentials", "credentials_env", "credentials_file")


def config_schema() -> dict[str, Any]:
    """The JSON Schema of a config file."""
    schema = Settings.model_json_schema()
    schema["$schema"] = DRAFT
    schema["title"] = "crm-gateway configuration"
    table = schema["$defs"]["ProviderSettings"]
    table["properties"]["kind"]["enum"] = list(KINDS)
    table["allOf"] = [_kind_rules(kind) for kind in KINDS]
    return schema


def _kind_rules(kind: str) -> dict[str, Any]:
    """What a `[[providers]]` table of `kind` may hold in its kind-specific keys."""
    source = provider(kind).source_class()
    names = {"enum": list(source.credentials_model.model_fields)}
    options = source.options_model.model_json_schema()
    options.pop("title", None)
    then: dict[str, Any] = {key: {"propertyNames": names} for key in CREDENTIAL_KEYS}
    then["options"] = options
    return {
        "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
        "then": {"properties": then},
    }

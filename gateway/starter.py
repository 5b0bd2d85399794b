"""`crm-gateway init`: a commented starter config, credentials read from the environment.

Every key it writes is one the settings accept (a test loads the output), and the first
line points editors at the schema written beside it (`crm-gateway config-schema`).
"""

from __future__ import annotations

from gateway.providers import provider

SCHEMA_FILE = "crm-gateway.schema.json"

_HEAD = """\
#:schema ./{schema}
# crm-gateway configuration: every key, with its description, is in {schema}
# (editors with Taplo / Even Better TOML complete keys and mark typos from it).
# Check it with `crm-gateway check --config {config}`, then
# `crm-gateway serve --config {config}`.
#
# Secrets never go in this file: credentials come from the environment variables named
# below (or from files: `credentials_file`, or `<VARIABLE>_FILE`), the cursor secret
# from CRM_GATEWAY_CURSOR_SECRET (random per process when unset; set it when you run
# several replicas), e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`.

default_page_size = 20       # items per page when a client asks for none
max_page_size = 100          # the most a client may ask for
max_operation_cost = 50      # upstream requests one operation may cost, estimated first
# graphiql = true            # the GraphQL IDE at GET /graphql (off in production)
# introspection = true       # answer __schema queries (off in production)
# redis_url = "redis://redis:6379/0"   # share caches and budgets between replicas

# Clients: with none, anyone who reaches the port may read and write every provider.
# [[clients]]
# name = "web"
# api_key_env = "WEB_CLIENT_API_KEY"   # the key it sends as X-API-Key
# providers = ["*"]
# scopes = ["read", "write"]
"""

_PROVIDER = """
[[providers]]
{name}
kind = "{kind}"
base_url = "{url}"
credentials_env = {{ {credentials} }}{options}
"""


def _variable(kind: str, credential: str) -> str:
    return f"{kind}_{credential}".upper()


def provider_table(kind: str) -> str:
    """One `[[providers]]` table of `kind`, its required credentials from the environment."""
    source = provider(kind).source_class()
    fields = source.credentials_model.model_fields
    one_of = getattr(source.credentials_model, "one_of", ())
    wanted = [n for n, f in fields.items() if f.is_required()] or list(one_of[:1])
    credentials = ", ".join(f'{name} = "{_variable(kind, name)}"' for name in wanted)
    options = "".join(
        f"\n# options = {{ {name} = {_toml(field.default)} }}   # kind-specific, not secret"
        for name, field in source.options_model.model_fields.items()
    )
    return _PROVIDER.format(
        name=f"{f'name = {_toml(kind)}':<29}# the `provider` argument in queries",
        kind=kind,
        url=source.api_url,
        credentials=credentials,
        options=options,
    )


def _toml(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value).lower()


def starter_config(kinds: list[str], config: str) -> str:
    """The starter config for `kinds`, written to a file named `config`."""
    head = _HEAD.format(schema=SCHEMA_FILE, config=config)
    return head + "".join(provider_table(kind) for kind in kinds)

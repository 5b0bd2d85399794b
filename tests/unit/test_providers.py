"""The provider registry: every list of kinds agrees with it, and a provider's parts are checked
where they are defined (its family's methods) or loaded (its settings)."""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import emulators
from gateway.datasources import OffsetSource, SequentialSource, source_class
from gateway.datasources.hooks import OFFSET_STYLES, PaginationStyle, ProviderCredentials
from gateway.datasources.redivis import RedivisOptions
from gateway.demo import DEMO_CREDENTIALS, DEMO_PORTS, demo_kinds, demo_settings
from gateway.providers import KINDS, PROVIDERS
from gateway.records import Link
from gateway.settings import ConfigError, load_settings
from tests.support.knowledge import knowledge


@pytest.mark.parametrize("kind", KINDS)
def test_every_registry_agrees(kind: str) -> None:
    entry = PROVIDERS[kind]
    cls = source_class(kind)
    assert cls.kind == kind
    family = OffsetSource if cls.style in OFFSET_STYLES else SequentialSource
    assert issubclass(cls, family)
    # The emulator exists and makes an app; its demo port is the registry's, and unique.
    assert callable(importlib.import_module(entry.emulator).create_app)
    assert DEMO_PORTS[kind] == entry.demo_port
    assert list(DEMO_PORTS.values()).count(entry.demo_port) == 1
    # The demo credentials satisfy the kind's own credentials model.
    cls.credentials_model.model_validate(DEMO_CREDENTIALS[kind])
    # One capabilities value: what the checks refuse is what it reports.
    caps = cls.describe()
    assert caps.entities == cls.entities
    assert caps.links == cls.links
    assert caps.writes == cls.writes
    assert caps.query_support == cls.query_support


def test_every_list_of_kinds_is_the_registry() -> None:
    # Every emulator in the emulators' package is one kind's (a kind's may live elsewhere).
    modules = [f"{emulators.__name__}.{m.name}" for m in pkgutil.iter_modules(emulators.__path__)]
    built = {m for m in modules if hasattr(importlib.import_module(m), "create_app")}
    assert built <= {entry.emulator for entry in PROVIDERS.values()}
    assert demo_kinds() == list(KINDS)
    assert [p.kind for p in demo_settings().providers] == list(KINDS)
    assert set(DEMO_PORTS) == set(DEMO_CREDENTIALS) == set(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_its_test_knowledge(kind: str) -> None:
    """The tests' own reading of each API (a kind without one would test nothing), for what
    the kind declares: ids of each entity, its contacts' companies where it links them."""
    known = knowledge(kind)
    caps = source_class(kind).describe()
    assert set(known.sample_ids) == set(known.unknown_ids) == caps.entities
    linked = Link.CONTACT_COMPANY in caps.links
    assert (known.contact_companies is not None) == (known.companies is not None) == linked


def _body(family: type[Any], style: PaginationStyle) -> dict[str, Any]:
    class Credentials(ProviderCredentials):
        token: str

    return {"kind": "new", "display_name": "New", "style": style, "credentials_model": Credentials}


@pytest.mark.parametrize(
    ("family", "style", "missing"),
    [
        (OffsetSource, PaginationStyle.PAGE_NUMBER, "fetch_offset"),
        (SequentialSource, PaginationStyle.CURSOR, "fetch_page"),
    ],
)
def test_a_provider_missing_a_family_method_fails_where_it_is_defined(
    family: type[Any], style: PaginationStyle, missing: str
) -> None:
    with pytest.raises(TypeError, match=missing):
        type("New", (family,), _body(family, style))


def test_a_provider_of_the_wrong_family_fails_where_it_is_defined() -> None:
    with pytest.raises(TypeError, match="SequentialSource"):
        type("New", (OffsetSource,), _body(OffsetSource, PaginationStyle.PAGE_TOKEN))


PROVIDER = """
[[providers]]
name = "p"
kind = "{kind}"
base_url = "https://example.com"
{extra}
"""


@pytest.mark.parametrize(
    ("kind", "extra", "named"),
    [
        ("redivis", 'options = { datset = "a.b" }', "datset"),
        ("redivis", 'options = { dataset = "a.b` --" }', "dataset"),
        ("basicsos", 'options = { token_role = "owner" }', "token_role"),
        ("attio", 'options = { dataset = "a.b" }', "dataset"),
        ("attio", 'credentials = { token = "x" }', "providers[0].credentials: `token`"),
    ],
)
def test_typed_settings_name_the_bad_field(
    tmp_path: Any, kind: str, extra: str, named: str
) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(PROVIDER.format(kind=kind, extra=extra))
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "providers[0]" in str(caught.value)
    assert named in str(caught.value)


def test_typed_options_reach_the_data_source(tmp_path: Any) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(
        PROVIDER.format(kind="basicsos", extra='options = { token_role = "member" }')
        + PROVIDER.replace('"p"', '"q"').format(
            kind="redivis", extra='options = { dataset = "x.y" }'
        )
    )
    basicsos, redivis = load_settings(path).providers
    member = source_class("basicsos")
    assert member.describe(member.options_model.model_validate(basicsos.options)).can_archive_deals
    assert not member.describe().can_archive_deals
    assert RedivisOptions.model_validate(redivis.options).dataset == "x.y"


def test_the_emulators_load_no_gateway_code_through_the_registry() -> None:
    """The registry names the data sources; building the emulators through it must not load
    them."""
    code = (
        "import sys\n"
        "from gateway.providers import KINDS, create_emulator\n"
        "for kind in KINDS: create_emulator(kind)\n"
        "print(sorted(m for m in sys.modules if m.startswith(("
        "'gateway.datasources', 'gateway.pagination', 'gateway.settings'))))\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"

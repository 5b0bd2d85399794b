"""`crm-gateway init` and `crm-gateway config-schema`: a starter that loads, a schema that
accepts real configs and marks what the settings refuse."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from gateway.cli import main
from gateway.configschema import config_schema
from gateway.demo import demo_settings
from gateway.providers import KINDS
from gateway.settings import ConfigError, load_settings
from gateway.starter import SCHEMA_FILE

ROOT = Path(__file__).resolve().parents[2]


def problems(document: dict[str, Any]) -> list[str]:
    validator = Draft202012Validator(config_schema())
    return [error.message for error in validator.iter_errors(document)]


def test_the_schema_is_valid_json_schema() -> None:
    Draft202012Validator.check_schema(config_schema())


def test_the_schema_accepts_the_demo_and_the_deployment_configs() -> None:
    demo = demo_settings().model_dump(mode="json", exclude_none=True)
    for table in demo["providers"]:  # SecretStr dumps masked; any string will do
        table["credentials"] = dict.fromkeys(table["credentials"], "x")
    demo.pop("cursor_secret", None)
    assert problems(demo) == []
    assert problems(tomllib.loads((ROOT / "deploy" / "compose.toml").read_text())) == []


@pytest.mark.parametrize(
    ("table", "mark"),
    [
        ({"base_ur": "https://x.io"}, "base_ur"),
        ({"kind": "atio"}, "atio"),
        ({"credentials_env": {"token": "ATTIO_TOKEN"}}, "token"),
        ({"options": {"dataset": "a.b"}}, "dataset"),
        ({"read_timeout": -1}, "-1"),
    ],
)
def test_the_schema_marks_what_the_settings_refuse(table: dict[str, Any], mark: str) -> None:
    provider = {"name": "crm", "kind": "attio", "base_url": "https://api.attio.com", **table}
    found = problems({"providers": [provider]})
    assert any(mark in problem for problem in found), found
    with pytest.raises(ConfigError, match=r"^providers\[0\]\."):  # the settings refuse it too
        load_settings(providers=[provider])


def test_config_schema_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config-schema"]) == 0
    assert json.loads(capsys.readouterr().out) == config_schema()


def test_init_writes_a_starter_that_loads_and_validates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "gateway.toml"
    assert main(["init", "--config", str(config)]) == 0
    text = config.read_text()
    assert text.startswith(f"#:schema ./{SCHEMA_FILE}\n")
    schema = json.loads((tmp_path / SCHEMA_FILE).read_text())
    assert schema == config_schema()
    assert problems(tomllib.loads(text)) == []
    settings = load_settings(config)
    assert [p.kind for p in settings.providers] == list(KINDS)
    for provider in settings.providers:  # credentials by environment variable only
        assert provider.credentials == {}
        assert provider.credentials_env
        for variable in provider.credentials_env.values():
            monkeypatch.setenv(variable, "a-value-for-the-test")
        assert provider.resolved_credentials()


def test_init_configures_the_kinds_asked_and_never_overwrites(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    assert main(["init", "--config", str(config), "--kind", "redivis", "--kind", "haste"]) == 0
    assert [p.kind for p in load_settings(config).providers] == ["redivis", "haste"]
    config.write_text("# mine\n")
    assert main(["init", "--config", str(config)]) == 2
    assert config.read_text() == "# mine\n"
    assert main(["init", "--config", str(config), "--force"]) == 0
    assert config.read_text().startswith("#:schema")
    with pytest.raises(ConfigError):
        load_settings(tmp_path / "missing.toml")

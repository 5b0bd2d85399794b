"""Config errors: file and line of the key, plain words, a guess for a near miss."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.app import create_app
from gateway.cli import main
from gateway.configerrors import key_lines, line_of
from gateway.settings import ConfigError, load_settings

GOOD = """\
max_page_size = 50

[[providers]]
name = "one"
kind = "revyops"
base_url = "https://api.revyops.com"
credentials_env = { client_id = "TEST_CONFIG_CLIENT_ID" }

[[providers]]
name = "two"
kind = "attio"
base_url = "https://api.attio.com"
read_timeout = 10

[[clients]]
name = "app"
api_key_env = "TEST_CONFIG_CLIENT_KEY"

[server]
max_connections = 64
"""


def error_of(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> str:
    """The message of loading `text` as ./gateway.toml, a path given relative."""
    (tmp_path / "gateway.toml").write_text(text)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_settings(Path("gateway.toml"))
    return str(caught.value)


def test_the_good_file_loads(tmp_path, monkeypatch):
    (tmp_path / "gateway.toml").write_text(GOOD)
    assert [p.name for p in load_settings(tmp_path / "gateway.toml").providers] == ["one", "two"]


def test_a_typo_names_file_line_and_the_key_meant(tmp_path, monkeypatch):
    message = error_of(tmp_path, monkeypatch, GOOD.replace("base_url", "base_ur"))
    assert message.splitlines() == [
        "gateway.toml:3: missing required key `base_url` in [[providers]] #1",
        "gateway.toml:6: providers[0].base_ur: unknown key; did you mean `base_url`?",
        "gateway.toml:9: missing required key `base_url` in [[providers]] #2",
        "gateway.toml:12: providers[1].base_ur: unknown key; did you mean `base_url`?",
    ]


def test_a_key_far_from_any_gets_no_guess(tmp_path, monkeypatch):
    message = error_of(tmp_path, monkeypatch, GOOD + "zebra = 1\n")
    assert message == "gateway.toml:21: server.zebra: unknown key"


def test_a_missing_key_names_its_table(tmp_path, monkeypatch):
    message = error_of(tmp_path, monkeypatch, GOOD.replace('kind = "attio"\n', ""))
    assert message == "gateway.toml:9: missing required key `kind` in [[providers]] #2"


def test_a_wrong_type_says_what_was_expected(tmp_path, monkeypatch):
    text = GOOD.replace("read_timeout = 10", 'read_timeout = "abc"')
    message = error_of(tmp_path, monkeypatch, text)
    assert (
        message == "gateway.toml:13: providers[1].read_timeout: expected a number, got text `abc`"
    )
    message = error_of(tmp_path, monkeypatch, GOOD.replace("= 64", "= [64]"))
    assert message == "gateway.toml:20: server.max_connections: expected a whole number, got a list"


def test_out_of_range_gives_the_bound(tmp_path, monkeypatch):
    message = error_of(
        tmp_path, monkeypatch, GOOD.replace("read_timeout = 10", "read_timeout = 900")
    )
    assert message == "gateway.toml:13: providers[1].read_timeout: must be at most 600"
    message = error_of(tmp_path, monkeypatch, GOOD.replace("= 50", "= 0"))
    assert message == "gateway.toml:1: max_page_size: must be at least 1"


def test_a_bad_choice_lists_the_allowed_values(tmp_path, monkeypatch):
    text = GOOD.replace(
        'api_key_env = "TEST_CONFIG_CLIENT_KEY"', 'scopes = ["raed"]\napi_key_env = "K"'
    )
    message = error_of(tmp_path, monkeypatch, text)
    assert message == (
        'gateway.toml:17: clients[0].scopes[0]: must be one of "read", "write", "ad_hoc", got '
        "text `raed`; did you mean `read`?"
    )


def test_an_unknown_credential_name_is_guessed(tmp_path, monkeypatch):
    text = GOOD.replace("{ client_id =", "{ clientid =")
    message = error_of(tmp_path, monkeypatch, text)
    assert message == (
        "gateway.toml:7: providers[0].credentials_env: `clientid` is not a credential of kind "
        "'revyops'; did you mean `client_id`?"
    )


def test_several_problems_are_all_listed_in_the_files_order(tmp_path, monkeypatch):
    text = (
        GOOD.replace("= 50", "= 5000").replace("= 64", "= 0").replace("read_timeout", "read_timout")
    )
    lines = error_of(tmp_path, monkeypatch, text).splitlines()
    assert [line.split(":")[1] for line in lines] == ["1", "13", "20"]
    assert "did you mean `read_timeout`?" in lines[1]


def test_a_syntax_error_gives_its_line(tmp_path, monkeypatch):
    message = error_of(tmp_path, monkeypatch, GOOD.replace('name = "two"', "name = two"))
    assert message.startswith("gateway.toml:10: ")
    assert "(at line" not in message


def test_a_value_from_the_environment_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_GATEWAY_SERVER__BODY_TIMEOUT", "-1")
    message = error_of(tmp_path, monkeypatch, GOOD)
    assert message == (
        "environment variable CRM_GATEWAY_SERVER__BODY_TIMEOUT: server.body_timeout: "
        "must be more than 0"
    )


@pytest.mark.parametrize(
    ("secrets", "named"),
    [
        ('cursor_secret = "a-secret-value-of-ours"\nredis_url = 12345\n', "redis_url"),
        ('cursor_secret = ["a-secret-value-of-ours"]\n', "cursor_secret"),
        ("metrics_token = 12345\n", "metrics_token"),
        ('metrics_token = "a-secret"\n', "metrics_token"),
        (
            '[[providers]]\nname = "x"\nkind = "attio"\nbase_url = "http://x"\n'
            "credentials = { api_key = 12345 }\n",
            "providers[0].credentials.api_key",
        ),
    ],
)
def test_no_message_shows_a_secret(tmp_path, monkeypatch, secrets, named):
    text = GOOD.replace("max_page_size = 50\n", "max_page_size = 0\n" + secrets)
    message = error_of(tmp_path, monkeypatch, text)
    assert "gateway.toml:1: max_page_size: must be at least 1" in message
    assert f": {named}: " in message
    assert "a-secret" not in message
    assert "12345" not in message


def test_an_unset_and_an_empty_variable_are_told_apart(tmp_path, monkeypatch):
    (tmp_path / "gateway.toml").write_text(
        GOOD.replace("[[clients]]", "[[ignored]]").split("[[ignored]]")[0]
    )
    settings = load_settings(tmp_path / "gateway.toml")
    where = "providers.one.credentials_env.client_id: environment variable TEST_CONFIG_CLIENT_ID"
    monkeypatch.delenv("TEST_CONFIG_CLIENT_ID", raising=False)
    with pytest.raises(
        ConfigError, match=f"^{where} is not set \\(nor TEST_CONFIG_CLIENT_ID_FILE\\)$"
    ):
        create_app(settings)
    monkeypatch.setenv("TEST_CONFIG_CLIENT_ID", "")
    with pytest.raises(ConfigError, match=f"^{where} is set but empty$"):
        create_app(settings)


def test_an_empty_client_key_variable_is_told_from_an_unset_one(tmp_path, monkeypatch):
    (tmp_path / "gateway.toml").write_text(GOOD)
    monkeypatch.setenv("TEST_CONFIG_CLIENT_ID", "an-id")
    [client] = load_settings(tmp_path / "gateway.toml").clients
    monkeypatch.delenv("TEST_CONFIG_CLIENT_KEY", raising=False)
    with pytest.raises(
        ConfigError, match=r"TEST_CONFIG_CLIENT_KEY is not set \(nor TEST_CONFIG_CLIENT_KEY_FILE\)$"
    ):
        client.resolved_key_digest()
    monkeypatch.setenv("TEST_CONFIG_CLIENT_KEY", "")
    with pytest.raises(ConfigError, match=r"TEST_CONFIG_CLIENT_KEY is set but empty$"):
        client.resolved_key_digest()


def test_the_cli_prints_file_and_line_and_fails(tmp_path, monkeypatch, capsys):
    (tmp_path / "bad.toml").write_text(GOOD.replace("max_connections", "max_conections"))
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--config", "bad.toml"]) == 2
    assert capsys.readouterr().err == (
        "crm-gateway: bad.toml:20: server.max_conections: unknown key; "
        "did you mean `max_connections`?\n"
    )


def test_key_lines_follow_tables_arrays_and_dotted_keys():
    text = """\
top = 1  # a comment with [brackets]
[[providers]]
name = "a#b"
rate_limits = [
  [10, 1.0],
  [100, 60]
]
notes = '''
[fake]
fake = 1
'''
[[providers]]
options.dataset = "x"
[[providers.extra]]
"quoted key" = 2
[ auth.jwt ]  # spaces
issuer = "i"
"""
    lines = key_lines(text)
    assert lines[("top",)] == 1
    assert lines[("providers", 0)] == 2
    assert lines[("providers", 0, "rate_limits")] == 4
    assert lines[("providers", 1)] == 12
    assert lines[("providers", 1, "options", "dataset")] == 13
    assert lines[("providers", 1, "extra", 0, "quoted key")] == 15
    assert lines[("auth", "jwt", "issuer")] == 17
    assert ("fake",) not in lines
    assert ("providers", 0, "fake") not in lines
    assert not any(10 in loc or 100 in loc for loc in lines if loc[-1] != 0)
    assert line_of(lines, ("providers", 0, "rate_limits", 1, 0)) == 4
    assert line_of(lines, ("auth", "jwt", "audience")) == 16
    assert line_of(lines, ("nowhere",)) is None
    assert line_of(lines, ()) is None

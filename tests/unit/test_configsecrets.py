"""Secrets: read from files, judged by how guessable they are, warned about when inline."""

from __future__ import annotations

import base64
import logging
import random
from pathlib import Path

import pytest

from gateway.configerrors import ConfigError
from gateway.configsecrets import read_variable, weak_secret
from gateway.settings import ProviderSettings, load_settings, warn_inline_secrets

STRONG = "3kD9-vQx2_LmZ7pRt8WcYb"


@pytest.mark.parametrize(
    "value",
    [
        "change-me-in-production",
        "your-secret-here",
        "insecure-cursor-secret",
        "test-cursor-secret",
        "passwordpassword",
        "aaaaaaaaaaaaaaaaaaaaaaaa",
        "0123456789abcdef0123",
        "qwertyuiopasdfghjkl",
        "short-Xy9",
    ],
)
def test_words_patterns_examples_and_short_values_are_weak(value: str) -> None:
    assert weak_secret(value) is not None


def test_sixteen_random_bytes_or_more_are_strong() -> None:
    # What `secrets.token_urlsafe` makes, drawn from a fixed seed so the run repeats.
    draw = random.Random(20261208)
    for size in range(16, 49):
        for _ in range(4):
            token = base64.urlsafe_b64encode(draw.randbytes(size)).decode().rstrip("=")
            assert weak_secret(token) is None, token


def test_a_weak_cursor_secret_stops_start_up_without_repeating_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CRM_GATEWAY_CURSOR_SECRET", "test-cursor-secret")
    with pytest.raises(ConfigError, match=r"cursor_secret.*too easy to guess") as refused:
        load_settings()
    assert "test-cursor-secret" not in str(refused.value)


def test_a_variable_may_name_a_file_instead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "token"
    secret.write_text(STRONG + "\n")
    monkeypatch.delenv("TEST_SECRET_TOKEN", raising=False)
    monkeypatch.setenv("TEST_SECRET_TOKEN_FILE", str(secret))
    assert read_variable("providers.crm.credentials_env.token", "TEST_SECRET_TOKEN") == STRONG
    monkeypatch.setenv("TEST_SECRET_TOKEN", STRONG)
    with pytest.raises(ConfigError, match="both TEST_SECRET_TOKEN and TEST_SECRET_TOKEN_FILE"):
        read_variable("where", "TEST_SECRET_TOKEN")


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "does not exist"), ("", "is empty"), ("\n", "is empty"), (b"\xff\xfe", "UTF-8")],
)
def test_an_unusable_secret_file_names_the_key_and_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | bytes | None, problem: str
) -> None:
    path = tmp_path / "token"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    monkeypatch.delenv("TEST_SECRET_TOKEN", raising=False)
    monkeypatch.setenv("TEST_SECRET_TOKEN_FILE", str(path))
    with pytest.raises(
        ConfigError, match=f"^the.key \\(TEST_SECRET_TOKEN_FILE\\): file .*{problem}"
    ):
        read_variable("the.key", "TEST_SECRET_TOKEN")


def test_top_level_secrets_come_from_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cursor").write_text(STRONG + "\n")
    monkeypatch.delenv("CRM_GATEWAY_CURSOR_SECRET", raising=False)
    monkeypatch.setenv("CRM_GATEWAY_CURSOR_SECRET_FILE", str(tmp_path / "cursor"))
    settings = load_settings()
    assert settings.cursor_secret is not None
    assert settings.cursor_secret.get_secret_value() == STRONG
    monkeypatch.setenv("CRM_GATEWAY_CURSOR_SECRET", STRONG)
    with pytest.raises(ConfigError, match=r"^cursor_secret: both CRM_GATEWAY_CURSOR_SECRET and"):
        load_settings()


def provider(**credentials: dict[str, str]) -> ProviderSettings:
    return ProviderSettings.model_validate(
        {"name": "crm", "kind": "basicsos", "base_url": "https://crm.example.com", **credentials}
    )


def test_credentials_come_from_files(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(STRONG + "\r\n")
    settings = provider(credentials_file={"token": str(tmp_path / "token")})
    assert settings.resolved_credentials() == {"token": STRONG}
    missing = provider(credentials_file={"token": str(tmp_path / "nothing")})
    with pytest.raises(ConfigError, match=r"^providers\.crm\.credentials_file\.token: file"):
        missing.resolved_credentials()


def test_a_credential_given_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"more than once.*: token"):
        provider(credentials={"token": STRONG}, credentials_file={"token": str(tmp_path)})
    with pytest.raises(ValueError, match="did you mean `token`"):
        provider(credentials_file={"tokn": str(tmp_path)})


def test_secrets_written_into_the_file_are_named_in_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CRM_GATEWAY_CURSOR_SECRET", raising=False)
    path = tmp_path / "gateway.toml"
    path.write_text(
        f'cursor_secret = "{STRONG}"\nredis_url = "redis://redis:6379/0"\n'
        '[[providers]]\nname = "crm"\nkind = "basicsos"\nbase_url = "https://crm.example.com"\n'
        f'credentials = {{ token = "{STRONG}" }}\n'
    )
    with caplog.at_level(logging.WARNING, logger="gateway.config"):
        settings = load_settings(path)
        assert caplog.messages == []  # said when the gateway starts, once logging is set up
        warn_inline_secrets(settings.model_copy(update={"graphiql": True}))
    [warning] = caplog.messages
    assert "cursor_secret, providers.crm.credentials.token." in warning
    assert "redis_url" not in warning  # no password in it
    assert STRONG not in warning
    caplog.clear()
    path.write_text('[[providers]]\nname = "crm"\nkind = "basicsos"\nbase_url = "https://x.io"\n')
    with caplog.at_level(logging.WARNING, logger="gateway.config"):
        warn_inline_secrets(load_settings(path))
    assert caplog.messages == []

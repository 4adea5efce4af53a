"""Secrets: refused when weak outside the embedded setup, HKDF keys, rotation of stored tokens."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from typer.testing import CliRunner

import cli
from cli import app
from core.companies import add_company, company_token, rotate_tokens
from core.crypto import decrypt_token, encrypt_token, is_current
from core.db import make_engine
from core.errors import SyncError
from core.models import Company
from core.settings import (
    DEV_SECRET_KEY,
    Settings,
    SettingsError,
    require_secrets,
    token_key_problem,
)
from tests.support.services import make_services, make_settings

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "k" * 40
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/never-connected"


def _legacy_ciphertext(token: str, secret_key: str) -> str:
    """A token as the first release stored it: Fernet under one SHA-256 of SECRET_KEY."""
    digest = hashlib.sha256(("tinysync-token-key:" + secret_key).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest)).encrypt(token.encode()).decode()


#: Every setup but the embedded default: PostgreSQL (with the sandbox or the real Tiny), and
#: SQLite with a real Tiny (the real API, or a sandbox over HTTP, whose tokens look real).
NOT_EMBEDDED = [
    pytest.param({"DATABASE_URL": PG_URL, "TINY_API_URL": "sandbox"}, id="postgresql+sandbox"),
    pytest.param({"DATABASE_URL": PG_URL}, id="postgresql+tiny"),
    pytest.param({"DATABASE_URL": "sqlite:///local.db"}, id="sqlite+tiny"),
    pytest.param(
        {"DATABASE_URL": "sqlite:///local.db", "TINY_API_URL": "http://127.0.0.1:8800/api2"},
        id="sqlite+http-sandbox",
    ),
]


def _environment(monkeypatch, tmp_path, values: dict[str, str]) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    for name in ("DATABASE_URL", "SECRET_KEY", "TINY_API_URL", "SYNC_ADMIN_TOKEN", "CRON_SECRET"):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("setup", NOT_EMBEDDED)
@pytest.mark.parametrize(
    "key",
    [None, DEV_SECRET_KEY, "change-me-to-a-long-random-string", "short-but-random-31-chars-xxxxx"],
)
def test_a_deployment_refuses_a_weak_secret_key(monkeypatch, tmp_path, setup, key):
    _environment(monkeypatch, tmp_path, setup if key is None else {**setup, "SECRET_KEY": key})
    with pytest.raises(SettingsError, match="SECRET_KEY .*secrets.token_urlsafe"):
        cli.wsgi_app()
    served = runner.invoke(app, ["serve"])
    assert served.exit_code == 2
    assert "SECRET_KEY" in served.output and "Traceback" not in served.output


@pytest.mark.parametrize("setup", NOT_EMBEDDED)
@pytest.mark.parametrize("name", ["SYNC_ADMIN_TOKEN", "CRON_SECRET"])
def test_a_deployment_refuses_the_placeholders_of_env_example(monkeypatch, tmp_path, setup, name):
    _environment(monkeypatch, tmp_path, {**setup, "SECRET_KEY": GOOD_KEY, name: "change-me"})
    with pytest.raises(SettingsError, match=name):
        cli.wsgi_app()


def test_env_example_copied_unchanged_is_refused(monkeypatch, tmp_path):
    """`cp .env.example .env` and nothing else: SQLite, the real Tiny, every placeholder."""
    _environment(monkeypatch, tmp_path, {})
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    served = runner.invoke(app, ["serve"])
    assert served.exit_code == 2
    assert "SECRET_KEY" in served.output and "Traceback" not in served.output


@pytest.mark.parametrize("setup", NOT_EMBEDDED)
@pytest.mark.parametrize("command", ["worker", "beat"])
def test_worker_and_beat_refuse_the_development_key(monkeypatch, tmp_path, setup, command):
    _environment(monkeypatch, tmp_path, {**setup, "CELERY_BROKER_URL": "redis://127.0.0.1:1/0"})
    result = runner.invoke(app, [command])
    assert result.exit_code == 2
    assert "SECRET_KEY" in result.output


def test_the_embedded_default_starts_with_no_configuration(monkeypatch, tmp_path):
    # SQLite (the default database) with the in-process sandbox: no real token can be stored.
    _environment(monkeypatch, tmp_path, {"TINY_API_URL": "sandbox"})
    app_ = cli.wsgi_app()
    assert app_.test_client().get("/api/ping").status_code == 200
    assert app_.extensions["tinysync"].settings.secret_key == DEV_SECRET_KEY
    app_.extensions["tinysync"].close()
    assert require_secrets(Settings(tiny_api_url="sandbox")).secret_key == DEV_SECRET_KEY
    # The same with the real Tiny is not the embedded default any more.
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        require_secrets(Settings())


def test_tokens_are_encrypted_under_hkdf_and_old_keys_still_decrypt():
    new = encrypt_token("tok-1", [GOOD_KEY, "old-key"])
    assert is_current(new, GOOD_KEY)
    assert decrypt_token(new, GOOD_KEY) == "tok-1"
    # Not the first release's derivation any more.
    assert not is_current(_legacy_ciphertext("tok-1", GOOD_KEY), GOOD_KEY)
    assert decrypt_token(_legacy_ciphertext("tok-1", GOOD_KEY), GOOD_KEY) == "tok-1"
    under_old = encrypt_token("tok-2", "old-key")
    assert decrypt_token(under_old, [GOOD_KEY, "old-key"]) == "tok-2"
    with pytest.raises(SyncError, match="SECRET_KEY_FALLBACKS"):
        decrypt_token(under_old, GOOD_KEY)


def test_rotate_re_encrypts_every_token_under_the_new_key(db_url, sandbox):
    old = make_settings(db_url, secret_key="the-old-secret-key")
    services = make_services(old, sandbox)
    with services.session_factory() as session:
        first = add_company(session, old, name="A", token="tok-a")
        legacy = add_company(session, old, name="B", token="tok-b")
        legacy.tinyTokenEncrypted = _legacy_ciphertext("tok-b", "the-old-secret-key")
        session.commit()
        first_id = first.id
    services.close()

    new = old.with_(secret_key=GOOD_KEY, secret_key_fallbacks="unrelated, the-old-secret-key")
    assert new.secret_keys == (GOOD_KEY, "unrelated", "the-old-secret-key")
    services = make_services(new, sandbox)
    with services.session_factory() as session:
        assert rotate_tokens(session, new) == (2, 0)
        session.commit()
        assert rotate_tokens(session, new) == (0, 2)
    only_new = new.with_(secret_key_fallbacks=None)
    with services.session_factory() as session:
        tokens = {c.name: company_token(c, only_new) for c in session.scalars(select(Company))}
        assert tokens == {"A": "tok-a", "B": "tok-b"}
        assert session.get(Company, first_id).tinyTokenEncrypted
    services.close()


def test_the_rotate_command_says_what_it_did(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'r.db'}")
    monkeypatch.setenv("TINY_API_URL", "sandbox")
    monkeypatch.setenv("SECRET_KEY", "old-secret")
    assert runner.invoke(app, ["company", "add", "--name", "A", "--token", "t-1"]).exit_code == 0
    monkeypatch.setenv("SECRET_KEY", GOOD_KEY)
    monkeypatch.setenv("SECRET_KEY_FALLBACKS", "old-secret")
    result = runner.invoke(app, ["secrets", "rotate"])
    assert result.exit_code == 0, result.output
    assert "1 token(s) re-encrypted" in result.output
    monkeypatch.delenv("SECRET_KEY_FALLBACKS")
    assert (
        "0 token(s) re-encrypted under SECRET_KEY, 1 already current"
        in runner.invoke(app, ["secrets", "rotate"]).output
    )


def test_a_real_tiny_token_is_never_stored_under_a_weak_key(monkeypatch, tmp_path):
    # SQLite and the real Tiny, no SECRET_KEY: the command line would store the token under
    # the public development key; it refuses, stores nothing, and says how to make a key.
    _environment(monkeypatch, tmp_path, {"DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}"})
    refused = runner.invoke(app, ["company", "add", "--name", "A", "--token", "real-token"])
    assert refused.exit_code != 0
    assert "SECRET_KEY" in refused.output and "secrets.token_urlsafe" in refused.output
    assert "Traceback" not in refused.output
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    with engine.connect() as conn:
        assert conn.execute(select(Company.id)).all() == []  # nothing written
    engine.dispose()
    monkeypatch.setenv("SECRET_KEY", GOOD_KEY)
    stored = runner.invoke(app, ["company", "add", "--name", "A", "--token", "real-token"])
    assert stored.exit_code == 0, stored.output
    # The in-process sandbox's made-up tokens may be stored under the development key.
    assert token_key_problem(Settings(tiny_api_url="sandbox")) is None
    assert "SECRET_KEY" in (token_key_problem(Settings(database_url=PG_URL)) or "")


def test_serving_the_demos_database_with_the_real_tiny_says_how_to_use_the_sandbox(
    monkeypatch, tmp_path
):
    _environment(monkeypatch, tmp_path, {})
    served = runner.invoke(app, ["serve"])
    assert served.exit_code == 2
    assert "TINY_API_URL=sandbox" in " ".join(served.output.split())

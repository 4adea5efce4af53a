"""The app factory: what it needs, what it builds, and what it refuses."""

from __future__ import annotations

import pytest

from api import create_app
from core.settings import Settings
from tests.support.api import AUTH, api_settings


def test_the_factory_refuses_the_sandbox_without_services_and_says_what_to_use(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", tiny_api_url="sandbox")
    with pytest.raises(ValueError, match=r"cli\.wsgi_app\(\)"):
        create_app(settings)


def test_the_factory_builds_its_own_services_from_settings(tmp_path):
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'x.db'}", sync_admin_token="t", secret_key="k"
    )
    app = create_app(settings)
    services = app.extensions["tinysync"]
    assert services.settings is settings
    assert app.config["MAX_CONTENT_LENGTH"] == settings.max_request_bytes
    assert "ui" in app.blueprints
    services.close()


def test_the_factory_refuses_settings_that_differ_from_its_services(api_services):
    with pytest.raises(ValueError, match="differ"):
        create_app(api_services.settings.with_(cron_secret="other"), services=api_services)


def test_the_factory_reads_the_environment_when_given_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    monkeypatch.setenv("SYNC_ADMIN_TOKEN", "from-env")
    monkeypatch.setenv("TINY_API_URL", "https://tiny.invalid/api2")
    app = create_app()
    assert app.extensions["tinysync"].settings.sync_admin_token == "from-env"
    app.extensions["tinysync"].close()


def test_cli_wsgi_app_serves_with_the_in_process_sandbox(tmp_path, monkeypatch, db_url):
    import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("TINY_API_URL", "sandbox")
    monkeypatch.setenv("SYNC_ADMIN_TOKEN", "from-env")
    monkeypatch.setenv("SECRET_KEY", "a-deployment-secret-of-32-chars-or-more")
    app = cli.wsgi_app()
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/admin/companies", headers=AUTH).status_code == 401
    ok = client.get("/api/admin/companies", headers={"Authorization": "Bearer from-env"})
    assert ok.status_code == 200
    app.extensions["tinysync"].close()


def test_the_session_key_is_not_the_token_encryption_key(db_url, sandbox):
    from tests.support.services import make_services

    services = make_services(api_settings(db_url), sandbox)
    app = create_app(services=services)
    assert app.secret_key and app.secret_key != services.settings.secret_key
    services.close()

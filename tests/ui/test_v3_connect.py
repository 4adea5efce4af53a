"""A v3 company in Chromium: "Conectar ao Tiny" goes through the sandbox's authorisation page
and back; a Por Mês sync of it then ends DONE equal to the sandbox's truth, beside a v2 company
synced the same month; a company that needs reconnecting shows the banner with the button,
and connecting again clears it."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from werkzeug.serving import make_server

from core.models import Company
from core.runs import RunStatus, create_run, get_run, start_run
from tests.support.processes import free_port
from tests.support.services import step_until_done
from tests.support.truth import mismatches
from tests.support.ui import UI_SPEC, LiveApp, running_app
from tests.support.v3 import add_v3_company, v3_spec
from tests.ui.test_sync_ui import RUN_TIMEOUT_MS, expect, modal_status, sign_in, start_month_sync

pytestmark = pytest.mark.browser

V3_TOKEN = "tok-ui-v3"
AUTH_PATH = "/realms/tiny/protocol/openid-connect/auth"


@pytest.fixture
def v3_app(tmp_path: Path, browser: Any) -> Iterator[tuple[LiveApp, str, str]]:
    """The app, and the sandbox served to the browser too (its authorisation page); yields
    (app, v3 company id, client id)."""
    port = free_port()
    with running_app(
        tmp_path / "v3", tiny_v3_auth_url=f"http://127.0.0.1:{port}{AUTH_PATH}"
    ) as app:
        tiny = make_server("127.0.0.1", port, app.sandbox, threaded=True)
        thread = threading.Thread(target=tiny.serve_forever, name="tiny", daemon=True)
        thread.start()
        company, client = add_v3_company(
            app.services,
            app.sandbox,
            V3_TOKEN,
            v3_spec(**UI_SPEC),
            redirect_uri=app.url + "/oauth/tiny/callback",
        )
        try:
            yield app, company, client
        finally:
            tiny.shutdown()
            thread.join(timeout=10)


@pytest.fixture
def v3_page(browser: Any, v3_app: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="pt-BR")
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    yield page
    context.close()
    assert not errors, errors


def _connect(page: Any, app: LiveApp, company: str) -> None:
    page.get_by_role("link", name="Conectar ao Tiny").click()
    expect()(page).to_have_url(re.compile(re.escape(AUTH_PATH)))
    expect()(page.locator("h1")).to_have_text("Autorizar acesso")
    page.get_by_role("button", name="Autorizar").click()
    expect()(page).to_have_url(re.compile(rf"/relatorios\?companyId={company}&conectado=1"))
    expect()(page.locator("#connected-notice")).to_have_text("Conectado ao Tiny (API v3).")


def test_connect_then_a_month_sync_of_a_v3_company_equals_the_truth_beside_a_v2_one(
    v3_page: Any, v3_app: Any
) -> None:
    page = v3_page
    app, company, client = v3_app
    sign_in(page, app, f"/relatorios?companyId={company}")
    expect()(page.locator("#connect-hint")).to_contain_text("ainda não foi conectada")
    _connect(page, app, company)
    assert app.sandbox.oauth_counters(client)["authorization_code"] == 1

    start_month_sync(page, app)
    expect()(modal_status(page)).to_have_text("Concluída com sucesso", timeout=RUN_TIMEOUT_MS)
    run_id = page.locator("#sync-modal").get_attribute("data-run-id")
    with app.services.session_factory() as session:
        run = get_run(session, run_id)
        assert run.status == RunStatus.DONE and run.companyId == company
    found = mismatches(
        app.services.session_factory, app.sandbox, V3_TOKEN, company, app.month_start, app.month_end
    )
    assert found == []

    # The v2 company beside it, the same month.
    with app.services.session_factory() as session:
        v2_run = create_run(
            session,
            app.services.settings,
            company_id=app.company_id,
            mode="period",
            month=app.month,
        )
        start_run(session, v2_run.id)
    assert step_until_done(app.services, v2_run.id).status == RunStatus.DONE
    found = mismatches(
        app.services.session_factory,
        app.sandbox,
        app.token,
        app.company_id,
        app.month_start,
        app.month_end,
    )
    assert found == []


def test_a_company_that_needs_reconnecting_shows_the_banner_until_connected_again(
    v3_page: Any, v3_app: Any
) -> None:
    page = v3_page
    app, company, _client = v3_app
    with app.services.session_factory() as session:
        session.execute(
            update(Company)
            .where(Company.id == company)
            .values(needsReconnect=True, needsReconnectReason="Token is not active")
        )
        session.commit()
    sign_in(page, app, f"/relatorios?companyId={company}")
    banner = page.locator("#reconnect-banner")
    expect()(banner).to_contain_text("precisa reconectar ao Tiny")
    expect()(banner).to_contain_text("Token is not active")
    _connect(page, app, company)
    expect()(page.locator("#reconnect-banner")).to_have_count(0)
    with app.services.session_factory() as session:
        stored = session.get(Company, company)
        assert stored is not None and not stored.needsReconnect

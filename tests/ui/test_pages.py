"""The UI's server side without a browser: sign-in, cross-site protection, pages, formatting."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from api.ui.format import (
    RUN_STATUS_LABELS,
    format_brl,
    format_day,
    format_duration,
    format_number,
    month_label,
)
from core.models import Payable, SalesOrder, StockItem
from core.reports import today_in_brazil
from core.runs import RunStatus, cancel_run, create_run
from core.services import Services
from sandbox import Sandbox
from tests.support.services import make_services, make_settings, new_company

TOKEN = "page-admin-token"


@pytest.fixture
def services(sqlite_url: str, sandbox: Sandbox) -> Iterator[Services]:
    svc = make_services(make_settings(sqlite_url, sync_admin_token=TOKEN), sandbox)
    yield svc
    svc.close()


@pytest.fixture
def app(services: Services) -> Flask:
    return create_app(services=services)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def company(services: Services, sandbox: Sandbox) -> str:
    return new_company(services, sandbox, "tok-pages")


def login_form_token(client: FlaskClient) -> str:
    page = client.get("/entrar").get_data(as_text=True)
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def sign_in(client: FlaskClient, token: str = TOKEN, next_url: str = "") -> Any:
    form = {"csrf": login_form_token(client), "token": token, "next": next_url}
    return client.post("/entrar", data=form, headers={"Origin": "http://localhost"})


def page_csrf(client: FlaskClient) -> str:
    page = client.get("/relatorios").get_data(as_text=True)
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    assert match, page
    return match.group(1)


# -- sign-in ----------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/relatorios", "/historico", "/historico/some-run"])
def test_pages_send_a_visitor_who_has_not_signed_in_to_the_sign_in_page(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/entrar?next={path}"


def test_the_admin_token_signs_in_with_an_httponly_samesite_session_cookie(client, company):
    response = sign_in(client, next_url="/historico")
    assert response.status_code == 302
    assert response.headers["Location"] == "/historico"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/relatorios").status_code == 200
    with client.session_transaction() as session:
        assert session["admin"] is True
        assert len(session["csrf"]) >= 32
        assert "login_csrf" not in session  # a fresh session after signing in


def test_a_wrong_token_does_not_sign_in(client):
    response = sign_in(client, token="not-the-token")
    assert response.status_code == 401
    assert "Token de administrador inválido" in response.get_data(as_text=True)
    assert client.get("/relatorios").status_code == 302


def test_the_sign_in_form_refuses_posts_from_another_site(client):
    form_token = login_form_token(client)
    form = {"csrf": form_token, "token": TOKEN}
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
    ):
        response = client.post("/entrar", data=form, headers=headers)
        assert response.status_code == 400, headers
    # A page on another site cannot read the form token, so it posts without (or a wrong) one.
    assert client.post("/entrar", data={"token": TOKEN}).status_code == 400
    assert client.post("/entrar", data={"token": TOKEN, "csrf": "guess"}).status_code == 400
    assert client.get("/relatorios").status_code == 302


def test_sign_in_never_redirects_to_another_site(client):
    for target in ("//evil.example/x", "https://evil.example", "/\\evil.example", "relatorios"):
        response = sign_in(client, next_url=target)
        assert response.headers["Location"] == "/relatorios", target
        client.post("/sair", data={"csrf": page_csrf(client)})


def test_sign_out_needs_the_page_token_and_ends_the_session(client, company):
    sign_in(client)
    assert client.post("/sair", data={"csrf": "wrong"}).status_code == 400
    assert client.get("/relatorios").status_code == 200
    response = client.post("/sair", data={"csrf": page_csrf(client)})
    assert response.headers["Location"] == "/entrar"
    assert client.get("/relatorios").status_code == 302


def test_without_an_admin_token_configured_nobody_signs_in(sqlite_url, sandbox):
    svc = make_services(make_settings(sqlite_url), sandbox)
    try:
        client = create_app(services=svc).test_client()
        assert "não tem <code>SYNC_ADMIN_TOKEN</code>" in client.get("/entrar").get_data(True)
        assert sign_in(client, token="").status_code == 503
    finally:
        svc.close()


def test_the_signed_in_session_writes_to_the_api_only_with_the_csrf_header(client, company):
    sign_in(client)
    body = {"companyId": company, "mode": "incremental"}
    assert client.post("/api/admin/sync/v2/create", json=body).status_code == 403
    response = client.post(
        "/api/admin/sync/v2/create", json=body, headers={"X-CSRF-Token": page_csrf(client)}
    )
    assert response.status_code == 200, response.get_json()
    assert client.get("/api/admin/companies").status_code == 200


# -- pages ------------------------------------------------------------------------------
def test_pages_carry_a_strict_content_security_policy_and_are_not_cached(client, company):
    sign_in(client)
    response = client.get("/relatorios")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "<script>" not in response.get_data(as_text=True)  # no inline script to allow


def test_the_reports_page_renders_the_executor_and_the_active_run(client, services, company):
    sign_in(client)
    page = client.get(f"/relatorios?companyId={company}").get_data(as_text=True)
    assert '"executor": "inline"' in page and '"activeRunId": null' in page
    with services.session_factory() as session:
        run = create_run(session, services.settings, company_id=company, mode="incremental")
    page = client.get(f"/relatorios?companyId={company}").get_data(as_text=True)
    assert f'"activeRunId": "{run.id}"' in page


def test_the_reports_page_without_companies_says_how_to_add_one(client):
    sign_in(client)
    page = client.get("/relatorios").get_data(as_text=True)
    assert "Nenhuma empresa cadastrada" in page and "tinysync company add" in page


def test_the_reports_page_refuses_an_unknown_company_and_falls_back_on_a_bad_month(client, company):
    sign_in(client)
    assert client.get("/relatorios?companyId=nope").status_code == 404
    page = client.get(f"/relatorios?companyId={company}&month=2024-13").get_data(as_text=True)
    assert "Mês inválido" in page
    page = client.get(f"/relatorios?companyId={company}&lowStock=abc").get_data(as_text=True)
    assert "Saldo baixo inválido" in page


def test_the_reports_page_shows_overdue_bills_and_low_stock(client, services, company):
    today = today_in_brazil()
    with services.session_factory() as session:
        session.add_all(
            [
                SalesOrder(
                    companyId=company,
                    tinyId=1,
                    dataPedido=today,
                    valor=Decimal("1234.5"),
                    situacao="Aprovado",
                ),
                Payable(
                    companyId=company,
                    tinyId=2,
                    dataVencimento=today - timedelta(days=3),
                    valor=Decimal("99.90"),
                    saldo=Decimal("99.90"),
                    situacao="aberto",
                ),
                StockItem(
                    companyId=company, tinyId=3, nome="Caneca", situacao="A", saldo=Decimal("2")
                ),
            ]
        )
        session.commit()
    sign_in(client)
    page = client.get(f"/relatorios?companyId={company}").get_data(as_text=True)
    assert 'id="kpi-total">R$\u00a01.234,50<' in page
    assert '<tr class="overdue">' in page and "Vencido" in page
    assert 'id="payables-overdue">R$\u00a099,90<' in page
    assert '<tr class="stock-low">' in page and "Baixo" in page


def test_the_history_is_paged_newest_first_and_each_run_has_its_page(client, services, company):
    ids = []
    with services.session_factory() as session:
        for _ in range(27):
            run = create_run(session, services.settings, company_id=company, mode="incremental")
            cancel_run(session, run.id)
            ids.append(run.id)
    sign_in(client)
    first = client.get("/historico").get_data(as_text=True)
    shown = re.findall(r'data-run-id="([^"]+)"', first)
    assert shown == ids[::-1][:25]
    older = re.search(r'href="(/historico\?[^"]*before=[^"]+)" id="older-runs"', first)
    assert older
    second = client.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert re.findall(r'data-run-id="([^"]+)"', second) == ids[::-1][25:]
    filtered = client.get("/historico?status=DONE").get_data(as_text=True)
    assert "Nenhuma execução encontrada" in filtered
    detail = client.get(f"/historico/{ids[0]}")
    assert detail.status_code == 200
    text = detail.get_data(as_text=True)
    assert "Cancelada" in text and "canceled" in text and 'id="log-table"' in text
    assert client.get("/historico/00000000-0000-0000-0000-000000000000").status_code == 404
    assert client.get("/historico/not-an-id").status_code == 404


def test_statuses_read_in_portuguese_and_only_an_active_run_says_it_is_in_progress(
    client, services, company
):
    with services.session_factory() as session:
        active = create_run(session, services.settings, company_id=company, mode="incremental")
    sign_in(client)
    history = client.get("/historico").get_data(as_text=True)
    options = re.findall(r'<option value="([A-Z]+)" >([^<]+)</option>', history)
    assert options == [(status.value, RUN_STATUS_LABELS[status]) for status in RunStatus]
    assert "Na fila" in client.get(f"/historico/{active.id}").get_data(as_text=True)
    assert "está em andamento" in client.get(f"/historico/{active.id}").get_data(as_text=True)
    with services.session_factory() as session:
        cancel_run(session, active.id)
    page = client.get(f"/historico/{active.id}").get_data(as_text=True)
    assert "Cancelada" in page and "está em andamento" not in page


# -- formatting -------------------------------------------------------------------------
def test_numbers_dates_and_durations_are_written_the_brazilian_way():
    assert format_brl(Decimal("1234567.5")) == "R$\u00a01.234.567,50"
    assert format_brl(Decimal("-3")) == "-R$\u00a03,00"
    assert format_brl(None) == "R$\u00a00,00"
    assert format_number(Decimal("12000")) == "12.000"
    assert format_number(Decimal("2.5000")) == "2,5"
    assert format_day(date(2026, 3, 9)) == "09/03/2026"
    assert format_day("2026-03-09") == "09/03/2026"
    assert format_day(None) == "—"
    assert format_duration(None) == "—"
    assert format_duration(9.6) == "10 s"
    assert format_duration(65) == "1 min 05 s"
    assert format_duration(3 * 3600 + 120) == "3 h 02 min"
    assert month_label("2026-11") == "novembro de 2026"

"""The run page in Chromium says, per module, what the run verified against Tiny."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from core.runs import create_run, start_run
from tests.support.services import step_until_done
from tests.support.ui import ADMIN_TOKEN, LiveApp

pytestmark = pytest.mark.browser


def test_the_run_page_shows_what_each_module_verified_and_the_record_set_aside(
    page: Any, live_app: LiveApp, artifacts: Path
) -> None:
    from playwright.sync_api import expect

    app = live_app
    planted = app.sandbox.plant_in_listing(
        app.token,
        "pedidos.pesquisa.php",
        "valor",
        "NaN",
        dataInicial=app.month_start.strftime("%d/%m/%Y"),
        dataFinal=app.month_end.strftime("%d/%m/%Y"),
    )
    with app.services.session_factory() as session:
        run = create_run(
            session,
            app.services.settings,
            company_id=app.company_id,
            mode="period",
            month=app.month,
        )
        start_run(session, run.id)
        run_id = run.id
    assert step_until_done(app.services, run_id).status == "DONE"
    listed = len(app.sandbox.truth(app.token, app.month_start, app.month_end).orders)

    path = f"/historico/{run_id}"
    page.goto(app.page_url(path))
    page.get_by_label("Token de administrador").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Entrar").click()
    expect(page).to_have_url(re.compile(re.escape(path)))

    sales = page.locator('#modules-table tr[data-module="vw_vendas"] td.verified')
    expect(sales).to_have_text(
        f"Verificado: {listed} no Tiny, {listed - 1} aqui; "
        f"1 registro ignorado: pedido {planted}, valor 'NaN'"
    )
    stock = page.locator('#modules-table tr[data-module="vw_estoque"] td.verified')
    expect(stock).to_contain_text(re.compile(r"^Verificado: \d+ no Tiny, \d+ aqui$"))
    expect(page.locator("#log-table")).to_contain_text(
        f"Vendas verificadas: {listed} no Tiny, {listed - 1} gravadas"
    )
    page.screenshot(path=str(artifacts / "ui-run-verified.png"), full_page=True)

"""The reports page in Chromium: sign in, sync a month, watch the modal, read the reports.

Each test drives the real app (served on loopback) through the page only, then checks what
it shows against the sandbox's truth and the database.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.models import SyncRun
from core.runs import create_run, get_run
from tests.support.ui import ADMIN_TOKEN, LiveApp

pytestmark = pytest.mark.browser

RUN_TIMEOUT_MS = 40_000
MODULES = (
    "vw_vendas",
    "vw_contas_receber_posicao",
    "vw_contas_pagar",
    "vw_contas_pagas",
    "vw_contas_recebidas",
    "vw_estoque",
)
#: Records, in the page, every text of the modal's status line and every module's statuses.
WATCH_MODAL = """() => {
  const seen = (window.__seen = { status: [], opened: [], modules: {} });
  const status = document.getElementById("sync-modal-status");
  const dialog = document.getElementById("sync-modal");
  const record = () => {
    const text = status.textContent;
    if (seen.status[seen.status.length - 1] !== text) seen.status.push(text);
  };
  const all = { childList: true, characterData: true, subtree: true };
  new MutationObserver(record).observe(status, all);
  new MutationObserver(() => {
    if (dialog.open) seen.opened.push(status.textContent);
  }).observe(dialog, { attributes: true, attributeFilter: ["open"] });
  for (const li of document.querySelectorAll("#sync-modules .module")) {
    const list = (seen.modules[li.dataset.module] = [li.dataset.status]);
    new MutationObserver(() => {
      if (list[list.length - 1] !== li.dataset.status) list.push(li.dataset.status);
    }).observe(li, { attributes: true, attributeFilter: ["data-status"] });
  }
}"""


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def sign_in(page: Any, app: LiveApp, path: str = "/relatorios") -> None:
    page.goto(app.page_url(path))
    expect()(page).to_have_url(re.compile(r"/entrar\?next="))
    page.get_by_label("Token de administrador").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Entrar").click()
    expect()(page).to_have_url(re.compile(re.escape(path)))
    page.wait_for_load_state("load")  # the deferred scripts have run


def start_month_sync(page: Any, app: LiveApp) -> None:
    page.evaluate(WATCH_MODAL)
    page.get_by_label("Por mês").check()
    page.locator("#sync-month").select_option(app.month)
    page.get_by_role("button", name="Sincronizar").click()
    expect()(page.locator("#sync-modal")).to_be_visible()


def module(page: Any, key: str) -> Any:
    return page.locator(f'#sync-modules .module[data-module="{key}"]')


def modal_status(page: Any) -> Any:
    return page.locator("#sync-modal-status")


def wait_until_running(page: Any, key: str = "vw_vendas") -> None:
    """Until `key` is running and has written at least one page."""
    page.wait_for_function(
        """(key) => {
          const li = document.querySelector(`#sync-modules .module[data-module="${key}"]`);
          const processed = li.querySelector(".processed").textContent.replace(/\\D/g, "");
          return li.dataset.status === "running" && Number(processed) > 0;
        }""",
        arg=key,
        timeout=RUN_TIMEOUT_MS,
    )


def parse_brl(text: str) -> Decimal:
    """`R$ 1.234,56` → Decimal('1234.56')"""
    digits = re.sub(r"[^\d,\-]", "", text).replace(",", ".")
    return Decimal(digits)


def shot(page: Any, artifacts: Path, name: str, **kwargs: Any) -> None:
    page.screenshot(path=str(artifacts / name), **kwargs)


def run_in_db(app: LiveApp, run_id: str) -> SyncRun:
    with app.services.session_factory() as session:
        return get_run(session, run_id)


def test_a_month_sync_shows_modules_moving_to_done_and_the_reports_show_its_numbers(
    page: Any, live_app: LiveApp, artifacts: Path
) -> None:
    app = live_app
    sign_in(page, app)
    expect()(page.locator("#sync-last")).to_contain_text("Nenhuma ainda")
    polls: list[dict[str, str]] = []
    page.on(
        "request",
        lambda request: polls.append(request.headers) if "/sync/v2/status" in request.url else None,
    )
    start_month_sync(page, app)

    wait_until_running(page)
    shot(page, artifacts, "ui-modal-running.png")
    expect()(page.get_by_role("button", name="Cancelar")).to_be_visible()
    expect()(page.locator("#sync-button")).to_be_disabled()
    expect()(modal_status(page)).to_have_text("Concluída com sucesso", timeout=RUN_TIMEOUT_MS)
    expect()(page.get_by_role("button", name="Fechar")).to_be_focused()
    expect()(page.get_by_role("button", name="Cancelar")).to_be_hidden()
    expect()(page.locator("#sync-logs li").first).not_to_contain_text("Aguardando")
    shot(page, artifacts, "ui-modal-done.png")

    assert len(polls) >= 2 and all(p.get("x-csrf-token") is None for p in polls)
    assert any("if-none-match" in p for p in polls[1:])  # the status is polled with its ETag
    seen = page.evaluate("window.__seen")
    assert seen["opened"][0].startswith("Preparando"), seen
    assert any(text.startswith("Em andamento: Vendas") for text in seen["status"]), seen
    for key in MODULES:
        statuses = seen["modules"][key]
        assert statuses[0] == "pending" and statuses[-1] == "done", (key, statuses)
    assert "running" in seen["modules"]["vw_vendas"]

    run_id = page.locator("#sync-modal").get_attribute("data-run-id")
    run = run_in_db(app, run_id)
    assert run.status == "DONE"
    progress = run.progressJson["modules"]
    for key in MODULES:
        processed = module(page, key).locator(".processed").inner_text()
        assert int(processed.replace(".", "")) == progress[key]["processed"], key
    assert progress["vw_vendas"]["processed"] > 0

    page.get_by_role("button", name="Fechar").click()
    page.wait_for_url(re.compile(rf"/relatorios\?companyId={app.company_id}&month={app.month}"))
    expect()(page.locator("#sync-last")).to_contain_text("Concluída")

    truth = app.sandbox.truth(app.token, app.month_start, app.month_end)
    sold = [o for o in truth.orders.values() if o["situacao"] != "Cancelado"]
    total = sum((o["valor"] for o in sold), Decimal("0.00"))
    assert sold
    assert parse_brl(page.locator("#kpi-total").inner_text()) == total
    assert page.locator("#kpi-orders").inner_text() == str(len(sold))
    ticket = (total / len(sold)).quantize(Decimal("0.01"))
    assert abs(parse_brl(page.locator("#kpi-ticket").inner_text()) - ticket) <= Decimal("0.01")
    # The open position is whole: every bill still owed, whatever its emission date.
    payables = sum((b["saldo"] for b in truth.payables_open_all.values()), Decimal("0.00"))
    receivables = sum((b["saldo"] for b in truth.receivables_open_all.values()), Decimal("0.00"))
    assert parse_brl(page.locator("#payables-total").inner_text()) == payables
    assert parse_brl(page.locator("#receivables-total").inner_text()) == receivables
    assert page.locator("#stock-products").inner_text() == str(len(truth.products))
    overdue_rows = page.locator("#payables tr.overdue, #receivables tr.overdue")
    overdue = [
        b
        for b in [*truth.payables_open_all.values(), *truth.receivables_open_all.values()]
        if b["data_vencimento"] < app.today
    ]
    assert (overdue_rows.count() > 0) == bool(overdue)
    low = [p for p in truth.products.values() if p["saldo"] <= 5]
    assert page.locator("#stock-low").inner_text() == str(len(low))
    assert page.locator("#stock tr.stock-low, #stock tr.stock-zero").count() == len(low)

    chart_total = page.evaluate(
        "document.getElementById('sales-chart').chart.data.datasets[0].data"
        ".reduce((a, b) => a + b, 0)"
    )
    assert abs(Decimal(str(chart_total)) - total) < Decimal("0.01")
    page.locator("#sales-chart").scroll_into_view_if_needed()
    shot(page, artifacts, "ui-reports.png", full_page=True)

    # A higher "low balance" mark highlights exactly the products at or under it.
    page.get_by_label("Saldo baixo até").fill("150")
    page.get_by_role("button", name="Aplicar").click()
    expect()(page).to_have_url(re.compile(r"lowStock=150"))
    low = [p for p in truth.products.values() if p["saldo"] <= 150]
    assert low, "the sandbox account should have some products under 150"
    assert page.locator("#stock-low").inner_text() == str(len(low))
    expect()(page.locator("#stock tr.stock-low, #stock tr.stock-zero")).to_have_count(len(low))
    shot(page, artifacts, "ui-reports-low-stock.png", full_page=True)

    # The history lists the run; its page shows the modules and the log.
    page.get_by_role("link", name="Histórico").click()
    row = page.locator(f'#runs-table tr[data-run-id="{run_id}"]')
    expect()(row).to_contain_text("Concluída")
    expect()(row).to_contain_text("Por mês")
    shot(page, artifacts, "ui-history.png")
    row.get_by_role("link", name=re.compile("Detalhes")).click()
    expect()(page.locator("#modules-table tr[data-status='done']")).to_have_count(len(MODULES))
    expect()(page.locator("#log-table")).to_contain_text("Execução iniciada")
    shot(page, artifacts, "ui-run.png", full_page=True)


def test_cancel_in_the_middle_shows_the_run_canceled(
    page: Any, live_app: LiveApp, artifacts: Path
) -> None:
    sign_in(page, live_app)
    start_month_sync(page, live_app)
    wait_until_running(page)
    page.get_by_role("button", name="Cancelar").click()

    expect()(modal_status(page)).to_have_text("Sincronização cancelada", timeout=RUN_TIMEOUT_MS)
    expect()(page.get_by_role("button", name="Fechar")).to_be_visible()
    expect()(module(page, "vw_estoque")).to_have_attribute("data-status", "canceled")
    statuses = page.eval_on_selector_all(
        "#sync-modules .module", "items => items.map(li => li.dataset.status)"
    )
    assert set(statuses) <= {"done", "canceled"} and statuses[0] in ("done", "canceled")
    shot(page, artifacts, "ui-modal-canceled.png")
    run_id = page.locator("#sync-modal").get_attribute("data-run-id")
    assert run_in_db(live_app, run_id).status == "CANCELED"

    page.keyboard.press("Escape")  # finished: Escape closes, and the page reloads
    expect()(page.locator("#sync-modal")).to_be_hidden()
    expect()(page.locator("#sync-last")).to_contain_text("Cancelada")
    expect()(page.get_by_role("button", name="Sincronizar")).to_be_enabled()


def test_a_failing_module_shows_its_error_while_the_others_finish(
    page: Any, live_app: LiveApp, artifacts: Path
) -> None:
    live_app.sandbox.fail_service(live_app.token, "contas.pagar.pesquisa.php", 8)
    sign_in(page, live_app)
    start_month_sync(page, live_app)

    expect()(modal_status(page)).to_contain_text(
        "Concluída com falhas em: Contas a pagar, Contas pagas", timeout=RUN_TIMEOUT_MS
    )
    for key in ("vw_contas_pagar", "vw_contas_pagas"):
        expect()(module(page, key)).to_have_attribute("data-status", "failed")
        expect()(module(page, key).locator(".module-errors")).to_be_visible()
        expect()(module(page, key).locator(".module-errors li")).not_to_have_count(0)
    for key in ("vw_vendas", "vw_contas_receber_posicao", "vw_contas_recebidas", "vw_estoque"):
        expect()(module(page, key)).to_have_attribute("data-status", "done")
    shot(page, artifacts, "ui-modal-failed.png")
    run_id = page.locator("#sync-modal").get_attribute("data-run-id")
    run = run_in_db(live_app, run_id)
    assert run.status == "FAILED"
    error = run.progressJson["modules"]["vw_contas_pagar"]["errors"][0]
    expect()(module(page, "vw_contas_pagar").locator(".module-errors")).to_contain_text(error)


def test_a_reload_in_the_middle_reopens_the_modal_on_the_same_run(
    page: Any, live_app: LiveApp
) -> None:
    sign_in(page, live_app)
    start_month_sync(page, live_app)
    wait_until_running(page)
    run_id = page.locator("#sync-modal").get_attribute("data-run-id")

    page.reload()
    expect()(page.locator("#sync-modal")).to_be_visible()
    expect()(page.locator("#sync-modal")).to_have_attribute("data-run-id", run_id)
    # The controls under the modal show the run's own mode and month, not the defaults.
    expect()(page.get_by_label("Por mês")).to_be_checked()
    expect()(page.locator("#sync-month")).to_have_value(live_app.month)
    expect()(page.locator("#sync-button")).to_be_disabled()
    expect()(modal_status(page)).to_have_text("Concluída com sucesso", timeout=RUN_TIMEOUT_MS)
    for key in MODULES:
        expect()(module(page, key)).to_have_attribute("data-status", "done")
    assert run_in_db(live_app, run_id).status == "DONE"
    with live_app.services.session_factory() as session:
        assert session.query(SyncRun).count() == 1


def test_a_failed_request_is_retried_and_the_modal_says_so(page: Any, live_app: LiveApp) -> None:
    failures = {"left": 2}

    def flaky_status(route: Any) -> None:
        if failures["left"] > 0:
            failures["left"] -= 1
            route.fulfill(status=502, content_type="text/html", body="<h1>502 Bad Gateway</h1>")
        else:
            route.continue_()

    sign_in(page, live_app)
    page.route(re.compile(r"/api/admin/sync/v2/status\?"), flaky_status)
    start_month_sync(page, live_app)
    notice = page.locator("#sync-modal-notice")
    expect()(notice).to_contain_text("Falha ao consultar o status (HTTP 502)")
    expect()(notice).to_contain_text("Tentando novamente")
    expect()(notice).to_be_hidden(timeout=RUN_TIMEOUT_MS)  # the retry got through
    assert failures["left"] == 0
    expect()(modal_status(page)).to_contain_text("Em andamento")
    expect()(module(page, "vw_vendas")).to_have_attribute(  # progress keeps coming in
        "data-status", "done", timeout=RUN_TIMEOUT_MS
    )
    page.get_by_role("button", name="Cancelar").click()
    expect()(modal_status(page)).to_have_text("Sincronização cancelada", timeout=RUN_TIMEOUT_MS)


def test_sincronizar_on_a_company_with_an_active_run_reopens_that_run(
    page: Any, live_app: LiveApp
) -> None:
    sign_in(page, live_app)
    with live_app.services.session_factory() as session:
        other = create_run(
            session,
            live_app.services.settings,
            company_id=live_app.company_id,
            mode="incremental",
        )
    page.get_by_role("button", name="Sincronizar").click()  # the page predates that run
    expect()(page.locator("#sync-modal")).to_have_attribute("data-run-id", other.id)
    wait_until_running(page)  # started by the modal: it was only QUEUED
    page.get_by_role("button", name="Cancelar").click()
    expect()(modal_status(page)).to_have_text("Sincronização cancelada", timeout=RUN_TIMEOUT_MS)
    with live_app.services.session_factory() as session:
        assert session.query(SyncRun).count() == 1


def test_the_modal_keeps_focus_inside_and_ignores_escape_while_running(
    page: Any, live_app: LiveApp
) -> None:
    sign_in(page, live_app)
    start_month_sync(page, live_app)
    wait_until_running(page)
    inside = "document.getElementById('sync-modal').contains(document.activeElement)"
    assert page.evaluate(inside)
    for _ in range(6):
        page.keyboard.press("Tab")
        assert page.evaluate(inside)
    for _ in range(6):
        page.keyboard.press("Shift+Tab")
        assert page.evaluate(inside)
    page.keyboard.press("Escape")
    expect()(page.locator("#sync-modal")).to_be_visible()
    # "Ocultar" puts the modal away while the run goes on; "Ver progresso" brings it back.
    page.get_by_role("button", name="Ocultar").click()
    expect()(page.locator("#sync-modal")).to_be_hidden()
    expect()(page.get_by_role("button", name="Ver progresso")).to_be_focused()
    page.get_by_role("button", name="Ver progresso").click()
    expect()(page.locator("#sync-modal")).to_be_visible()
    assert page.evaluate(inside)
    live = page.locator("#sync-modal-status")
    assert live.get_attribute("aria-live") == "polite"
    assert live.get_attribute("role") == "status"
    page.get_by_role("button", name="Cancelar").click()
    expect()(modal_status(page)).to_have_text("Sincronização cancelada", timeout=RUN_TIMEOUT_MS)


def test_with_the_celery_executor_the_page_only_polls(browser: Any, celery_app: LiveApp) -> None:
    """The run executes elsewhere (a stand-in worker thread): the page calls no step."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="pt-BR")
    try:
        page = context.new_page()
        steps: list[str] = []
        page.on("request", lambda r: steps.append(r.url) if "/sync/v2/step" in r.url else None)
        sign_in(page, celery_app)
        config = page.evaluate("JSON.parse(document.getElementById('ui-config').textContent)")
        assert config["executor"] == "celery"
        start_month_sync(page, celery_app)
        expect()(modal_status(page)).to_have_text("Concluída com sucesso", timeout=RUN_TIMEOUT_MS)
        for key in MODULES:
            expect()(module(page, key)).to_have_attribute("data-status", "done")
        assert steps == []
    finally:
        context.close()

"""Each run says what it verified: the module-end log line, the status JSON and `runs show`."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from typer.testing import CliRunner

from api import create_app
from cli import app as cli_app
from core.models import SyncRunLog
from core.reports import month_of, today_in_brazil
from core.runs import create_run, start_run
from core.runs.model import Verification
from core.wording import verified_log_line, verified_summary
from tests.support.api import AUTH, SYNC, api_settings
from tests.support.services import fast_spec, make_services, new_company, step_until_done


def test_the_sentences_name_counts_kinds_and_set_aside_records():
    v = Verification(
        listed=512,
        stored=511,
        corrected={"paid": 2, "deleted": 1},
        set_aside=1,
        set_aside_named=["pedido 123, valor 'NaN'"],
    )
    assert verified_log_line("vw_vendas", v) == (
        "Vendas verificadas: 512 no Tiny, 511 gravadas; 3 corrigidos (2 pagos, 1 excluído); "
        "1 registro ignorado: pedido 123, valor 'NaN'"
    )
    assert verified_summary(v) == (
        "Verificado: 512 no Tiny, 511 aqui; 3 corrigidos; 1 registro ignorado: pedido 123, "
        "valor 'NaN'"
    )
    moving = Verification(listed=7, stored=7, unconfirmed=["a listagem mudou durante a leitura"])
    assert verified_log_line("vw_estoque", moving) == (
        "Estoque verificado: 7 no Tiny, 7 gravados. A listagem mudou durante a leitura"
    )
    many = Verification(listed=9, stored=2, set_aside=7, set_aside_named=["conta 1, valor 'x'"])
    assert verified_summary(many).endswith("7 registros ignorados: conta 1, valor 'x' (e mais 6)")


def _last_month() -> tuple[date, date]:
    first = today_in_brazil().replace(day=1)
    end = first - timedelta(days=1)
    return end.replace(day=1), end


def test_a_run_with_an_odd_value_says_what_it_verified_everywhere(db_url, sandbox, monkeypatch):
    services = make_services(api_settings(db_url), sandbox)
    token = "tok-verified"
    company = new_company(services, sandbox, token, fast_spec(orders=150, days=60))
    start, end = _last_month()
    planted = sandbox.plant_in_listing(
        token,
        "pedidos.pesquisa.php",
        "valor",
        "NaN",
        dataInicial=start.strftime("%d/%m/%Y"),
        dataFinal=end.strftime("%d/%m/%Y"),
    )
    with services.session_factory() as session:
        run = create_run(
            session, services.settings, company_id=company, mode="period", month=month_of(start)
        )
        start_run(session, run.id)
    result = step_until_done(services, run.id)
    assert result.status == "DONE"
    listed = len(sandbox.truth(token, start, end).orders)

    verified = result.progress["modules"]["vw_vendas"]["verified"]
    assert verified["listed"] == listed and verified["stored"] == listed - 1
    assert verified["setAside"] == 1
    assert verified["setAsideNamed"] == [f"pedido {planted}, valor 'NaN'"]

    with services.session_factory() as session:
        lines = session.scalars(
            select(SyncRunLog).where(
                SyncRunLog.runId == run.id, SyncRunLog.message.like("% verificad%")
            )
        ).all()
    by_module = {line.module: line for line in lines}
    sales = by_module["vw_vendas"]
    assert (sales.level, sales.message) == (
        "warn",
        f"Vendas verificadas: {listed} no Tiny, {listed - 1} gravadas; "
        f"1 registro ignorado: pedido {planted}, valor 'NaN'",
    )
    assert sales.metadata_["verified"] == verified
    assert by_module["vw_contas_pagar"].level == "info"
    assert set(by_module) == set(result.progress["modules"])

    client = create_app(services=services).test_client()
    status = client.get(f"{SYNC}/status?runId={run.id}", headers=AUTH)
    assert status.status_code == 200, status.get_data(as_text=True)
    assert status.get_json()["progress"]["modules"]["vw_vendas"]["verified"] == verified

    if db_url.startswith("sqlite"):
        monkeypatch.setenv("DATABASE_URL", db_url)
        monkeypatch.setenv("TINY_API_URL", "sandbox")
        monkeypatch.setenv("SECRET_KEY", services.settings.secret_key)
        monkeypatch.setenv("COLUMNS", "250")
        shown = CliRunner().invoke(cli_app, ["runs", "show", run.id])
        assert shown.exit_code == 0, shown.output
        assert (
            f"Vendas: Verificado: {listed} no Tiny, {listed - 1} aqui; "
            f"1 registro ignorado: pedido {planted}, valor 'NaN'"
        ) in shown.output
    services.close()

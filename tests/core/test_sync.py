"""A whole run against the sandbox, on SQLite and PostgreSQL: data, idempotence, failures."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import func, select

from core.models import Payable, Receivable, SalesOrder, SalesOrderItem, StockItem, SyncRunLog
from core.runs import create_run, get_run, start_run
from tests.support.services import fast_spec, new_company, run_month, step_until_done


def _month_window(today: date) -> tuple[str, date, date]:
    first = date(today.year, today.month, 1)
    prev_last = first.fromordinal(first.toordinal() - 1)
    prev_first = date(prev_last.year, prev_last.month, 1)
    return f"{prev_first:%Y-%m}", prev_first, prev_last


def test_a_period_run_stores_exactly_the_sandbox_truth_for_the_window(services, sandbox):
    company = new_company(services, sandbox, "tok-truth")
    month, start, end = _month_window(date.today())
    run_id = run_month(services, company, month)
    truth = sandbox.truth("tok-truth", start, end)

    with services.session_factory() as session:
        run = get_run(session, run_id)
        assert run.status == "DONE", run.errorMessage
        modules = run.progressJson["modules"]
        assert {m["status"] for m in modules.values()} == {"done"}

        orders = {
            o.tinyId: o
            for o in session.scalars(select(SalesOrder).where(SalesOrder.companyId == company))
        }
        assert set(orders) == set(truth.orders)
        for tiny_id, expected in truth.orders.items():
            assert orders[tiny_id].valor == expected["valor"]
            assert isinstance(orders[tiny_id].valor, Decimal)
            assert orders[tiny_id].dataPedido == expected["data_pedido"]
            assert orders[tiny_id].situacao == expected["situacao"]
            assert orders[tiny_id].needsEnrichment is False
        assert modules["vw_vendas"]["processed"] == len(truth.orders)

        items = session.scalars(
            select(SalesOrderItem).where(SalesOrderItem.companyId == company)
        ).all()
        by_order: dict[int, list] = {}
        for item in items:
            by_order.setdefault(item.orderTinyId, []).append(item)
        assert set(by_order) == {k for k, v in truth.order_items.items() if v and k in truth.orders}
        for tiny_id, expected_items in truth.order_items.items():
            if tiny_id not in truth.orders:
                continue
            got = sorted(by_order.get(tiny_id, []), key=lambda i: i.position)
            assert [(i.codigo, i.quantidade, i.valorUnitario) for i in got] == [
                (e["codigo"], e["quantidade"], e["valor_unitario"]) for e in expected_items
            ]

        def bills(model, situacao):
            # Tiny's "aberto" filter also returns partly paid bills ("parcial").
            wanted = ("aberto", "parcial") if situacao == "aberto" else (situacao,)
            rows = session.scalars(
                select(model).where(model.companyId == company, model.situacao.in_(wanted))
            )
            return {r.tinyId: r.valor for r in rows}

        # The open position is whole (no emission window); the paid bills are the window's.
        assert bills(Payable, "aberto") == {
            k: v["valor"] for k, v in truth.payables_open_all.items()
        }
        assert bills(Payable, "pago") == {k: v["valor"] for k, v in truth.payables_paid.items()}
        assert bills(Receivable, "aberto") == {
            k: v["valor"] for k, v in truth.receivables_open_all.items()
        }
        assert bills(Receivable, "pago") == {
            k: v["valor"] for k, v in truth.receivables_paid.items()
        }
        stock = {
            s.tinyId: s.saldo
            for s in session.scalars(select(StockItem).where(StockItem.companyId == company))
        }
        assert stock == {k: v["saldo"] for k, v in truth.products.items()}


def test_a_second_sync_of_the_same_window_adds_no_duplicate(services, sandbox):
    company = new_company(services, sandbox, "tok-twice")
    month, _, _ = _month_window(date.today())
    run_month(services, company, month)

    def counts():
        with services.session_factory() as session:
            return [
                session.scalar(select(func.count()).select_from(m).where(m.companyId == company))
                for m in (SalesOrder, SalesOrderItem, Payable, Receivable, StockItem)
            ]

    first = counts()
    assert all(c > 0 for c in first)
    second_run = run_month(services, company, month)
    assert counts() == first
    with services.session_factory() as session:
        assert get_run(session, second_run).status == "DONE"


def test_a_permanent_error_in_one_service_fails_only_its_module(services, sandbox):
    company = new_company(services, sandbox, "tok-perm")
    sandbox.fail_service("tok-perm", "contas.pagar.pesquisa.php", 8)
    month, _, _ = _month_window(date.today())
    run_id = run_month(services, company, month)
    with services.session_factory() as session:
        run = get_run(session, run_id)
        modules = run.progressJson["modules"]
        assert run.status == "FAILED"
        assert modules["vw_contas_pagar"]["status"] == "failed"
        assert modules["vw_contas_pagas"]["status"] == "failed"
        assert "bloqueada" in modules["vw_contas_pagar"]["errors"][-1]
        for key in ("vw_vendas", "vw_contas_receber_posicao", "vw_contas_recebidas", "vw_estoque"):
            assert modules[key]["status"] == "done", key
        assert run.errorMessage == (
            "2 módulos falharam: Contas a pagar, Contas pagas. Detalhes na página da execução."
        )
        errors = session.scalars(
            select(SyncRunLog.message).where(
                SyncRunLog.runId == run_id, SyncRunLog.level == "error"
            )
        ).all()
        assert any("Contas a pagar falhou" in m for m in errors)


def test_an_invalid_token_fails_every_module_with_a_clear_message(services, sandbox):
    from core.companies import add_company

    with services.session_factory() as session:
        stranger = add_company(session, services.settings, name="Stranger", token="unknown-tok")
        session.commit()
        stranger_id = stranger.id
    month, _, _ = _month_window(date.today())
    run_id = run_month(services, stranger_id, month)
    with services.session_factory() as session:
        run = get_run(session, run_id)
        assert run.status == "FAILED"
        for entry in run.progressJson["modules"].values():
            assert entry["status"] == "failed"
            assert "o token do Tiny é inválido" in entry["errors"][-1]
            assert "unknown-tok" not in entry["errors"][-1]
        logs = session.scalars(select(SyncRunLog.message).where(SyncRunLog.runId == run_id))
        assert all("unknown-tok" not in m for m in logs)


def test_incremental_run_after_a_full_one_makes_far_fewer_calls(services, sandbox):
    company = new_company(
        services, sandbox, "tok-incr", fast_spec(orders=400, days=90, products=30)
    )

    def incremental() -> str:
        with services.session_factory() as session:
            run = create_run(session, services.settings, company_id=company, mode="incremental")
            start_run(session, run.id)
        step_until_done(services, run.id)
        return run.id

    first = incremental()
    sandbox.evolve("tok-incr", new_orders=2, status_changes=2, payments=2)
    second = incremental()
    with services.session_factory() as session:
        r1, r2 = get_run(session, first), get_run(session, second)
        assert r1.status == r2.status == "DONE"
        assert r2.tinyCalls * 5 < r1.tinyCalls, (r1.tinyCalls, r2.tinyCalls)
        # The changed orders were listed and re-enriched; the new ones are stored.
        assert r2.progressJson["modules"]["vw_vendas"]["processed"] >= 4
        assert r2.progressJson["modules"]["vw_vendas"].get("enriched", 0) >= 2
    today = date.today()
    truth = sandbox.truth("tok-incr", date.fromordinal(today.toordinal() - 30), today)
    with services.session_factory() as session:
        stored = {
            o.tinyId: o.situacao
            for o in session.scalars(select(SalesOrder).where(SalesOrder.companyId == company))
        }
    for tiny_id, expected in truth.orders.items():
        assert stored.get(tiny_id) == expected["situacao"]


def test_enrichment_is_capped_per_run_and_the_rest_waits_for_the_next(db_url, sandbox):
    from tests.support.services import make_services, make_settings

    services = make_services(make_settings(db_url, tiny_max_enrich_per_run=7), sandbox)
    company = new_company(services, sandbox, "tok-cap", fast_spec(orders=300, days=60))
    month, start, end = _month_window(date.today())
    run_id = run_month(services, company, month)
    with services.session_factory() as session:
        run = get_run(session, run_id)
        assert run.progressJson["modules"]["vw_vendas"]["enriched"] == 7
        enriched = session.scalar(
            select(func.count())
            .select_from(SalesOrder)
            .where(SalesOrder.companyId == company, SalesOrder.needsEnrichment.is_(False))
        )
        assert enriched == 7
        messages = session.scalars(select(SyncRunLog.message).where(SyncRunLog.runId == run_id))
        assert any("ainda sem itens" in m for m in messages)
    services.close()


def test_code_21_splits_the_period_until_tiny_accepts_each_part(services, sandbox):
    company = new_company(
        services, sandbox, "tok-21", fast_spec(orders=900, days=90, max_query_records=120)
    )
    month, start, end = _month_window(date.today())
    run_id = run_month(services, company, month)
    truth = sandbox.truth("tok-21", start, end)
    assert len(truth.orders) > 120  # one query for the month is refused
    with services.session_factory() as session:
        run = get_run(session, run_id)
        assert run.status == "DONE", run.errorMessage
        stored = session.scalars(select(SalesOrder.tinyId)).all()
        assert sorted(stored) == sorted(truth.orders)
        messages = session.scalars(select(SyncRunLog.message).where(SyncRunLog.runId == run_id))
        assert any("registros demais" in m and "em separado" in m for m in messages)
    assert sandbox.counters("tok-21").by_code[21] >= 1

"""A v3 company syncs through the same modules and tables as a v2 one: a month of it ends DONE
equal to the sandbox's truth, beside a v2 company of the same account; 429 is waited out with
no record lost; X-RateLimit-Limit reaches the pacer; money arrives as Decimal."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select

from core.models import Payable, SalesOrder, SalesOrderItem, StockItem
from core.reports import month_of, today_in_brazil
from core.runs import RunStatus, get_run, list_logs
from core.services import build_services
from core.v3.client import V3Client
from sandbox import SandboxTransport
from tests.support.services import make_settings, new_company, run_month
from tests.support.truth import mismatches
from tests.support.v3 import new_v3_company, v3_access, v3_spec

TOKEN = "tok-v3-sync"


def _last_month():
    today = today_in_brazil()
    last = today.replace(day=1) - timedelta(days=1)
    return month_of(last), last.replace(day=1), last


def _count(services, model, company_id: str) -> int:
    with services.session_factory() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(model).where(model.companyId == company_id)
            )
        )


def test_a_month_of_a_v3_company_equals_the_truth_beside_a_v2_company(services, sandbox):
    month, first, last = _last_month()
    v2 = new_company(services, sandbox, TOKEN, v3_spec())
    v3, _client = new_v3_company(services, sandbox, TOKEN, new_account=False)
    for company in (v2, v3):
        run_id = run_month(services, company, month)
        with services.session_factory() as session:
            run = get_run(session, run_id)
            assert run.status == RunStatus.DONE, run.errorMessage
        assert mismatches(services.session_factory, sandbox, TOKEN, company, first, last) == []
    # The same account read through either API fills the same tables alike.
    for model in (SalesOrder, SalesOrderItem, Payable, StockItem):
        assert _count(services, model, v3) == _count(services, model, v2) > 0, model.__name__
    with services.session_factory() as session:
        rows = {
            api: {
                o.tinyId: (o.situacao, o.valor, o.totalPedido, o.dataPedido)
                for o in session.scalars(select(SalesOrder).where(SalesOrder.companyId == cid))
            }
            for api, cid in (("v2", v2), ("v3", v3))
        }
    assert rows["v3"] == rows["v2"]


def test_a_429_with_retry_after_is_waited_out_and_loses_no_record(services, sandbox):
    month, first, last = _last_month()
    company, _client = new_v3_company(services, sandbox, TOKEN)
    sandbox.fail_v3(TOKEN, "pedidos", 429, times=2, retry_after=1)
    sandbox.fail_v3(TOKEN, "contas-pagar", 429, times=1, retry_after=1)
    run_id = run_month(services, company, month)
    with services.session_factory() as session:
        run = get_run(session, run_id)
        logs, _ = list_logs(session, run_id, limit=500)
    assert run.status == RunStatus.DONE, run.errorMessage
    assert mismatches(services.session_factory, sandbox, TOKEN, company, first, last) == []
    waited = [entry for entry in logs if "HTTP 429" in entry.message]
    assert len(waited) >= 3, [e.message for e in logs]


class RecordingLimiter:
    """A pacer that never waits and remembers what Tiny announced per account."""

    def __init__(self) -> None:
        self.announced: list[tuple[str, int]] = []

    def slot(self, key):
        from contextlib import nullcontext

        return nullcontext()

    def observe_limit(self, key: str, calls_per_minute: int) -> None:
        self.announced.append((key, calls_per_minute))


def test_x_ratelimit_limit_feeds_the_accounts_pacer_and_money_is_decimal(db_url, sandbox):
    limiter = RecordingLimiter()
    services = build_services(
        make_settings(db_url), transport=SandboxTransport(sandbox), limiter=limiter
    )
    try:
        company, _client = new_v3_company(services, sandbox, TOKEN)
        source = v3_access(services)
        with services.session_factory() as session:
            from core.models import Company

            row = session.get(Company, company)
            assert row is not None
            bearer = source.renewer(services.session_factory, services.settings).bearer(company)
            account = row.tinyAccountKey
        body, _ = source.client.get(bearer, "contas-pagar", {"limit": 5}, account=account)
    finally:
        services.close()
    assert limiter.announced and all(key == account for key, _ in limiter.announced)
    assert all(limit > 0 for _, limit in limiter.announced)
    values = [item["valor"] for item in body["itens"]] + [item["saldo"] for item in body["itens"]]
    assert values and all(isinstance(v, Decimal | int) for v in values)
    assert not any(isinstance(v, float) for v in values)


def test_the_v3_client_waits_retry_after_before_trying_again(db_url, sandbox):
    sleeps: list[float] = []
    services = build_services(make_settings(db_url), transport=SandboxTransport(sandbox))
    try:
        company, _client = new_v3_company(services, sandbox, TOKEN)
        client = V3Client(
            services.settings.with_(tiny_rate_limit_backoff_seconds=99.0),
            transport=SandboxTransport(sandbox),
            sleep=sleeps.append,
            base_url="http://sandbox.local/public-api/v3",
        )
        bearer = v3_access(services).renewer(services.session_factory, services.settings)
        sandbox.fail_v3(TOKEN, "produtos", 429, times=1, retry_after=7)
        page = client.list_page(bearer.bearer(company), "produtos", {}, 0, account="acct")
    finally:
        services.close()
    assert sleeps == [7.0]
    assert page.records and page.page == 1


def test_money_is_read_from_the_json_text_never_through_float(services, sandbox):
    from sandbox.v3 import RawJson

    month, _first, _last = _last_month()
    company, _client = new_v3_company(services, sandbox, TOKEN)
    exact, huge = sorted(sandbox.open_bills(TOKEN, "pagar"))[:2]
    # Through float this would round to ...234.57; exactly, half-even, it is ...234.58.
    sandbox.plant_v3(TOKEN, exact, "valor", RawJson("12345678901234.575"))
    sandbox.plant_v3(TOKEN, huge, "saldo", RawJson("1e999"))
    run_id = run_month(services, company, month)
    with services.session_factory() as session:
        run = get_run(session, run_id)
        stored = {
            p.tinyId: p
            for p in session.scalars(select(Payable).where(Payable.companyId == company))
        }
    assert run.status == RunStatus.DONE, run.errorMessage
    assert stored[exact].valor == Decimal("12345678901234.58")
    assert huge not in stored  # set aside, named, the rest of its page stored
    verified = run.progressJson["modules"]["vw_contas_pagar"]["verified"]
    assert any(str(huge) in name for name in verified["setAsideNamed"]), verified

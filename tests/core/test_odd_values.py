"""An odd value in a Tiny record sets that record aside; the module, the run and the reports go on.

The sandbox serves its records; a transport in front of it plants one odd value in the first
record of page 1 of a listing, as a real account's form would have let it through.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from sqlalchemy import literal_column, select, update

from api import create_app
from core.models import Payable, SalesOrder, StockItem, SyncRunLog
from core.reports import today_in_brazil
from core.runs import create_run, get_run, start_run
from core.services import Services, build_services
from core.sessions import open_session
from sandbox import Sandbox, SandboxTransport
from tests.support.services import fast_spec, make_settings, new_company, step_until_done

ADMIN = "odd-values-admin-token"
RAW = "__raw_json_number__"
LISTS = {
    "pedidos.pesquisa.php": "pedidos",
    "produtos.pesquisa.php": "produtos",
    "contas.pagar.pesquisa.php": "contas",
}


class PlantingTransport(SandboxTransport):
    """The sandbox, with `field` of the first record of `service`'s page 1 set to `value`."""

    def __init__(self, sandbox: Sandbox, service: str, field: str, value: Any):
        super().__init__(sandbox)
        self.service, self.field, self.value = service, field, value
        self.planted: dict[str, Any] | None = None  # the record as it was before
        self.neighbours: list[int] = []  # ids of the rest of that page

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        form = parse_qs(request.content.decode())
        if not request.url.path.endswith(self.service) or form.get("pagina") != ["1"]:
            return response
        body = json.loads(response.read())
        retorno = body["retorno"]
        listed = retorno.get(LISTS[self.service]) or []
        records = [next(iter(entry.values())) for entry in listed]  # {"pedido": {...}}
        if not records:
            return response
        self.planted = dict(records[0])
        self.neighbours = [int(r["id"]) for r in records[1:]]
        raw = isinstance(self.value, Raw)
        records[0][self.field] = RAW if raw else self.value
        text = json.dumps(body)  # ASCII escapes: a lone surrogate travels as \ud800
        if raw:
            text = text.replace(f'"{RAW}"', self.value.text)
        return httpx.Response(200, content=text.encode(), headers=response.headers)


class Raw:
    """A JSON number written as is (e.g. 1e999, which no Python float can hold)."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text})"


def _services(db_url: str, transport: httpx.BaseTransport) -> Services:
    return build_services(make_settings(db_url, sync_admin_token=ADMIN), transport=transport)


def _sync(services: Services, sandbox: Sandbox, company: str) -> Any:
    with services.session_factory() as session:
        run = create_run(session, services.settings, company_id=company, mode="incremental")
        start_run(session, run.id)
    step_until_done(services, run.id)
    with services.session_factory() as session:
        return get_run(session, run.id)


def _reports_answer(services: Services, company: str) -> None:
    client = create_app(services=services).test_client()
    bearer = {"Authorization": f"Bearer {ADMIN}"}
    for path in ("summary", "sales", "bills?kind=receivables", "stock"):
        sep = "&" if "?" in path else "?"
        response = client.get(f"/api/admin/reports/{path}{sep}companyId={company}", headers=bearer)
        assert response.status_code == 200, (path, response.get_data(as_text=True)[:500])
    with services.session_factory() as db:
        sid = open_session(db)  # a signed-in browser: its session lives on the server
        db.commit()
    with client.session_transaction() as session:
        session.update(admin=True, csrf="x" * 40, sid=sid)
    response = client.get(f"/relatorios?companyId={company}")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]


SPEC = dict(orders=30, days=20, products=4, payables=12, receivables=12)

SET_ASIDE = [
    ("valor", "NaN", "não é um número"),
    ("valor", "Infinity", "não é um número"),
    ("valor", "1e999", "não é um número"),
    ("valor", Raw("1e999"), "passa do limite"),
    ("valor", "123456789012345678.99", "passa do limite"),
    ("valor", "1.234", "é ambíguo"),
    ("data_pedido", "31/02/2026", "não existe"),
    ("data_pedido", "00/00/0000", "não existe"),
    ("id", 2**64, "não é um id válido"),
    ("id_vendedor", "99999999999999999999", "não é um id válido"),
]


@pytest.mark.parametrize(
    ("field", "value", "reason"), SET_ASIDE, ids=[repr(v) for _, v, _ in SET_ASIDE]
)
def test_an_order_with_an_odd_value_is_set_aside_and_the_rest_of_its_page_is_stored(
    db_url, sandbox, field, value, reason
):
    transport = PlantingTransport(sandbox, "pedidos.pesquisa.php", field, value)
    services = _services(db_url, transport)
    try:
        company = new_company(services, sandbox, "tok-odd", fast_spec(**SPEC))
        run = _sync(services, sandbox, company)
        assert run.status == "DONE", run.errorMessage
        sales = run.progressJson["modules"]["vw_vendas"]
        assert sales["status"] == "done"
        assert sales["skipped"] == 1
        [note] = [e for e in sales["errors"] if "não gravado" in e]
        assert f"{field} " in note and reason in note
        planted_id = transport.planted["id"] if field != "id" else None
        assert note.startswith(f"pedido {planted_id}:" if planted_id else "pedido sem id válido")
        with services.session_factory() as session:
            stored = set(session.scalars(select(SalesOrder.tinyId)))
            logged = list(
                session.scalars(select(SyncRunLog.message).where(SyncRunLog.runId == run.id))
            )
        assert transport.neighbours and set(transport.neighbours) <= stored
        if planted_id:
            assert int(planted_id) not in stored
        assert note in logged
        _reports_answer(services, company)
        assert _sync(services, sandbox, company).status == "DONE"  # the next run is not blocked
    finally:
        services.close()


@pytest.mark.parametrize(
    ("value", "stored"),
    [("Maria\x00 da Silva\x07", "Maria da Silva"), ("Jo\ud800ão", "Jo\ufffdão")],
    ids=["nul", "lone-surrogate"],
)
def test_a_name_with_nul_or_a_lone_surrogate_is_cleaned_and_stored(db_url, sandbox, value, stored):
    transport = PlantingTransport(sandbox, "pedidos.pesquisa.php", "nome", value)
    services = _services(db_url, transport)
    try:
        company = new_company(services, sandbox, "tok-odd-name", fast_spec(**SPEC))
        run = _sync(services, sandbox, company)
        assert run.status == "DONE", run.errorMessage
        assert run.progressJson["modules"]["vw_vendas"]["skipped"] == 0
        with services.session_factory() as session:
            order = session.scalars(
                select(SalesOrder).where(SalesOrder.tinyId == int(transport.planted["id"]))
            ).one()
        assert order.nomeCliente == stored
        _reports_answer(services, company)
    finally:
        services.close()


def test_a_bill_and_a_product_with_odd_values_are_set_aside_too(db_url, sandbox):
    class Both(PlantingTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("produtos.pesquisa.php"):
                self.service, self.field, self.value = "produtos.pesquisa.php", "preco", "Infinity"
            else:
                self.service, self.field, self.value = "contas.pagar.pesquisa.php", "valor", "NaN"
            return super().handle_request(request)

    transport = Both(sandbox, "", "", None)
    services = _services(db_url, transport)
    try:
        company = new_company(services, sandbox, "tok-odd-both", fast_spec(**SPEC))
        run = _sync(services, sandbox, company)
        assert run.status == "DONE", run.errorMessage
        modules = run.progressJson["modules"]
        assert any("'Infinity' não é um número" in e for e in modules["vw_estoque"]["errors"])
        payable_notes = [e for m, v in modules.items() if "pagar" in m for e in v.get("errors", [])]
        assert any("conta " in e and "'NaN' não é um número" in e for e in payable_notes)
        with services.session_factory() as session:
            assert session.scalars(select(StockItem.tinyId)).all()
            assert session.scalars(select(Payable.tinyId)).all()
        _reports_answer(services, company)
    finally:
        services.close()


def test_reports_answer_with_whatever_the_money_columns_hold(db_url, sandbox):
    services = _services(db_url, SandboxTransport(sandbox))
    try:
        company = new_company(services, sandbox, "tok-odd-stored", fast_spec(orders=0, products=0))
        today = today_in_brazil()
        with services.session_factory() as session:
            session.add_all(
                SalesOrder(companyId=company, tinyId=n, dataPedido=today, valor=Decimal(v))
                for n, v in ((1, "10.50"), (2, "1.25"), (3, "0"))
            )
            session.commit()
            # What our code never writes but the column accepts: NaN on PostgreSQL, text on
            # SQLite (whose columns take any value).
            odd = "'NaN'" if session.get_bind().dialect.name == "postgresql" else "'abc'"
            session.execute(
                update(SalesOrder).where(SalesOrder.tinyId == 3).values(valor=literal_column(odd))
            )
            session.add(StockItem(companyId=company, tinyId=9, nome="Odd", saldo=Decimal("1")))
            session.flush()
            session.execute(
                update(StockItem).where(StockItem.tinyId == 9).values(saldo=literal_column(odd))
            )
            session.commit()
            assert (
                session.scalars(select(SalesOrder.valor).where(SalesOrder.tinyId == 3)).one()
                is None
            )
        _reports_answer(services, company)
        client = create_app(services=services).test_client()
        sales = client.get(
            f"/api/admin/reports/sales?companyId={company}",
            headers={"Authorization": f"Bearer {ADMIN}"},
        ).get_json()["sales"]
        assert (sales["orders"], sales["total"]) == (3, "11.75")
    finally:
        services.close()


def test_a_module_error_is_stored_as_one_short_line(db_url, sandbox):
    class Refusing(SandboxTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if not request.url.path.endswith("pedidos.pesquisa.php"):
                return super().handle_request(request)
            detail = "valor fora do intervalo\n[SQL: INSERT INTO ... " + "(%s, %s), " * 800 + "]"
            body = {"retorno": {"status": "Erro", "codigo_erro": "5", "erros": [{"erro": detail}]}}
            return httpx.Response(200, content=json.dumps(body).encode())

    services = _services(db_url, Refusing(sandbox))
    try:
        company = new_company(services, sandbox, "tok-long-error", fast_spec(**SPEC))
        run = _sync(services, sandbox, company)
        assert run.status == "FAILED"
        sales = run.progressJson["modules"]["vw_vendas"]
        assert sales["status"] == "failed"
        [error] = sales["errors"]
        assert error.endswith("valor fora do intervalo") and len(error) <= 300
        assert "SQL" not in run.errorMessage and len(run.errorMessage) < 400
        assert run.progressJson["modules"]["vw_estoque"]["status"] == "done"
    finally:
        services.close()


class DetailPlanting(SandboxTransport):
    """The sandbox, with one value of the first record each `obter` service returns planted."""

    PLANTS = {
        "pedido.obter.php": ("pedido", "total_pedido", "NaN"),
        "produto.obter.estoque.php": ("produto", "saldo", "1,234"),
    }

    def __init__(self, sandbox: Sandbox):
        super().__init__(sandbox)
        self.planted: dict[str, int] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        service = request.url.path.rsplit("/", 1)[-1]
        if service not in self.PLANTS or service in self.planted:
            return response
        key, field, value = self.PLANTS[service]
        body = json.loads(response.read())
        record = body["retorno"].get(key)
        if not isinstance(record, dict):
            return response
        record[field] = value
        self.planted[service] = int(record["id"])
        return httpx.Response(200, content=json.dumps(body).encode(), headers=response.headers)


def test_an_odd_order_detail_or_stock_balance_is_set_aside_without_asking_again(db_url, sandbox):
    transport = DetailPlanting(sandbox)
    services = _services(db_url, transport)
    try:
        company = new_company(services, sandbox, "tok-odd-detail", fast_spec(**SPEC))
        run = _sync(services, sandbox, company)
        assert run.status == "DONE", run.errorMessage
        modules = run.progressJson["modules"]
        order_id = transport.planted["pedido.obter.php"]
        product_id = transport.planted["produto.obter.estoque.php"]
        assert (
            f"pedido {order_id}: detalhe não gravado, total_pedido 'NaN' não é um número"
            in (modules["vw_vendas"]["errors"])
        )
        assert any(
            e.startswith(f"produto {product_id}: saldo não gravado, saldo '1,234' é ambíguo")
            for e in modules["vw_estoque"]["errors"]
        )
        with services.session_factory() as session:
            order = session.scalars(select(SalesOrder).where(SalesOrder.tinyId == order_id)).one()
            waiting = session.scalars(select(SalesOrder).where(SalesOrder.needsEnrichment)).all()
            product = session.scalars(select(StockItem).where(StockItem.tinyId == product_id)).one()
        assert order.totalPedido is None and order.valor is not None  # the listing is kept
        assert waiting == []  # asked once, not again and again
        assert product.stockCheckedAt is not None
        _reports_answer(services, company)
    finally:
        services.close()

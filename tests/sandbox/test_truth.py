"""truth() agrees with what paging through the API returns; data is deterministic per token."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import httpx

from sandbox import AccountSpec, Sandbox, SandboxTransport
from tests.support.sandbox_calls import GENEROUS, TODAY, TOKEN, Api, Clock


def brdate(text: str) -> date:
    return datetime.strptime(text, "%d/%m/%Y").date()


def dmy(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def synced_orders(api: Api, start: date, end: date) -> dict[int, dict]:
    """What a correct sync reads: the listing plus each order's items."""
    window = {"dataInicial": dmy(start), "dataFinal": dmy(end)}
    orders = {}
    for o in api.all_pages("pedidos.pesquisa.php", "pedidos", "pedido", **window):
        detail = api("pedido.obter.php", id=o["id"])["pedido"]
        orders[o["id"]] = {
            **o,
            "data_pedido": brdate(o["data_pedido"]),
            "data_prevista": brdate(o["data_prevista"]),
            "valor": Decimal(o["valor"]),
            "items": [
                {
                    "codigo": w["item"]["codigo"],
                    "descricao": w["item"]["descricao"],
                    "quantidade": Decimal(w["item"]["quantidade"]),
                    "valor_unitario": Decimal(w["item"]["valor_unitario"]),
                }
                for w in detail["itens"]
            ],
        }
    return orders


def synced_bills(api: Api, service: str, situacao: str, start: date, end: date) -> dict:
    window = {"data_ini_emissao": dmy(start), "data_fim_emissao": dmy(end)}
    rows = api.all_pages(service, "contas", "conta", situacao=situacao, **window)
    return {
        r["id"]: {
            **r,
            "valor": Decimal(r["valor"]),
            "saldo": Decimal(r["saldo"]),
            "data_emissao": brdate(r["data_emissao"]),
            "data_vencimento": brdate(r["data_vencimento"]),
        }
        for r in rows
    }


def test_truth_holds_exactly_what_paging_the_api_returns_for_a_window(sb, api):
    start, end = TODAY - timedelta(days=45), TODAY - timedelta(days=3)
    sb.evolve(TOKEN, new_orders=3, status_changes=4, payments=4)
    truth = sb.truth(TOKEN, start, end)
    orders = synced_orders(api, start, end)
    assert truth.orders == {
        k: {f: v for f, v in o.items() if f != "items"} for k, o in orders.items()
    }
    assert truth.order_items == {k: o["items"] for k, o in orders.items()}
    for service, opened, paid in (
        ("contas.pagar.pesquisa.php", truth.payables_open, truth.payables_paid),
        ("contas.receber.pesquisa.php", truth.receivables_open, truth.receivables_paid),
    ):
        assert synced_bills(api, service, "aberto", start, end) == opened
        assert synced_bills(api, service, "pago", start, end) == paid
        assert opened and paid
    stock = {}
    for p in api.all_pages(
        "produtos.pesquisa.php", "produtos", "produto", pesquisa="", situacao="A"
    ):
        s = api("produto.obter.estoque.php", id=p["id"])["produto"]
        stock[p["id"]] = {
            "id": p["id"],
            "codigo": p["codigo"],
            "nome": p["nome"],
            "unidade": p["unidade"],
            "preco": Decimal(p["preco"]),
            "saldo": Decimal(str(s["saldo"])),
            "saldo_reservado": Decimal(str(s["saldoReservado"])),
        }
    assert truth.products == stock


def test_truth_after_evolve_includes_todays_new_orders(sb):
    before = sb.truth(TOKEN, TODAY, TODAY)
    sb.evolve(TOKEN, new_orders=2, status_changes=0, payments=0)
    after = sb.truth(TOKEN, TODAY, TODAY)
    assert len(after.orders) == len(before.orders) + 2
    assert all(o["data_pedido"] == TODAY for o in after.orders.values())


def test_truth_serialises_decimals_as_strings_and_dates_iso(sb):
    data = sb.truth(TOKEN, TODAY - timedelta(days=10), TODAY).to_json()
    order = next(iter(data["orders"].values()))
    assert isinstance(order["valor"], str) and Decimal(order["valor"]) > 0
    assert date.fromisoformat(order["data_pedido"])


def first_page(sb: Sandbox, token: str) -> dict:
    with httpx.Client(transport=SandboxTransport(sb), base_url="http://sb") as http:
        api = Api(http, token=token)
        return {
            "orders": api("pedidos.pesquisa.php", pagina=2),
            "order": api(
                "pedido.obter.php", id=api("pedidos.pesquisa.php")["pedidos"][0]["pedido"]["id"]
            ),
            "bills": api("contas.receber.pesquisa.php"),
            "products": api("produtos.pesquisa.php", pesquisa=""),
        }


def test_the_same_token_and_spec_give_the_same_data_in_any_sandbox():
    spec = AccountSpec(orders=300, days=60, **GENEROUS)
    one, two = Sandbox(clock=Clock()), Sandbox(clock=Clock())
    one.add_account("tok-a", spec)
    two.add_account("tok-a", spec)
    assert first_page(one, "tok-a") == first_page(two, "tok-a")
    window = (TODAY - timedelta(days=60), TODAY)
    assert one.truth("tok-a", *window) == two.truth("tok-a", *window)
    one.evolve("tok-a", 3, 3, 3)
    two.evolve("tok-a", 3, 3, 3)
    assert one.truth("tok-a", *window) == two.truth("tok-a", *window)


def test_different_tokens_or_seeds_give_different_data():
    spec = AccountSpec(orders=300, days=60, **GENEROUS)
    sb = Sandbox(clock=Clock())
    sb.add_account("tok-a", spec)
    sb.add_account("tok-b", spec)
    sb.add_account("tok-c", AccountSpec(orders=300, days=60, seed=42, **GENEROUS))
    sb.add_account("tok-d", AccountSpec(orders=300, days=60, seed=42, **GENEROUS))
    window = (TODAY - timedelta(days=60), TODAY)
    a, b = sb.truth("tok-a", *window), sb.truth("tok-b", *window)
    assert set(a.orders) != set(b.orders)
    assert [o["valor"] for o in a.orders.values()] != [o["valor"] for o in b.orders.values()]
    assert sb.truth("tok-c", *window) == sb.truth("tok-d", *window)

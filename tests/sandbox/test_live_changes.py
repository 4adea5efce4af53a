"""Data that moves while a client pages through it: explicit changes and scheduled churn."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from sandbox import AccountSpec, Churn, Sandbox, SandboxTransport
from tests.support.sandbox_calls import (
    GENEROUS,
    TODAY,
    TOKEN,
    Api,
    Clock,
    error_code,
    tiny_datetime,
)

PAGAR, RECEBER = "contas.pagar.pesquisa.php", "contas.receber.pesquisa.php"
BIG = "tok-big-bills"


def brdate(text: str) -> date:
    return datetime.strptime(text, "%d/%m/%Y").date()


def ids(records: list[dict]) -> list[int]:
    return [r["id"] for r in records]


def page(api: Api, service: str, key: str, item: str, pagina: int, **params) -> list[dict]:
    retorno = api(service, pagina=pagina, **params)
    if retorno["status"] == "Erro":
        assert error_code(retorno) in (20, 23)
        return []
    return [w[item] for w in retorno[key]]


@pytest.fixture
def big(clock: Clock):
    """A sandbox whose open payables span several pages, and its Api."""
    sb = Sandbox(clock=clock)
    sb.add_account(BIG, AccountSpec(orders=50, payables=2000, receivables=50, **GENEROUS))
    with httpx.Client(transport=SandboxTransport(sb), base_url="http://sb/api2") as http:
        yield sb, Api(http, token=BIG)


def test_a_bill_paid_between_two_pages_leaves_one_other_open_bill_unserved_on_any_page(big):
    sb, api = big
    before = ids(api.all_pages(PAGAR, "contas", "conta", situacao="aberto"))
    assert len(before) > 200  # three pages or more
    first = page(api, PAGAR, "contas", "conta", 1, situacao="aberto")
    sb.pay_bill(BIG, first[0]["id"])
    served = ids(first)
    pagina = 2
    while rows := page(api, PAGAR, "contas", "conta", pagina, situacao="aberto"):
        served += ids(rows)
        pagina += 1
    # The first record of the old page 2 moved up to page 1, which was already read.
    assert set(before) - set(served) == {before[100]}
    assert len(served) == len(set(served)) == len(before) - 1
    conta = api("conta.pagar.obter.php", id=first[0]["id"])["conta"]
    assert conta["situacao"] == "pago" and conta["saldo"] == "0.00"
    assert brdate(conta["data_pagamento"]) == TODAY and conta["valor_pago"] == conta["valor"]


def test_an_order_added_inside_the_window_between_pages_serves_a_record_twice(sb, api):
    window = {"dataInicial": "01/01/2025", "dataFinal": TODAY.strftime("%d/%m/%Y")}
    first = page(api, "pedidos.pesquisa.php", "pedidos", "pedido", 1, **window)
    dated = brdate(first[50]["data_pedido"])
    new_id = sb.add_order(TOKEN, dated)
    second = page(api, "pedidos.pesquisa.php", "pedidos", "pedido", 2, **window)
    assert second[0] == first[-1]
    again = page(api, "pedidos.pesquisa.php", "pedidos", "pedido", 1, **window)
    assert new_id in ids(again) and ids(again)[:50] == ids(first)[:50]
    added = api("pedido.obter.php", id=new_id)["pedido"]
    assert brdate(added["data_pedido"]) == dated and added["situacao"] == "Em aberto"


def test_a_deleted_order_answers_32_and_is_in_no_listing(sb, api, clock):
    orders = api.all_pages("pedidos.pesquisa.php", "pedidos", "pedido")
    victim = orders[120]
    clock.advance(minutes=5)
    marker = tiny_datetime(clock() - timedelta(seconds=1))
    sb.cancel_order(TOKEN, orders[121]["id"])
    sb.delete_order(TOKEN, victim["id"])
    assert error_code(api("pedido.obter.php", id=victim["id"])) == 32
    after = api.all_pages("pedidos.pesquisa.php", "pedidos", "pedido")
    assert ids(after) == [i for i in ids(orders) if i != victim["id"]]
    day = victim["data_pedido"]
    listings = [
        api.all_pages("pedidos.pesquisa.php", "pedidos", "pedido", dataInicial=day, dataFinal=day),
        api.all_pages("pedidos.pesquisa.php", "pedidos", "pedido", numero=victim["numero"]),
        api.all_pages(
            "pedidos.pesquisa.php", "pedidos", "pedido", situacao=victim["situacao"].lower()
        ),
    ]
    assert all(victim["id"] not in ids(listing) for listing in listings)
    changed = api.all_pages("pedidos.pesquisa.php", "pedidos", "pedido", dataAtualizacao=marker)
    assert ids(changed) == [orders[121]["id"]] and changed[0]["situacao"] == "Cancelado"
    truth = sb.truth(TOKEN, TODAY - timedelta(days=100), TODAY)
    assert victim["id"] not in truth.orders and victim["id"] in truth.orders_deleted
    assert truth.orders[orders[121]["id"]]["situacao"] == "Cancelado"
    assert sb.changes(TOKEN).ids == {
        "cancel_order": [orders[121]["id"]],
        "delete_order": [victim["id"]],
    }


@pytest.mark.parametrize("service, detail", [(PAGAR, "conta.pagar.obter.php")])
def test_a_cancelled_bill_is_listed_only_under_cancelada(sb, api, service, detail):
    bill = api.all_pages(service, "contas", "conta", situacao="aberto")[0]
    cancelled_before = ids(api.all_pages(service, "contas", "conta", situacao="cancelada"))
    sb.cancel_bill(TOKEN, bill["id"])
    for situacao in ("aberto", "pago", "parcial"):
        assert bill["id"] not in ids(api.all_pages(service, "contas", "conta", situacao=situacao))
    cancelled = ids(api.all_pages(service, "contas", "conta", situacao="cancelada"))
    assert sorted(cancelled) == sorted([*cancelled_before, bill["id"]])
    assert api(detail, id=bill["id"])["conta"]["situacao"] == "cancelada"
    with pytest.raises(ValueError):
        sb.pay_bill(TOKEN, bill["id"])  # only open bills can be paid


def test_a_deleted_bill_answers_32_and_leaves_every_listing(sb, api):
    bill = api.all_pages(RECEBER, "contas", "conta")[7]
    sb.delete_bill(TOKEN, bill["id"])
    assert error_code(api("conta.receber.obter.php", id=bill["id"])) == 32
    assert bill["id"] not in ids(api.all_pages(RECEBER, "contas", "conta"))
    day = bill["data_emissao"]
    window = {"data_ini_emissao": day, "data_fim_emissao": day}
    assert bill["id"] not in ids(api.all_pages(RECEBER, "contas", "conta", **window))
    truth = sb.truth(TOKEN, brdate(day), brdate(day))
    assert bill["id"] in truth.receivables_deleted
    assert bill["id"] not in truth.receivables_open | truth.receivables_paid


def test_a_partial_payment_lowers_the_saldo_and_lists_under_parcial(sb, api):
    bill = next(b for b in api.all_pages(PAGAR, "contas", "conta") if b["situacao"] == "aberto")
    amount = sb.partly_pay_bill(TOKEN, bill["id"], Decimal("10.00"))
    conta = api("conta.pagar.obter.php", id=bill["id"])["conta"]
    assert amount == Decimal("10.00") and conta["situacao"] == "parcial"
    assert Decimal(conta["saldo"]) == Decimal(bill["valor"]) - 10
    assert conta["valor_pago"] == "10.00" and brdate(conta["data_pagamento"]) == TODAY
    assert bill["id"] in ids(api.all_pages(PAGAR, "contas", "conta", situacao="parcial"))
    assert bill["id"] in ids(api.all_pages(PAGAR, "contas", "conta", situacao="aberto"))
    with pytest.raises(ValueError):
        sb.partly_pay_bill(TOKEN, bill["id"], Decimal(conta["saldo"]))


def test_aberto_can_be_made_to_exclude_partly_paid_bills(clock):
    sb = Sandbox(clock=clock)
    sb.add_account("tok-strict", AccountSpec(open_includes_partial=False, **GENEROUS))
    with httpx.Client(transport=SandboxTransport(sb), base_url="http://sb/api2") as http:
        api = Api(http, token="tok-strict")
        opened = api.all_pages(PAGAR, "contas", "conta", situacao="aberto")
        partial = api.all_pages(PAGAR, "contas", "conta", situacao="parcial")
    assert opened and partial
    assert {b["situacao"] for b in opened} == {"aberto"}
    # The truth's open position still counts what is owed on partly paid bills.
    assert set(ids(partial)) <= set(sb.open_bills("tok-strict", "pagar"))


def test_the_open_set_is_every_bill_still_owed_whatever_its_emission_date(sb, api):
    listed = api.all_pages(PAGAR, "contas", "conta", situacao="aberto")
    old = min(listed, key=lambda b: brdate(b["data_emissao"]))
    assert brdate(old["data_emissao"]) < TODAY - timedelta(days=30)
    recent = sb.truth(TOKEN, TODAY - timedelta(days=30), TODAY)
    assert old["id"] not in recent.payables_open and old["id"] in recent.payables_open_all
    assert set(recent.payables_open_all) == set(ids(listed))
    assert recent.payables_open_all == sb.open_bills(TOKEN, "pagar")
    sb.pay_bill(TOKEN, old["id"])
    assert old["id"] not in sb.truth(TOKEN, TODAY, TODAY).payables_open_all
    receivable = api.all_pages(RECEBER, "contas", "conta", situacao="aberto")[0]
    sb.cancel_bill(TOKEN, receivable["id"])
    day = brdate(receivable["data_emissao"])
    truth = sb.truth(TOKEN, day, day)
    assert receivable["id"] in truth.receivables_cancelled
    assert receivable["id"] not in truth.receivables_open_all


def test_deactivated_and_deleted_products_are_listed_only_under_their_situacao(sb, api):
    active = api.all_pages("produtos.pesquisa.php", "produtos", "produto", pesquisa="")
    off, gone = active[0]["id"], active[1]["id"]
    sb.set_product_situacao(TOKEN, off, "I")
    sb.set_product_situacao(TOKEN, gone, "E")
    now_active = ids(api.all_pages("produtos.pesquisa.php", "produtos", "produto", pesquisa=""))
    assert now_active == [i for i in ids(active) if i not in (off, gone)]
    for situacao, product_id in (("I", off), ("E", gone)):
        listed = api.all_pages(
            "produtos.pesquisa.php", "produtos", "produto", pesquisa="", situacao=situacao
        )
        assert product_id in ids(listed)
    truth = sb.truth(TOKEN, TODAY, TODAY)
    assert off in truth.products_inactive and gone in truth.products_deleted
    assert off not in truth.products and gone not in truth.products


def test_moving_stock_changes_the_deposit_and_the_balance(sb, api):
    product_id = api("produtos.pesquisa.php", pesquisa="")["produtos"][0]["produto"]["id"]
    before = api("produto.obter.estoque.php", id=product_id)["produto"]
    sb.move_stock(TOKEN, product_id, 7)
    after = api("produto.obter.estoque.php", id=product_id)["produto"]
    assert after["saldo"] == before["saldo"] + 7
    geral = [d["deposito"]["saldo"] for d in after["depositos"] if d["deposito"]["nome"] == "Geral"]
    assert geral == [before["depositos"][0]["deposito"]["saldo"] + 7]
    with pytest.raises(ValueError):
        sb.move_stock(TOKEN, product_id, 1, deposito="Nenhum")
    with pytest.raises(KeyError):
        sb.move_stock(TOKEN, 1, 1)


ALL_KINDS = Churn(
    at_calls=(1,),
    seed=7,
    pay_bills=2,
    partly_pay_bills=1,
    cancel_bills=1,
    delete_bills=1,
    cancel_orders=2,
    delete_orders=2,
    new_orders=3,
    new_orders_window=(TODAY - timedelta(days=20), TODAY - timedelta(days=10)),
    move_stock=3,
    deactivate_products=1,
    delete_products=1,
)


def test_a_churn_batch_makes_every_kind_of_change_before_the_call_it_is_due(sb, api):
    sb.set_churn(TOKEN, ALL_KINDS)
    assert sb.changes(TOKEN).total == 0
    api("pedidos.pesquisa.php")
    log = sb.changes(TOKEN)
    assert dict(log.counts) == {
        "pay_bill": 4,
        "partly_pay_bill": 2,
        "cancel_bill": 2,
        "delete_bill": 2,
        "cancel_order": 2,
        "delete_order": 2,
        "add_order": 3,
        "move_stock": 3,
        "deactivate_product": 1,
        "delete_product": 1,
    }
    assert {e.call for e in log.events} == {1}
    for bill_id in log.ids["pay_bill"]:
        service = "conta.pagar.obter.php" if bill_id < 600_000_000 else "conta.receber.obter.php"
        assert api(service, id=bill_id)["conta"]["situacao"] == "pago"
    for order_id in log.ids["delete_order"]:
        assert error_code(api("pedido.obter.php", id=order_id)) == 32
    for order_id in log.ids["cancel_order"]:
        assert api("pedido.obter.php", id=order_id)["pedido"]["situacao"] == "Cancelado"
    for order_id in log.ids["add_order"]:
        day = brdate(api("pedido.obter.php", id=order_id)["pedido"]["data_pedido"])
        assert TODAY - timedelta(days=20) <= day <= TODAY - timedelta(days=10)
    assert sb.changes(TOKEN).total == log.total  # at_calls=(1,) fires once


def test_churn_every_n_calls_is_deterministic_and_stops_when_cleared(clock):
    churn = Churn(every_calls=3, seed=11, pay_bills=1, cancel_orders=1)

    def run() -> list[tuple[str, int, int | None]]:
        sb = Sandbox(clock=Clock())
        sb.add_account("tok-c", AccountSpec(**GENEROUS))
        sb.set_churn("tok-c", churn)
        with httpx.Client(transport=SandboxTransport(sb), base_url="http://sb/api2") as http:
            api = Api(http, token="tok-c")
            for _ in range(7):
                api("contas.pagar.pesquisa.php", situacao="aberto")
            sb.set_churn("tok-c", None)
            for _ in range(6):
                api("contas.pagar.pesquisa.php")
        return [(e.kind, e.id, e.call) for e in sb.changes("tok-c").events]

    events = run()
    assert [call for _, _, call in events] == [3, 3, 3, 6, 6, 6]
    assert run() == events

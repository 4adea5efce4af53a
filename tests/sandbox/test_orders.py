"""Orders: paging, date and change-time filters, detail totals, evolve()."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import httpx

from sandbox import AccountSpec, Sandbox, SandboxTransport
from tests.support.sandbox_calls import GENEROUS, TODAY, TOKEN, Api, error_code, tiny_datetime


def brdate(text: str) -> date:
    return datetime.strptime(text, "%d/%m/%Y").date()


def test_pages_hold_100_orders_and_the_last_page_the_rest(api):
    sizes = [len(api("pedidos.pesquisa.php", pagina=n)["pedidos"]) for n in (1, 2, 3)]
    assert sizes == [100, 100, 50]


def test_a_page_past_the_end_is_code_23(api):
    assert error_code(api("pedidos.pesquisa.php", pagina=4)) == 23
    assert error_code(api("pedidos.pesquisa.php", pagina=0)) == 23


def test_a_query_without_records_is_code_20_not_an_empty_list(api):
    retorno = api("pedidos.pesquisa.php", dataInicial="01/01/2001", dataFinal="31/01/2001")
    assert error_code(retorno) == 20
    assert "pedidos" not in retorno


def test_orders_are_listed_once_across_pages_in_date_order(api):
    orders = api.all_pages("pedidos.pesquisa.php", "pedidos", "pedido")
    assert len(orders) == 250
    assert len({o["id"] for o in orders}) == 250
    dates = [brdate(o["data_pedido"]) for o in orders]
    assert dates == sorted(dates)
    assert TODAY - timedelta(days=100) <= dates[0] and dates[-1] <= TODAY


def test_sort_desc_lists_the_newest_first(api):
    ascending = api("pedidos.pesquisa.php")["pedidos"]
    descending = api("pedidos.pesquisa.php", sort="DESC", pagina=3)["pedidos"]
    assert [w["pedido"]["id"] for w in descending] == [w["pedido"]["id"] for w in ascending][49::-1]


def test_the_date_window_filters_on_data_pedido_inclusively(api):
    start, end = TODAY - timedelta(days=20), TODAY - timedelta(days=10)
    window = {"dataInicial": start.strftime("%d/%m/%Y"), "dataFinal": end.strftime("%d/%m/%Y")}
    inside = api.all_pages("pedidos.pesquisa.php", "pedidos", "pedido", **window)
    everything = api.all_pages("pedidos.pesquisa.php", "pedidos", "pedido")
    expected = [o for o in everything if start <= brdate(o["data_pedido"]) <= end]
    assert inside == expected
    assert 20 < len(inside) < 40  # 250 orders over 100 days, 11 days of them


def test_filters_by_situacao_numero_and_cliente_match_the_records(api):
    everything = api.all_pages("pedidos.pesquisa.php", "pedidos", "pedido")
    delivered = api.all_pages("pedidos.pesquisa.php", "pedidos", "pedido", situacao="entregue")
    assert delivered == [o for o in everything if o["situacao"] == "Entregue"]
    assert delivered
    one = everything[17]
    assert api("pedidos.pesquisa.php", numero=one["numero"])["pedidos"] == [{"pedido": one}]
    surname = one["nome"].split()[-1]
    by_client = api.all_pages("pedidos.pesquisa.php", "pedidos", "pedido", cliente=surname.lower())
    assert one in by_client
    assert all(surname.lower() in o["nome"].lower() for o in by_client)


def test_the_detail_totals_match_the_items_freight_discount_and_list_value(api):
    for wrapper in api("pedidos.pesquisa.php")["pedidos"][:30]:
        summary = wrapper["pedido"]
        pedido = api("pedido.obter.php", id=summary["id"])["pedido"]
        items = [w["item"] for w in pedido["itens"]]
        assert items
        products = sum(Decimal(i["quantidade"]) * Decimal(i["valor_unitario"]) for i in items)
        assert Decimal(pedido["total_produtos"]) == products
        total = products + Decimal(pedido["valor_frete"]) - Decimal(pedido["valor_desconto"])
        assert Decimal(pedido["total_pedido"]) == total == Decimal(summary["valor"])
        installments = sum(Decimal(p["parcela"]["valor"]) for p in pedido["parcelas"])
        assert installments == total
        assert pedido["cliente"]["nome"] == summary["nome"]
        assert pedido["cliente"]["cpf_cnpj"]
        assert pedido["situacao"] == summary["situacao"]


def test_an_unknown_order_id_is_code_32(api):
    assert error_code(api("pedido.obter.php", id=999)) == 32
    assert error_code(api("pedido.obter.php", id="abc")) == 31


def test_evolve_adds_todays_orders_and_status_changes_found_by_change_time(sb, api, clock):
    clock.advance(hours=2)
    before = {o["id"]: o for o in api.all_pages("pedidos.pesquisa.php", "pedidos", "pedido")}
    sb.evolve(TOKEN, new_orders=4, status_changes=3, payments=0)
    after = {o["id"]: o for o in api.all_pages("pedidos.pesquisa.php", "pedidos", "pedido")}
    new_ids = set(after) - set(before)
    assert len(new_ids) == 4
    for order_id in new_ids:
        assert brdate(after[order_id]["data_pedido"]) == TODAY
        assert after[order_id]["situacao"] == "Em aberto"
    moved = {i for i in before if before[i]["situacao"] != after[i]["situacao"]}
    assert len(moved) == 3
    marker = tiny_datetime(clock() - timedelta(seconds=1))
    changed = api.all_pages("pedidos.pesquisa.php", "pedidos", "pedido", dataAtualizacao=marker)
    assert {o["id"] for o in changed} == new_ids | moved
    later = tiny_datetime(clock() + timedelta(seconds=1))
    assert error_code(api("pedidos.pesquisa.php", dataAtualizacao=later)) == 20


def test_change_time_filters_base_orders_by_their_creation(api):
    everything = api.all_pages("pedidos.pesquisa.php", "pedidos", "pedido")
    cut = TODAY - timedelta(days=5)
    recent = api.all_pages(
        "pedidos.pesquisa.php",
        "pedidos",
        "pedido",
        dataAtualizacao=cut.strftime("%d/%m/%Y") + " 00:00:00",
    )
    assert recent == [o for o in everything if brdate(o["data_pedido"]) >= cut]


def test_a_200000_order_account_is_created_and_paged_without_materialising(clock):
    sb = Sandbox(clock=clock)
    sb.add_account("tok-big", AccountSpec(orders=200_000, days=400, **GENEROUS))
    account = sb.account("tok-big")
    with httpx.Client(transport=SandboxTransport(sb), base_url="http://sb/api2") as http:
        api = Api(http, token="tok-big")
        first = api("pedidos.pesquisa.php")
        assert first["numero_paginas"] == "2000"
        last = api("pedidos.pesquisa.php", pagina=2000)["pedidos"]
        assert len(last) == 100
        assert error_code(api("pedidos.pesquisa.php", pagina=2001)) == 23
        newest = last[-1]["pedido"]
        assert brdate(newest["data_pedido"]) == TODAY
        assert api("pedido.obter.php", id=newest["id"])["pedido"]["numero"] == newest["numero"]
        day = (TODAY - timedelta(days=100)).strftime("%d/%m/%Y")
        one_day = api("pedidos.pesquisa.php", dataInicial=day, dataFinal=day)
        assert int(one_day["numero_paginas"]) in range(1, 7)  # about 500 orders a day
        sb.evolve("tok-big", new_orders=3, status_changes=2, payments=1)
        marker = tiny_datetime(clock() - timedelta(seconds=1))
        changed = api("pedidos.pesquisa.php", dataAtualizacao=marker)
        assert len(changed["pedidos"]) == 5
    # Nothing per order is kept: only the overlay of what evolve() changed.
    assert len(account.order_changes) == 2 and len(account.new_orders) == 3

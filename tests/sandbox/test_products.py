"""Products and stock: search, per-deposit balances, the stock-updates feed."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tests.support.sandbox_calls import TOKEN, error_code, tiny_datetime


def products(api, **params) -> list[dict]:
    return api.all_pages("produtos.pesquisa.php", "produtos", "produto", **params)


def test_an_empty_search_lists_the_active_products_with_their_fields(api):
    active = products(api, pesquisa="")
    assert 35 <= len(active) <= 50  # 50 products, about 90% active
    assert all(p["situacao"] == "A" for p in active)
    first = active[0]
    assert isinstance(first["id"], int) and isinstance(first["preco"], str)
    assert {"id", "codigo", "nome", "preco", "unidade", "gtin", "situacao", "data_criacao"} <= set(
        first
    )


def test_the_situacao_filter_reaches_inactive_products_and_statuses_partition_all(api):
    by_status = {s: products(api, pesquisa="", situacao=s) for s in ("A", "I", "E")}
    ids = [p["id"] for group in by_status.values() for p in group]
    assert len(ids) == len(set(ids)) == 50
    assert all(p["situacao"] == "I" for p in by_status["I"])


def test_the_search_text_matches_name_or_code_ignoring_case_and_accents(api):
    target = products(api, pesquisa="")[3]
    assert target in products(api, pesquisa=target["codigo"].lower())
    word = target["nome"].split()[0]
    found = products(api, pesquisa=word.upper())
    assert target in found
    assert error_code(api("produtos.pesquisa.php", pesquisa="nada-parecido-xyz")) == 20


def test_stock_sums_the_deposits_that_count_and_reports_reserved(api):
    for product in products(api, pesquisa="")[:20]:
        stock = api("produto.obter.estoque.php", id=product["id"])["produto"]
        deposits = [d["deposito"] for d in stock["depositos"]]
        assert deposits and all(
            set(d) == {"nome", "desconsiderar", "saldo", "empresa"} for d in deposits
        )
        counted = sum(Decimal(str(d["saldo"])) for d in deposits if d["desconsiderar"] == "N")
        assert Decimal(str(stock["saldo"])) == counted
        assert 0 <= stock["saldoReservado"] <= max(stock["saldo"], 0) + 15
    assert error_code(api("produto.obter.estoque.php", id=7)) == 32


def test_stock_updates_list_products_changed_since_and_refuse_old_dates(sb, api, clock):
    since = tiny_datetime(clock() - timedelta(days=29))
    recent = api.all_pages("lista.atualizacoes.estoque", "produtos", "produto", dataAlteracao=since)
    assert recent and all({"saldo", "depositos", "data_alteracao"} <= set(p) for p in recent)
    too_old = tiny_datetime(clock() - timedelta(days=31))
    assert error_code(api("lista.atualizacoes.estoque", dataAlteracao=too_old)) == 31

    clock.advance(minutes=10)
    marker = tiny_datetime(clock() - timedelta(seconds=1))
    assert error_code(api("lista.atualizacoes.estoque", dataAlteracao=marker)) == 20
    sold_ids = set()
    sb.evolve(TOKEN, new_orders=2, status_changes=0, payments=0)
    for wrapper in api("pedidos.pesquisa.php", dataAtualizacao=marker)["pedidos"]:
        pedido = api("pedido.obter.php", id=wrapper["pedido"]["id"])["pedido"]
        sold_ids |= {item["item"]["id_produto"] for item in pedido["itens"]}
    changed = api.all_pages(
        "lista.atualizacoes.estoque", "produtos", "produto", dataAlteracao=marker
    )
    assert {p["id"] for p in changed} == sold_ids


def test_a_sale_takes_its_quantity_out_of_stock(sb, api, clock):
    def saldo(product_id: int) -> Decimal:
        return Decimal(str(api("produto.obter.estoque.php", id=product_id)["produto"]["saldo"]))

    every_id = [p["id"] for s in "AIE" for p in products(api, pesquisa="", situacao=s)]
    before = {product_id: saldo(product_id) for product_id in every_id}
    clock.advance(minutes=10)
    marker = tiny_datetime(clock() - timedelta(seconds=1))
    sb.evolve(TOKEN, new_orders=1, status_changes=0, payments=0)
    order_id = api("pedidos.pesquisa.php", dataAtualizacao=marker)["pedidos"][0]["pedido"]["id"]
    items = [w["item"] for w in api("pedido.obter.php", id=order_id)["pedido"]["itens"]]
    for item in items:
        sold = Decimal(item["quantidade"])
        assert saldo(item["id_produto"]) == before[item["id_produto"]] - sold
    untouched = set(every_id) - {item["id_produto"] for item in items}
    assert all(saldo(product_id) == before[product_id] for product_id in untouched)

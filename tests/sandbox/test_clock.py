"""Tiny's clock: skewed from the client's, sent in the Date header, read in Brasília time."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx

from sandbox import AccountSpec, Sandbox, SandboxTransport
from tests.support.sandbox_calls import BRASILIA, GENEROUS, NOW, TOKEN, Api, error_code


def test_every_answer_carries_the_sandbox_clock_in_the_date_header(clock):
    sb = Sandbox(clock=clock, clock_skew=timedelta(minutes=-10))
    sb.add_account(TOKEN, AccountSpec(**GENEROUS))
    with httpx.Client(transport=SandboxTransport(sb), base_url="http://sb/api2") as http:
        api = Api(http)
        ok = api.raw("pedidos.pesquisa.php")
        refused = api.raw("pedido.obter.php", id=1)
        assert parsedate_to_datetime(ok.headers["Date"]) == NOW - timedelta(minutes=10)
        assert parsedate_to_datetime(refused.headers["Date"]) == NOW - timedelta(minutes=10)
        sb.clock_skew = timedelta(seconds=90)
        assert parsedate_to_datetime(api.raw("x").headers["Date"]) == NOW + timedelta(seconds=90)


def test_records_are_dated_by_the_skewed_clock(clock):
    sb = Sandbox(clock=clock, clock_skew=timedelta(minutes=-10))
    sb.add_account(TOKEN, AccountSpec(**GENEROUS))
    with httpx.Client(transport=SandboxTransport(sb), base_url="http://sb/api2") as http:
        api = Api(http)
        order_id = sb.add_order(TOKEN)
        sb.cancel_order(TOKEN, order_id)
        # The client's clock says 12:00 in Brasília; Tiny's says 11:50.
        client_now = "15/06/2025 11:55:00"
        assert error_code(api("pedidos.pesquisa.php", dataAtualizacao=client_now)) == 20
        found = api("pedidos.pesquisa.php", dataAtualizacao="15/06/2025 11:49:00")
        assert [w["pedido"]["id"] for w in found["pedidos"]] == [order_id]


def test_a_product_created_at_2230_brasilia_is_found_by_its_brasilia_date_only(sb, api):
    late = datetime(2025, 6, 14, 22, 30, tzinfo=BRASILIA)  # 01:30 UTC on the 15th
    product_id = sb.add_product(TOKEN, late)

    def created_since(day: str) -> list[int]:
        return [
            p["id"]
            for p in api.all_pages(
                "produtos.pesquisa.php", "produtos", "produto", pesquisa="", dataCriacao=day
            )
        ]

    assert product_id in created_since("14/06/2025")
    assert product_id not in created_since("15/06/2025")  # the UTC date misses it
    listed = [p for p in api.all_pages("produtos.pesquisa.php", "produtos", "produto", pesquisa="")]
    (product,) = [p for p in listed if p["id"] == product_id]
    assert product["data_criacao"] == "14/06/2025 22:30:00" and product["situacao"] == "A"
    assert product_id in sb.truth(TOKEN, late.date(), late.date()).products


def test_an_order_at_2230_brasilia_has_the_brasilia_date(sb, api):
    order_id = sb.add_order(TOKEN, datetime(2025, 6, 14, 22, 30, tzinfo=BRASILIA))
    assert api("pedido.obter.php", id=order_id)["pedido"]["data_pedido"] == "14/06/2025"
    utc_day = api.all_pages(
        "pedidos.pesquisa.php",
        "pedidos",
        "pedido",
        dataInicial="15/06/2025",
        dataFinal="15/06/2025",
    )
    assert order_id not in [o["id"] for o in utc_day]

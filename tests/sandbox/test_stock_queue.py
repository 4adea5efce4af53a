"""lista.atualizacoes.estoque empties as it is read, as Tiny's page for it says."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from sandbox import AccountSpec, Sandbox, SandboxTransport
from tests.support.sandbox_calls import GENEROUS, Api, Clock, error_code, tiny_datetime

SERVICE = "lista.atualizacoes.estoque"


def product_ids(retorno: dict) -> list[int]:
    return [w["produto"]["id"] for w in retorno["produtos"]]


@pytest.fixture
def queue(clock: Clock):
    """Two accounts with the same data, one consuming on read (Tiny's way), one not."""
    sb = Sandbox(clock=clock)
    spec = {"products": 2000, "seed": 5, **GENEROUS}
    sb.add_account("tok-eats", AccountSpec(**spec))
    sb.add_account("tok-keeps", AccountSpec(stock_updates_consume=False, **spec))
    with httpx.Client(transport=SandboxTransport(sb), base_url="http://sb/api2") as http:
        yield sb, Api(http, token="tok-eats"), Api(http, token="tok-keeps")


def test_a_served_page_leaves_the_queue_so_page_two_skips_a_page(queue, clock):
    sb, eats, keeps = queue
    since = tiny_datetime(clock() - timedelta(days=29))
    listing = [product_ids(keeps(SERVICE, dataAlteracao=since, pagina=n)) for n in (1, 2, 3, 4)]
    assert all(len(p) == 100 for p in listing)  # the queue holds four pages or more
    first = eats(SERVICE, dataAlteracao=since)
    assert product_ids(first) == listing[0]
    second = eats(SERVICE, dataAlteracao=since, pagina=2)
    assert product_ids(second) == listing[2]  # what was page 2 is now page 1
    assert int(second["numero_paginas"]) == int(first["numero_paginas"]) - 1
    assert product_ids(eats(SERVICE, dataAlteracao=since)) == listing[1]
    # The non-consuming twin still serves the same pages.
    assert product_ids(keeps(SERVICE, dataAlteracao=since, pagina=2)) == listing[1]


def test_a_served_product_comes_back_when_its_stock_moves_again(queue, clock):
    sb, eats, _ = queue
    since = tiny_datetime(clock() - timedelta(days=29))
    while eats(SERVICE, dataAlteracao=since)["status"] == "OK":
        pass  # read the whole queue
    assert error_code(eats(SERVICE, dataAlteracao=since)) == 20
    clock.advance(minutes=1)
    marker = tiny_datetime(clock() - timedelta(seconds=1))
    product_id = eats("produtos.pesquisa.php", pesquisa="")["produtos"][0]["produto"]["id"]
    sb.move_stock("tok-eats", product_id, -2)
    again = eats(SERVICE, dataAlteracao=since)
    assert product_ids(again) == [product_id]
    assert error_code(eats(SERVICE, dataAlteracao=marker)) == 20  # served: gone again


def test_data_alteracao_filters_the_queue(queue, clock):
    sb, _, keeps = queue
    clock.advance(minutes=3)
    marker = tiny_datetime(clock() - timedelta(seconds=1))
    product_id = keeps("produtos.pesquisa.php", pesquisa="")["produtos"][3]["produto"]["id"]
    sb.move_stock("tok-keeps", product_id, 4)
    assert product_ids(keeps(SERVICE, dataAlteracao=marker)) == [product_id]
    moved = keeps(SERVICE, dataAlteracao=marker)["produtos"][0]["produto"]
    assert moved["data_alteracao"] == tiny_datetime(clock())

"""Planted odd values are served verbatim, in listings and details, and named by the truth."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from sandbox import ODD_DATES, ODD_IDS, ODD_MONEY, ODD_TEXT
from tests.support.sandbox_calls import TODAY, TOKEN

PAGAR = "contas.pagar.pesquisa.php"


def test_odd_money_is_served_as_the_exact_text_on_page_one(sb, api):
    planted = sb.plant_values(TOKEN, PAGAR, "valor", ODD_MONEY, situacao="aberto")
    response = api.raw(PAGAR, situacao="aberto")
    rows = [w["conta"] for w in response.json()["retorno"]["contas"]]
    assert [r["valor"] for r in rows[: len(ODD_MONEY)]] == list(ODD_MONEY)
    assert [r["id"] for r in rows[: len(ODD_MONEY)]] == planted
    assert '"valor": "1.234,56"' in response.text and '"valor": "1e999"' in response.text
    untouched = rows[len(ODD_MONEY)]
    assert untouched["valor"].replace(".", "").isdigit()
    detail = api("conta.pagar.obter.php", id=planted[1])["conta"]
    assert detail["valor"] == "NaN"


def test_odd_text_survives_the_json_encoding_exactly(sb, api):
    ids = sb.plant_values(TOKEN, "pedidos.pesquisa.php", "nome", ODD_TEXT)
    response = api.raw("pedidos.pesquisa.php")
    names = [w["pedido"]["nome"] for w in response.json()["retorno"]["pedidos"][:3]]
    assert names == list(ODD_TEXT)
    assert "\\u0000" in response.text and "\\ud800" in response.text
    assert api("pedido.obter.php", id=ids[0])["pedido"]["nome"] == "Cliente\x00Nulo"


def test_an_id_past_bigint_and_impossible_dates(sb, api):
    (order_id,) = sb.plant_values(TOKEN, "pedidos.pesquisa.php", "id", ODD_IDS, position=4)
    sb.plant(TOKEN, order_id, "data_pedido", ODD_DATES[0])
    bills = sb.plant_values(TOKEN, PAGAR, "data_emissao", ODD_DATES)
    first = api("pedidos.pesquisa.php")["pedidos"][4]["pedido"]
    assert first["id"] == 2**63 and first["data_pedido"] == "31/02/2026"
    served = [w["conta"]["data_emissao"] for w in api(PAGAR)["contas"][:2]]
    assert served == ["31/02/2026", "00/00/0000"]
    truth = sb.truth(TOKEN, TODAY - timedelta(days=100), TODAY)
    assert truth.planted == {
        order_id: {"id": 2**63, "data_pedido": "31/02/2026"},
        bills[0]: {"data_emissao": "31/02/2026"},
        bills[1]: {"data_emissao": "00/00/0000"},
    }
    # The truth keeps the real values, so a test expects "set aside" for the planted only.
    assert truth.orders[order_id]["id"] == order_id
    json.dumps(truth.to_json())
    sb.clear_planted(TOKEN)
    assert api("pedidos.pesquisa.php")["pedidos"][4]["pedido"]["id"] == order_id


def test_planting_refuses_what_json_cannot_carry_and_positions_past_the_page(sb):
    with pytest.raises(TypeError):
        sb.plant(TOKEN, 1, "valor", 1.5)
    with pytest.raises(ValueError):
        sb.plant_values(TOKEN, PAGAR, "valor", ["x"] * 101)

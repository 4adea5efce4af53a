"""The envelope and its quirks: strings for numbers, errors with HTTP 200, Tiny's error codes."""

from __future__ import annotations

import re
from decimal import Decimal

import httpx

from sandbox import AccountSpec, Sandbox, SandboxTransport
from tests.support.sandbox_calls import TOKEN, Api, error_code

DATE = re.compile(r"^\d{2}/\d{2}/\d{4}$")
MONEY = re.compile(r"^-?\d+\.\d{2}$")


def test_a_listing_has_the_retorno_envelope_with_page_numbers_as_strings(api):
    retorno = api("pedidos.pesquisa.php")
    assert retorno["status"] == "OK"
    assert retorno["status_processamento"] == "3"
    assert retorno["pagina"] == "1"
    assert retorno["numero_paginas"] == "3"  # 250 orders, 100 a page
    assert len(retorno["pedidos"]) == 100
    assert all(set(wrapper) == {"pedido"} for wrapper in retorno["pedidos"])


def test_order_fields_have_integer_ids_money_strings_and_brazilian_dates(api):
    pedido = api("pedidos.pesquisa.php")["pedidos"][0]["pedido"]
    assert set(pedido) == {
        "id",
        "numero",
        "numero_ecommerce",
        "data_pedido",
        "data_prevista",
        "nome",
        "valor",
        "id_vendedor",
        "nome_vendedor",
        "situacao",
        "codigo_rastreamento",
    }
    assert isinstance(pedido["id"], int)
    assert isinstance(pedido["valor"], str) and MONEY.match(pedido["valor"])
    assert Decimal(pedido["valor"]) > 0
    assert DATE.match(pedido["data_pedido"]) and DATE.match(pedido["data_prevista"])


def test_errors_answer_http_200_with_status_erro_codigo_and_message(api):
    response = api.raw("pedido.obter.php", id=1)
    assert response.status_code == 200
    retorno = response.json()["retorno"]
    assert error_code(retorno) == 32
    assert retorno["erros"] == [{"erro": "Registro não localizado"}]


def test_codigo_erro_comes_sometimes_as_text_and_sometimes_as_a_number(api):
    codes = [api("pedido.obter.php", id=1)["codigo_erro"] for _ in range(6)]
    assert {type(code) for code in codes} == {str, int}
    assert {int(code) for code in codes} == {32}


def test_a_missing_token_is_code_1_and_an_unknown_one_code_2(http):
    assert (
        error_code(http.get("/pedidos.pesquisa.php", params={"formato": "json"}).json()["retorno"])
        == 1
    )
    assert error_code(Api(http, token="nobody")("pedidos.pesquisa.php")) == 2


def test_an_unknown_service_answers_an_error_envelope(api):
    retorno = api("pedidos.apagar.php")
    assert error_code(retorno) == 4
    assert "pedidos.apagar.php" in retorno["erros"][0]["erro"]


def test_every_answer_to_a_known_token_carries_the_x_limit_api_header(clock):
    sb = Sandbox(clock=clock)
    sb.add_account("tok-120", AccountSpec(orders=10, rate_limit_calls=120))
    with httpx.Client(transport=SandboxTransport(sb), base_url="http://x/api2") as http:
        api = Api(http, token="tok-120")
        assert api.raw("pedidos.pesquisa.php").headers["x-limit-api"] == "120"
        assert api.raw("pedido.obter.php", id=1).headers["x-limit-api"] == "120"


def test_get_query_and_form_post_give_the_same_answer(api):
    by_get = api.raw("pedidos.pesquisa.php", pagina=2).json()
    by_post = api.raw("pedidos.pesquisa.php", method="POST", pagina=2).json()
    assert by_get == by_post
    assert by_get["retorno"]["pagina"] == "2"


def test_services_are_routed_on_the_last_path_segment_whatever_the_prefix(sb):
    params = {"token": TOKEN, "formato": "json"}
    for base in ("http://a/api2", "http://b/some/deep/prefix", "http://c"):
        with httpx.Client(transport=SandboxTransport(sb), base_url=base) as http:
            body = http.get("/pedidos.pesquisa.php", params=params).json()
            assert body["retorno"]["status"] == "OK"


def test_without_formato_json_the_answer_is_xml_like_tinys_default(http):
    response = http.get("/pedidos.pesquisa.php", params={"token": TOKEN})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text.startswith('<?xml version="1.0" encoding="UTF-8"?><retorno>')
    assert "<status>OK</status>" in response.text
    assert "<pedidos><pedido><id>" in response.text


def test_a_missing_required_parameter_is_code_10(api):
    assert error_code(api("produtos.pesquisa.php")) == 10
    assert error_code(api("pedido.obter.php")) == 10
    assert error_code(api("lista.atualizacoes.estoque")) == 10


def test_a_malformed_date_is_a_validation_error_not_a_crash(api):
    retorno = api("pedidos.pesquisa.php", dataInicial="2025-06-01")
    assert error_code(retorno) == 31
    assert "dataInicial" in retorno["erros"][0]["erro"]

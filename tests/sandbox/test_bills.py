"""Bills to pay and to receive: listing filters, situacao semantics, detail, payments."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from tests.support.sandbox_calls import TODAY, TOKEN, error_code

PAGAR, RECEBER = "contas.pagar.pesquisa.php", "contas.receber.pesquisa.php"
FIELDS = {
    "id",
    "nome_cliente",
    "historico",
    "numero_doc",
    "data_vencimento",
    "data_emissao",
    "valor",
    "saldo",
    "situacao",
}


def brdate(text: str) -> date:
    return datetime.strptime(text, "%d/%m/%Y").date()


def dmy(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def bills(api, service: str, **params) -> list[dict]:
    return api.all_pages(service, "contas", "conta", **params)


def test_payables_and_receivables_list_their_fields_receivables_with_bank_and_series(api):
    payable = api(PAGAR)["contas"][0]["conta"]
    receivable = api(RECEBER)["contas"][0]["conta"]
    assert set(payable) == FIELDS
    assert set(receivable) == FIELDS | {"numero_banco", "serie_doc"}
    assert isinstance(payable["id"], int) and isinstance(payable["valor"], str)
    assert payable["id"] != receivable["id"]


@pytest.mark.parametrize("service", [PAGAR, RECEBER])
def test_the_situacao_filter_splits_bills_and_aberto_includes_partly_paid(api, service):
    everything = bills(api, service)
    assert len(everything) == 80
    statuses = {b["situacao"] for b in everything}
    assert {"aberto", "pago"} <= statuses
    opened = bills(api, service, situacao="aberto")
    assert opened == [b for b in everything if b["situacao"] in ("aberto", "parcial")]
    for situacao in ("pago", "cancelada", "parcial"):
        expected = [b for b in everything if b["situacao"] == situacao]
        assert bills(api, service, situacao=situacao) == expected


@pytest.mark.parametrize("service", [PAGAR, RECEBER])
def test_open_bills_owe_their_balance_and_paid_bills_owe_nothing(api, service):
    for bill in bills(api, service):
        valor, saldo = Decimal(bill["valor"]), Decimal(bill["saldo"])
        assert brdate(bill["data_vencimento"]) >= brdate(bill["data_emissao"])
        if bill["situacao"] == "pago":
            assert saldo == 0
        elif bill["situacao"] == "aberto":
            assert saldo == valor
        elif bill["situacao"] == "parcial":
            assert 0 < saldo < valor


def test_emission_and_due_date_windows_filter_inclusively(api):
    everything = bills(api, PAGAR)
    start, end = TODAY - timedelta(days=60), TODAY - timedelta(days=30)
    by_emission = bills(api, PAGAR, data_ini_emissao=dmy(start), data_fim_emissao=dmy(end))
    assert by_emission == [b for b in everything if start <= brdate(b["data_emissao"]) <= end]
    assert by_emission
    by_due = bills(api, PAGAR, data_ini_vencimento=dmy(start), data_fim_vencimento=dmy(end))
    assert by_due == [b for b in everything if start <= brdate(b["data_vencimento"]) <= end]
    assert by_due


def test_name_and_document_filters_find_the_bill(api):
    bill = bills(api, RECEBER)[5]
    by_doc = bills(api, RECEBER, numero_doc=bill["numero_doc"])
    assert bill in by_doc
    by_name = bills(api, RECEBER, nome_cliente=bill["nome_cliente"].split()[0].upper())
    assert bill in by_name


def test_an_unknown_situacao_is_a_validation_error(api):
    assert error_code(api(PAGAR, situacao="quitada")) == 31


def test_the_bill_detail_adds_payment_details_consistent_with_the_list(api):
    for service, detail in ((PAGAR, "conta.pagar.obter.php"), (RECEBER, "conta.receber.obter.php")):
        for listed in bills(api, service, situacao="pago")[:5]:
            conta = api(detail, id=listed["id"])["conta"]
            assert {k: conta[k] for k in listed} == listed
            assert Decimal(conta["valor_pago"]) == Decimal(listed["valor"])
            assert brdate(conta["data_pagamento"]) >= brdate(listed["data_emissao"])
        assert error_code(api(detail, id=1)) == 32


def test_evolve_pays_open_bills_today(sb, api):
    open_before = {b["id"] for b in bills(api, PAGAR, situacao="aberto")}
    sb.evolve(TOKEN, new_orders=0, status_changes=0, payments=3)
    open_after = {b["id"] for b in bills(api, PAGAR, situacao="aberto")}
    paid_now = open_before - open_after
    assert len(paid_now) == 3 and open_after < open_before
    for bill_id in paid_now:
        conta = api("conta.pagar.obter.php", id=bill_id)["conta"]
        assert conta["situacao"] == "pago" and Decimal(conta["saldo"]) == 0
        assert brdate(conta["data_pagamento"]) == TODAY

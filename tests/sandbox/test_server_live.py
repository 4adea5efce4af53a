"""The admin surface for moving data, odd values and Tiny's clock, over real HTTP."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

import httpx

from tests.sandbox.test_server import api, served  # noqa: F401  (fixtures)
from tests.support.sandbox_calls import NOW, TOKEN, error_code


def admin(root: str, route: str, method: str = "POST", **body) -> dict:
    if method == "GET":
        response = httpx.get(f"{root}/_sandbox/{route}", params=body)
    else:
        response = httpx.post(f"{root}/_sandbox/{route}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_churn_and_explicit_changes_through_the_admin_surface(served, api):  # noqa: F811
    sb, root = served
    admin(root, "churn", token=TOKEN, at_calls=[2], seed=3, delete_orders=1, pay_bills=1)
    first = api("pedidos.pesquisa.php")["pedidos"][0]["pedido"]
    api("pedidos.pesquisa.php")  # call 2: the batch is applied before it is answered
    log = admin(root, "changes", "GET", token=TOKEN)
    assert log["counts"] == {"delete_order": 1, "pay_bill": 2} and log["total"] == 3
    assert {e["call"] for e in log["events"]} == {2}
    deleted = log["ids"]["delete_order"][0]
    assert error_code(api("pedido.obter.php", id=deleted)) == 32

    admin(root, "change", token=TOKEN, action="delete_order", id=first["id"])
    assert error_code(api("pedido.obter.php", id=first["id"])) == 32
    listed = api("contas.receber.pesquisa.php", situacao="aberto")["contas"]
    bill = next(w["conta"] for w in listed if w["conta"]["situacao"] == "aberto")
    paid = admin(
        root, "change", token=TOKEN, action="partly_pay_bill", id=bill["id"], amount="1.00"
    )
    assert paid["amount"] == "1.00"
    conta = api("conta.receber.obter.php", id=bill["id"])["conta"]
    assert conta["situacao"] == "parcial" and conta["valor_pago"] == "1.00"
    created = admin(
        root, "change", token=TOKEN, action="add_product", created_at="2025-06-14T22:30:00-03:00"
    )
    listed = api("produtos.pesquisa.php", pesquisa="", dataCriacao="14/06/2025 22:00:00")
    assert [w["produto"]["id"] for w in listed["produtos"]] == [created["id"]]
    unknown = httpx.post(f"{root}/_sandbox/change", json={"token": TOKEN, "action": "x"})
    assert unknown.status_code == 400
    bad = httpx.post(f"{root}/_sandbox/churn", json={"token": TOKEN, "pay_all": 1})
    assert bad.status_code == 400


def test_planting_open_bills_and_the_clock_through_the_admin_surface(served, api):  # noqa: F811
    sb, root = served
    planted = admin(
        root,
        "plant",
        token=TOKEN,
        service="contas.pagar.pesquisa.php",
        field="valor",
        values=["NaN", "1.234,56"],
        params={"situacao": "aberto"},
    )
    rows = api("contas.pagar.pesquisa.php", situacao="aberto")["contas"]
    assert [r["conta"]["valor"] for r in rows[:2]] == ["NaN", "1.234,56"]
    assert admin(root, "planted", "GET", token=TOKEN) == {
        str(planted["ids"][0]): {"valor": "NaN"},
        str(planted["ids"][1]): {"valor": "1.234,56"},
    }
    truth = admin(root, "truth", "GET", token=TOKEN, start="2025-06-01", end="2025-06-15")
    assert set(truth["planted"]) == {str(i) for i in planted["ids"]}
    opened = admin(root, "open_bills", "GET", token=TOKEN, kind="pagar")
    assert opened == truth["payables_open_all"] and opened
    admin(root, "clear_planted", token=TOKEN)
    assert admin(root, "planted", "GET", token=TOKEN) == {}

    clock = admin(root, "clock", skew_seconds=-600)
    assert clock["skew_seconds"] == -600.0
    response = api.raw("pedidos.pesquisa.php")
    dates = response.headers.get_list("Date")
    assert len(dates) == 1 and (NOW - parsedate_to_datetime(dates[0])).total_seconds() == 600

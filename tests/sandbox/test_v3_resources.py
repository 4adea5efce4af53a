"""The sandbox's v3 resources: the same account as v2 and the truth, paging, limits, faults."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from sandbox import AccountSpec, Churn, Faults, Sandbox, SandboxTransport
from sandbox.v3 import RawJson, dumps
from sandbox.v3_resources import ORDER_CODES
from tests.sandbox.v3_support import (
    AUTH,
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT,
    TOKEN_URL,
    V3,
    V3_ROOT,
    auth_params,
    connect,
    query_of,
    v3_json,
)
from tests.support.sandbox_calls import BRASILIA, GENEROUS, TODAY, TOKEN, Api, Clock

V3_GENEROUS = {"v3_rate_limit_calls": 1_000_000}
START, END = TODAY - timedelta(days=40), TODAY


class Ticks:
    """A monotonic clock the test moves by hand (the rate-limit windows use it)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
def sb(clock: Clock, ticks: Ticks) -> Sandbox:
    sandbox = Sandbox(clock=clock, monotonic=ticks)
    spec = AccountSpec(orders=250, days=100, products=60, **GENEROUS, **V3_GENEROUS)
    sandbox.add_account(TOKEN, spec)
    sandbox.add_oauth_app(CLIENT_ID, CLIENT_SECRET, REDIRECT, token=TOKEN)
    return sandbox


@pytest.fixture
def http(sb: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(transport=SandboxTransport(sb), base_url="http://sandbox") as client:
        yield client


@pytest.fixture
def v3(http: httpx.Client) -> V3:
    return V3(http, connect(http)["access_token"])


@pytest.fixture
def v2(sb: Sandbox) -> Iterator[Api]:
    with httpx.Client(transport=SandboxTransport(sb), base_url="http://sandbox/api2") as client:
        yield Api(client)


def iso(day) -> str:
    return day.isoformat()


def br(day) -> str:
    return day.strftime("%d/%m/%Y")


# -- the same data as v2 and the truth --------------------------------------------------
def test_orders_of_a_window_agree_with_v2_and_the_truth(sb, v3, v2):
    orders = v3.all("/pedidos", dataInicial=iso(START), dataFinal=iso(END))
    old = v2.all_pages(
        "pedidos.pesquisa.php", "pedidos", "pedido", dataInicial=br(START), dataFinal=br(END)
    )
    truth = sb.truth(TOKEN, START, END).orders
    assert 50 < len(orders) == len(old) == len(truth)
    for new, was in zip(orders, old, strict=True):
        row = truth[new["id"]]
        assert new["id"] == was["id"]
        assert new["numeroPedido"] == row["numero"] == int(was["numero"])
        assert new["situacao"] == ORDER_CODES[row["situacao"]] == ORDER_CODES[was["situacao"]]
        assert new["dataCriacao"] == iso(row["data_pedido"])
        assert new["valor"] == f"{row['valor']:.2f}" == was["valor"]  # a string, as in Tiny
        assert new["cliente"]["nome"] == row["nome"] == was["nome"]


def test_an_order_detail_has_the_truths_items_and_totals_as_exact_numbers(sb, v3):
    truth = sb.truth(TOKEN, START, END)
    for order_id in list(truth.orders)[:15]:
        detail = v3(f"/pedidos/{order_id}")
        assert detail["valorTotalPedido"] == truth.orders[order_id]["valor"]
        assert isinstance(detail["valorTotalPedido"], Decimal)
        items = [
            {
                "codigo": it["produto"]["sku"],
                "descricao": it["produto"]["descricao"],
                "quantidade": it["quantidade"],
                "valor_unitario": it["valorUnitario"],
            }
            for it in detail["itens"]
        ]
        assert items == truth.order_items[order_id]
        products = sum((it["quantidade"] * it["valorUnitario"] for it in detail["itens"]), 0)
        assert detail["valorTotalProdutos"] == products
        assert (
            detail["valorTotalPedido"] == products + detail["valorFrete"] - detail["valorDesconto"]
        )


@pytest.mark.parametrize(
    ("path", "kind", "prefix"),
    [
        ("/contas-pagar", "pagar", "payables"),
        ("/contas-receber", "receber", "receivables"),
    ],
)
def test_bills_of_a_window_by_situacao_agree_with_the_truth(sb, v3, path, kind, prefix):
    window = {"dataInicialEmissao": iso(START), "dataFinalEmissao": iso(END)}
    truth = sb.truth(TOKEN, START, END)
    everything = v3.all(path, **window)
    by_id = {b["id"]: b for b in everything}
    assert len(by_id) == len(everything)
    groups = {
        "aberto": getattr(truth, f"{prefix}_open"),
        "pago": getattr(truth, f"{prefix}_paid"),
        "cancelada": getattr(truth, f"{prefix}_cancelled"),
    }
    assert set(by_id) == set().union(*groups.values())
    for bill_id, row in {k: v for g in groups.values() for k, v in g.items()}.items():
        bill = by_id[bill_id]
        assert (bill["valor"], bill["saldo"]) == (row["valor"], row["saldo"])
        assert bill["situacao"] == row["situacao"]
        assert (bill["data"], bill["dataVencimento"]) == (
            iso(row["data_emissao"]),
            iso(row["data_vencimento"]),
        )
    # "aberto" is still owed (partly paid included, as in v2); the others are their own.
    still_owed = {b["id"] for b in v3.all(path, situacao="aberto", **window)}
    assert still_owed == set(groups["aberto"])
    partial = {b["id"] for b in v3.all(path, situacao="parcial", **window)}
    assert partial == {k for k, v in groups["aberto"].items() if v["situacao"] == "parcial"}
    cancelled = {b["id"] for b in v3.all(path, situacao="cancelada", **window)}
    assert cancelled == set(groups["cancelada"])
    assert {b["id"] for b in v3.all(path, situacao="aberto")} == set(sb.open_bills(TOKEN, kind))


def test_a_bill_read_by_id_tells_its_payment(sb, v3):
    truth = sb.truth(TOKEN, START, END)
    bill_id = next(iter(truth.payables_open))
    before = v3(f"/contas-pagar/{bill_id}")
    sb.pay_bill(TOKEN, bill_id)
    after = v3(f"/contas-pagar/{bill_id}")
    assert after["situacao"] == "pago" and after["saldo"] == Decimal("0.00")
    assert after["valorPago"] == before["valor"]
    assert after["dataLiquidacao"] == iso(TODAY)
    assert bill_id not in {b["id"] for b in v3.all("/contas-pagar", situacao="aberto")}
    sb.delete_bill(TOKEN, bill_id)
    assert v3.raw(f"/contas-pagar/{bill_id}").status_code == 404


def test_products_by_situacao_and_their_stock_agree_with_the_truth(sb, v3):
    truth = sb.truth(TOKEN, START, END)
    groups = {"A": truth.products, "I": truth.products_inactive, "E": truth.products_deleted}
    for situacao, rows in groups.items():
        listed = v3.all("/produtos", situacao=situacao, limit=7)
        assert {p["id"] for p in listed} == set(rows)
        assert all(p["situacao"] == situacao for p in listed)
    assert {p["id"] for p in v3.all("/produtos")} == set(truth.products)  # active by default
    for product_id, row in list(truth.products.items())[:12]:
        stock = v3(f"/estoque/{product_id}")
        assert stock["saldo"] == row["saldo"]
        assert stock["reservado"] == row["saldo_reservado"]
        assert stock["disponivel"] == row["saldo"] - row["saldo_reservado"]
        counted = sum(d["saldo"] for d in stock["depositos"] if not d["desconsiderar"])
        assert counted == row["saldo"]
        assert sum(d["reservado"] for d in stock["depositos"]) == row["saldo_reservado"]


def test_live_changes_show_on_both_faces(sb, v3, v2):
    product_id = next(iter(sb.truth(TOKEN, START, END).products))
    before = v3(f"/estoque/{product_id}")["saldo"]
    sb.move_stock(TOKEN, product_id, -3)
    assert v3(f"/estoque/{product_id}")["saldo"] == before - 3
    v2_stock = v2("produto.obter.estoque.php", id=product_id)["produto"]["saldo"]
    assert Decimal(str(v2_stock)) == before - 3
    sb.set_product_situacao(TOKEN, product_id, "E")
    assert product_id in {p["id"] for p in v3.all("/produtos", situacao="E")}
    assert product_id not in {p["id"] for p in v3.all("/produtos")}


def test_a_deleted_order_disappears_and_changed_orders_come_from_data_atualizacao(sb, v3, clock):
    ids = [o["id"] for o in v3.all("/pedidos", dataInicial=iso(START))]
    gone, cancelled = ids[3], ids[5]
    clock.advance(minutes=5)
    since = clock.now.astimezone(BRASILIA).strftime("%Y-%m-%d %H:%M:%S")
    clock.advance(minutes=1)
    sb.delete_order(TOKEN, gone)
    sb.cancel_order(TOKEN, cancelled)
    added = sb.add_order(TOKEN, TODAY - timedelta(days=3))
    assert v3.raw(f"/pedidos/{gone}").status_code == 404
    assert v3.raw(f"/pedidos/{gone}").json()["mensagem"]
    assert gone not in {o["id"] for o in v3.all("/pedidos")}
    changed = v3.all("/pedidos", dataAtualizacao=since)
    assert {o["id"] for o in changed} == {cancelled, added}
    assert next(o for o in changed if o["id"] == cancelled)["situacao"] == 2


def test_situacao_and_numero_filter_orders(v3):
    everything = v3.all("/pedidos")
    delivered = v3.all("/pedidos", situacao=6)
    assert {o["id"] for o in delivered} == {o["id"] for o in everything if o["situacao"] == 6}
    assert 0 < len(delivered) < len(everything)
    one = everything[17]
    assert v3("/pedidos", numero=one["numeroPedido"])["itens"] == [one]


# -- paging -----------------------------------------------------------------------------
def test_offset_paging_covers_every_order_once_and_says_the_total(v3):
    first = v3("/pedidos")
    assert len(first["itens"]) == 100
    assert first["paginacao"] == {"limit": 100, "offset": 0, "total": 250}
    pages = [v3("/pedidos", limit=33, offset=offset)["itens"] for offset in range(0, 250, 33)]
    ids = [o["id"] for page in pages for o in page]
    assert ids == [o["id"] for o in v3.all("/pedidos")] and len(set(ids)) == 250
    past = v3("/pedidos", offset=250)
    assert past["itens"] == [] and past["paginacao"]["total"] == 250
    newest = v3("/pedidos", orderBy="desc", limit=5)["itens"]
    assert [o["id"] for o in newest] == ids[::-1][:5]


def test_bad_paging_or_filters_are_400_with_a_sentence(v3):
    for params in ({"limit": 101}, {"limit": 0}, {"offset": -1}, {"orderBy": "up"}):
        response = v3.raw("/pedidos", **params)
        assert response.status_code == 400
        body = response.json()
        assert body["mensagem"] and body["detalhes"][0]["campo"] in params
    assert v3.raw("/pedidos", dataInicial="15/06/2025").status_code == 400
    assert v3.raw("/contas-pagar", situacao="quitada").status_code == 400
    assert v3.raw("/produtos", situacao="X").status_code == 400
    assert v3.raw("/notas").status_code == 404
    assert v3.raw("/pedidos/abc").status_code == 404


# -- money as exact JSON numbers ---------------------------------------------------------
def test_decimals_are_written_exactly_as_json_numbers():
    text = dumps({"valor": Decimal("123456789012345.67"), "q": Decimal("2"), "s": "1.50"})
    assert text == '{"valor":123456789012345.67,"q":2,"s":"1.50"}'
    assert json.loads(text, parse_float=Decimal)["valor"] == Decimal("123456789012345.67")
    with pytest.raises(ValueError):
        dumps({"valor": Decimal("NaN")})


def test_bill_money_in_the_body_text_is_the_truths_decimal_text(sb, v3):
    response = v3.raw("/contas-receber", limit=100)
    for bill in v3_json(response)["itens"][:20]:
        assert f'"valor":{bill["valor"]}' in response.text
        assert bill["valor"] == bill["valor"].quantize(Decimal("0.01"))


# -- auth, limits and faults -------------------------------------------------------------
def test_reads_without_a_valid_bearer_token_are_401_with_a_mensagem(http):
    missing = http.get(V3_ROOT + "/pedidos")
    assert missing.status_code == 401
    assert missing.json()["mensagem"] == "Token de acesso não informado"
    assert isinstance(missing.json()["detalhes"], list)
    unknown = http.get(V3_ROOT + "/pedidos", headers={"Authorization": "Bearer nope"})
    assert unknown.status_code == 401 and unknown.json()["mensagem"] == "Token de acesso inválido"
    # The v2 token is no bearer token.
    v2_token = http.get(V3_ROOT + "/pedidos", headers={"Authorization": f"Bearer {TOKEN}"})
    assert v2_token.status_code == 401


def test_every_answer_carries_the_rate_limit_and_over_it_is_429_with_retry_after(
    sb, http, ticks, v2
):
    sb.add_account("tok-plan", AccountSpec(orders=20, **GENEROUS, v3_rate_limit_calls=3))
    sb.add_oauth_app("plan-app", "plan-secret", REDIRECT, token="tok-plan")
    sb.oauth_auto_approve = True
    v3 = V3(http, _connect_app(http, "plan-app", "plan-secret"))
    seen = []
    for path in ("/pedidos", "/pedidos/1", "/produtos"):  # a 404 counts and carries them too
        response = v3.raw(path)
        seen.append((response.status_code, response.headers["X-RateLimit-Remaining"]))
        assert response.headers["X-RateLimit-Limit"] == "3"
    assert seen == [(200, "2"), (404, "1"), (200, "0")]
    ticks.now += 20
    over = v3.raw("/pedidos")
    assert over.status_code == 429
    assert over.headers["Retry-After"] == over.headers["X-RateLimit-Reset"] == "40"
    assert over.json()["mensagem"]
    assert sb.counters("tok-plan").rate_limit_violations == 1
    # v2 has its own budget: the same account still reads there.
    assert Api(v2.http, "tok-plan")("pedidos.pesquisa.php")["status"] == "OK"
    ticks.now += 40
    again = v3.raw("/pedidos")
    assert again.status_code == 200 and again.headers["X-RateLimit-Remaining"] == "2"


def _connect_app(http: httpx.Client, client_id: str, secret: str) -> str:
    location = http.get(AUTH, params=auth_params(None, client_id=client_id)).headers["Location"]
    answer = http.post(
        TOKEN_URL,
        data={
            "grant_type": "authorization_code",
            "code": query_of(location)["code"],
            "redirect_uri": REDIRECT,
        },
        auth=(client_id, secret),
    )
    return answer.json()["access_token"]


def test_a_forced_503_carries_retry_after_and_lasts_the_calls_asked(sb, v3):
    sb.fail_v3(TOKEN, "pedidos", 503, times=2, retry_after=7)
    first, second = v3.raw("/pedidos"), v3.raw("/pedidos")
    assert first.status_code == second.status_code == 503
    assert first.headers["Retry-After"] == "7" and first.json()["mensagem"]
    assert v3.raw("/produtos").status_code == 200  # another resource
    assert v3.raw("/pedidos").status_code == 200
    sb.fail_v3(None, None, 429)
    assert v3.raw("/estoque/1").status_code == 429
    sb.clear_faults()
    assert v3.raw("/produtos").status_code == 200
    assert sb.counters(TOKEN).by_status[503] == 2


def test_random_faults_of_the_account_apply_to_v3_too(sb, v3):
    sb.set_faults(TOKEN, Faults(p_code99=0.5, p_code35=0.5, seed=3))
    statuses = {v3.raw("/pedidos").status_code for _ in range(20)}
    assert statuses == {500, 503}
    sb.set_faults(TOKEN, Faults(p_code99=1.0))
    down = v3.raw("/pedidos")
    assert down.status_code == 503 and down.headers["Retry-After"] == "1"
    sb.set_faults(TOKEN, Faults(p_timeout=1.0))
    with pytest.raises(httpx.ReadTimeout):
        v3.raw("/pedidos")


def test_churn_counts_v3_calls_and_changes_what_both_faces_see(sb, v3):
    sb.set_churn(TOKEN, Churn(every_calls=2, seed=5, new_orders=1, pay_bills=1))
    for _ in range(6):
        v3("/pedidos")
    log = sb.changes(TOKEN)
    assert log.events and all(event.call in (2, 4, 6) for event in log.events)


def test_the_clock_skew_moves_v3_dates_like_v2(sb, v3, clock):
    # 13 hours behind: Tiny's "now" is yesterday evening in Brasília (tokens stay valid).
    sb.clock_skew = timedelta(hours=-13)
    order_id = sb.add_order(TOKEN)
    created = v3(f"/pedidos/{order_id}")["data"]
    assert created == iso(TODAY - timedelta(days=1))
    assert v3(f"/estoque/{next(iter(sb.truth(TOKEN, START, END).products))}")["saldo"] >= 0


def test_planted_v3_values_are_served_verbatim_in_lists_and_details(sb, v3, v2):
    bill_id = next(iter(sb.truth(TOKEN, START, END).receivables_open))
    sb.plant_v3(TOKEN, bill_id, "valor", RawJson("123456789012345678.99"))
    sb.plant_v3(TOKEN, bill_id, "cliente.nome", "Cliente\x00Nulo")
    listed = v3.raw("/contas-receber", situacao="aberto")
    assert '"valor":123456789012345678.99' in listed.text
    item = next(b for b in v3_json(listed)["itens"] if b["id"] == bill_id)
    assert item["valor"] == Decimal("123456789012345678.99")  # float would round it
    assert float(Decimal("123456789012345678.99")) != item["valor"]
    assert item["cliente"]["nome"] == "Cliente\x00Nulo"
    assert v3(f"/contas-receber/{bill_id}")["valor"] == Decimal("123456789012345678.99")
    product_id = next(iter(sb.truth(TOKEN, START, END).products))
    sb.plant_v3(TOKEN, product_id, "precos.preco", RawJson("1e999"))
    codigo = v3(f"/estoque/{product_id}")["codigo"]
    assert '"preco":1e999' in v3.raw("/produtos", codigo=codigo).text
    # v2 and the truth keep the real values; clear_planted ends the plants.
    v2_bill = v2("conta.receber.obter.php", id=bill_id)["conta"]
    true_value = sb.truth(TOKEN, START, END).receivables_open[bill_id]["valor"]
    assert Decimal(v2_bill["valor"]) == true_value != Decimal("123456789012345678.99")
    assert set(sb.planted_v3(TOKEN)) == {bill_id, product_id}
    assert sb.planted(TOKEN) == {}
    sb.clear_planted(TOKEN)
    assert sb.planted_v3(TOKEN) == {}
    assert "123456789012345678.99" not in v3.raw(f"/contas-receber/{bill_id}").text
    with pytest.raises(ValueError):
        sb.plant_v3(TOKEN, bill_id, "valor", Decimal("Infinity"))

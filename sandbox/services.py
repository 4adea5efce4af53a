"""Tiny API v2 services: parameter parsing, filtering, paging and record rendering.

Every listing is computed at each call over the account's current data: page numbers are
not a cursor, so a record that leaves a filtered listing between two pages moves every
later record up one place, as in Tiny.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sandbox.account import OPEN_BILL, Account
from sandbox.common import (
    US_PER_DAY,
    fmt_date,
    fmt_datetime,
    fmt_money,
    fold,
    parse_date,
    parse_datetime_us,
)
from sandbox.data import BILL_STATUSES, MAX_DUE_DAYS, ORDER_STATUSES
from sandbox.envelope import ApiError
from sandbox.selection import Selection

PAGE_SIZE = 100
STOCK_UPDATES_MAX_DAYS = 30
EMPRESA = "Empresa Exemplo Ltda"

Params = Mapping[str, str]
Handler = Callable[[Account, Params, int], dict[str, Any]]


# -- parameters -------------------------------------------------------------------------
def _text(params: Params, name: str) -> str | None:
    value = params.get(name)
    return value.strip() if value is not None and value.strip() != "" else None


def _date(params: Params, name: str) -> date | None:
    value = _text(params, name)
    if value is None:
        return None
    try:
        return parse_date(value)
    except ValueError:
        raise ApiError(31, f"data inválida em {name} ({value}), use dd/mm/aaaa") from None


def _datetime_us(params: Params, name: str) -> int | None:
    value = _text(params, name)
    if value is None:
        return None
    try:
        return parse_datetime_us(value)
    except ValueError:
        raise ApiError(31, f"data inválida em {name} ({value}), use dd/mm/aaaa hh:mm:ss") from None


def _int(params: Params, name: str) -> int | None:
    value = _text(params, name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ApiError(31, f"{name} deve ser numérico") from None


def _required_id(params: Params) -> int:
    value = _int(params, "id")
    if value is None:
        raise ApiError(10, "id")
    return value


def _page(
    selection: Selection,
    params: Params,
    key: str,
    render: Callable[[int], Any],
    max_records: int | None = None,
    served: Callable[[list[int]], None] | None = None,
) -> dict:
    """One page of a listing, with Tiny's 20 (no records), 21 (too many) and 23 (no page).

    `served` is told the indices of the records the page holds.
    """
    pagina = _int(params, "pagina")
    pagina = 1 if pagina is None else pagina
    total = len(selection)
    if total == 0:
        raise ApiError(20)
    if max_records is not None and total > max_records:
        raise ApiError(21)
    pages = -(-total // PAGE_SIZE)
    if not 1 <= pagina <= pages:
        raise ApiError(23)
    descending = (_text(params, "sort") or "ASC").upper() == "DESC"
    start = (pagina - 1) * PAGE_SIZE
    positions = range(start, min(start + PAGE_SIZE, total))
    indices = [selection[total - 1 - p] if descending else selection[p] for p in positions]
    page = {
        "pagina": str(pagina),
        "numero_paginas": str(pages),
        key: [render(i) for i in indices],
    }
    if served is not None:
        served(indices)
    return page


def _number(value: Decimal) -> int | float:
    """Stock quantities come as JSON numbers (unlike money)."""
    return int(value) if value == value.to_integral_value() else float(value)


# -- orders -----------------------------------------------------------------------------
def _order_summary(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "pedido": {
            "id": record["id"],
            "numero": record["numero"],
            "numero_ecommerce": record["numero_ecommerce"],
            "data_pedido": fmt_date(record["data_pedido"]),
            "data_prevista": fmt_date(record["data_prevista"]),
            "nome": record["nome"],
            "valor": fmt_money(record["valor"]),
            "id_vendedor": record["id_vendedor"],
            "nome_vendedor": record["nome_vendedor"],
            "situacao": record["situacao"],
            "codigo_rastreamento": record["codigo_rastreamento"],
        }
    }


def pedidos_pesquisa(account: Account, params: Params, now_us: int) -> dict[str, Any]:
    """pedidos.pesquisa.php: orders by order date, change time, status, number or client."""
    start, end = _date(params, "dataInicial"), _date(params, "dataFinal")
    since = _datetime_us(params, "dataAtualizacao")
    situacao, numero, cliente = (
        _text(params, "situacao"),
        _int(params, "numero"),
        _text(params, "cliente"),
    )
    selection = account.select_orders(start, end, since)
    if numero is not None:
        i = numero - account.gen.numero_base
        selection = Selection.of([i] if i in selection else [])
    if situacao is not None:
        wanted = fold(situacao)
        names = {n for slug, n in ORDER_STATUSES.items() if wanted in (slug, fold(n))}
        if not names:
            raise ApiError(31, f"situação desconhecida: {situacao}")
        selection = selection.filter(lambda i: account.order_situacao(i) in names)
    if cliente is not None:
        # Orders draw their clients from a pool, so match the pool once, not every order.
        needle, gen = fold(cliente), account.gen
        clients = {k for k in range(gen.n_clients) if needle in fold(gen.client_name(k))}
        selection = selection.filter(lambda i: gen.order_client(i) in clients)
    return _page(
        selection,
        params,
        "pedidos",
        lambda i: _order_summary(account.order(i)),
        account.spec.max_query_records,
    )


def pedido_obter(account: Account, params: Params, now_us: int) -> dict[str, Any]:
    """pedido.obter.php: one order with client, items, installments and totals."""
    i = account.order_index(_required_id(params))
    if i is None:
        raise ApiError(32)
    r = account.gen.order_detail(i, account.order(i))
    cliente = account.gen.client(r["cliente_index"])
    return {
        "pedido": {
            "id": r["id"],
            "numero": r["numero"],
            "numero_ecommerce": r["numero_ecommerce"],
            "data_pedido": fmt_date(r["data_pedido"]),
            "data_prevista": fmt_date(r["data_prevista"]),
            "data_faturamento": fmt_date(r["data_faturamento"]),
            "data_envio": fmt_date(r["data_envio"]),
            "data_entrega": fmt_date(r["data_entrega"]),
            "cliente": cliente,
            "itens": [
                {
                    "item": {
                        "id_produto": it["id_produto"],
                        "codigo": it["codigo"],
                        "descricao": it["descricao"],
                        "unidade": it["unidade"],
                        "quantidade": f"{it['quantidade']:.2f}",
                        "valor_unitario": fmt_money(it["valor_unitario"]),
                    }
                }
                for it in r["itens"]
            ],
            "parcelas": [
                {
                    "parcela": {
                        "dias": p["dias"],
                        "data": fmt_date(p["data"]),
                        "valor": fmt_money(p["valor"]),
                        "obs": p["obs"],
                        "forma_pagamento": p["forma_pagamento"],
                    }
                }
                for p in r["parcelas"]
            ],
            "marcadores": [
                {"marcador": {"id": tag_id, "descricao": name, "cor": color}}
                for tag_id, name, color in r["marcadores"]
            ],
            "condicao_pagamento": str(len(r["parcelas"])) + "x",
            "forma_pagamento": r["forma_pagamento"],
            "meio_pagamento": "",
            "nome_transportador": "Correios" if r["codigo_rastreamento"] else "",
            "frete_por_conta": "R",
            "valor_frete": fmt_money(r["valor_frete"]),
            "valor_desconto": fmt_money(r["valor_desconto"]),
            "outras_despesas": fmt_money(r["outras_despesas"]),
            "total_produtos": fmt_money(r["total_produtos"]),
            "total_pedido": fmt_money(r["valor"]),
            "numero_ordem_compra": "",
            "deposito": "Geral",
            "forma_envio": "C" if r["codigo_rastreamento"] else "",
            "situacao": r["situacao"],
            "obs": r["obs"],
            "obs_interna": "",
            "id_vendedor": r["id_vendedor"],
            "nome_vendedor": r["nome_vendedor"],
            "codigo_rastreamento": r["codigo_rastreamento"],
            "url_rastreamento": "",
            "id_nota_fiscal": 0,
        }
    }


# -- bills ------------------------------------------------------------------------------
def _bill_summary(kind: str, bill: dict[str, Any]) -> dict[str, Any]:
    conta = {
        "id": bill["id"],
        "nome_cliente": bill["nome_cliente"],
        "historico": bill["historico"],
        "numero_doc": bill["numero_doc"],
        "data_vencimento": fmt_date(bill["data_vencimento"]),
        "data_emissao": fmt_date(bill["data_emissao"]),
        "valor": fmt_money(bill["valor"]),
        "saldo": fmt_money(bill["saldo"]),
        "situacao": bill["situacao"],
    }
    if kind == "receber":
        conta.update(numero_banco=bill["numero_banco"], serie_doc=bill["serie_doc"])
    return {"conta": conta}


def _contas_pesquisa(kind: str) -> Handler:
    def handler(account: Account, params: Params, now_us: int) -> dict[str, Any]:
        start, end = _date(params, "data_ini_emissao"), _date(params, "data_fim_emissao")
        due_from, due_to = (
            _date(params, "data_ini_vencimento"),
            _date(params, "data_fim_vencimento"),
        )
        # Due dates trail emission by at most MAX_DUE_DAYS, which bounds the range to scan.
        if due_from is not None:
            earliest = due_from - timedelta(days=MAX_DUE_DAYS)
            start = max(start, earliest) if start else earliest
        if due_to is not None:
            end = min(end or due_to, due_to)
        selection = account.select_bills(kind, start, end)
        situacao = fold(_text(params, "situacao") or "")
        if situacao and situacao not in BILL_STATUSES:
            raise ApiError(31, f"situação desconhecida: {situacao}")
        # "aberto" means anything still owed, so partly paid bills are listed with the open
        # unless the account says otherwise (see the package docstring).
        still_owed = OPEN_BILL if account.spec.open_includes_partial else ("aberto",)
        wanted = still_owed if situacao == "aberto" else (situacao,) if situacao else None
        nome = fold(_text(params, "nome_cliente") or "")
        exact_fields = ("numero_doc", "numero_banco", "id_origem") if kind == "receber" else ()
        exact = {f: v for f in exact_fields or ("numero_doc",) if (v := _text(params, f))}
        filtering = any((due_from, due_to, wanted, nome, exact))

        def keep(i: int) -> bool:
            bill = account.bill(kind, i)
            return (
                (due_from is None or bill["data_vencimento"] >= due_from)
                and (due_to is None or bill["data_vencimento"] <= due_to)
                and (wanted is None or bill["situacao"] in wanted)
                and (not nome or nome in fold(bill["nome_cliente"]))
                and all(str(bill[f]) == v for f, v in exact.items())
            )

        if filtering:
            selection = selection.filter(keep)
        return _page(
            selection,
            params,
            "contas",
            lambda i: _bill_summary(kind, account.bill(kind, i)),
            account.spec.max_query_records,
        )

    handler.__doc__ = f"contas.{kind}.pesquisa.php: bills by emission/due date, status, name, doc."
    return handler


def _conta_obter(kind: str) -> Handler:
    def handler(account: Account, params: Params, now_us: int) -> dict[str, Any]:
        i = account.bill_index(kind, _required_id(params))
        if i is None:
            raise ApiError(32)
        bill = account.bill(kind, i)
        conta = _bill_summary(kind, bill)["conta"]
        paid = bill["valor"] - bill["saldo"] if bill["situacao"] in ("pago", "parcial") else 0
        conta.update(
            cliente={"nome": bill["nome_cliente"]},
            categoria=bill["categoria"],
            data_pagamento=fmt_date(bill["data_pagamento"]),
            valor_pago=fmt_money(Decimal(paid)),
            forma_pagamento=bill["forma_pagamento"],
            competencia=bill["data_emissao"].strftime("%m/%Y"),
            ocorrencia="U",
        )
        if kind == "receber":
            conta["id_origem"] = bill["id_origem"]
        return {"conta": conta}

    handler.__doc__ = f"conta.{kind}.obter.php: one bill with its payment details."
    return handler


# -- products ---------------------------------------------------------------------------
def _depositos(product: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"deposito": {"nome": n, "desconsiderar": d, "saldo": _number(s), "empresa": EMPRESA}}
        for n, d, s in product["depositos"]
    ]


def produtos_pesquisa(account: Account, params: Params, now_us: int) -> dict[str, Any]:
    """produtos.pesquisa.php: products by text (required, may be empty), status, creation.

    `dataCriacao` lists products created at or after that Brasília moment (a bare date is
    its midnight in Brasília).
    """
    if "pesquisa" not in params:
        raise ApiError(10, "pesquisa")
    needle = fold(params["pesquisa"].strip())
    # Without situacao only active products are listed (what a stock sync wants).
    situacao = (_text(params, "situacao") or "A").upper()
    if situacao not in ("A", "I", "E"):
        raise ApiError(31, f"situação desconhecida: {situacao}")
    created_since = _datetime_us(params, "dataCriacao")

    def keep(j: int) -> bool:
        product = account.product(j)
        return (
            product["situacao"] == situacao
            and (created_since is None or product["data_criacao_us"] >= created_since)
            and (
                not needle
                or needle in fold(product["nome"])
                or needle in fold(product["codigo"])
                or needle == product["gtin"]
            )
        )

    def render(j: int) -> dict[str, Any]:
        p = account.product(j)
        return {
            "produto": {
                "id": p["id"],
                "codigo": p["codigo"],
                "nome": p["nome"],
                "preco": fmt_money(p["preco"]),
                "preco_promocional": fmt_money(p["preco_promocional"]),
                "unidade": p["unidade"],
                "gtin": p["gtin"],
                "tipoVariacao": "N",
                "localizacao": "",
                "situacao": p["situacao"],
                "data_criacao": fmt_datetime(p["data_criacao_us"]),
            }
        }

    return _page(Selection(0, account.product_count).filter(keep), params, "produtos", render)


def _stock(product: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": product["id"],
        "nome": product["nome"],
        "codigo": product["codigo"],
        "unidade": product["unidade"],
        "saldo": _number(product["saldo"]),
        "saldoReservado": _number(product["saldo_reservado"]),
        "depositos": _depositos(product),
    }


def produto_obter_estoque(account: Account, params: Params, now_us: int) -> dict[str, Any]:
    """produto.obter.estoque.php: one product's stock per deposit."""
    j = account.product_index(_required_id(params))
    if j is None:
        raise ApiError(32)
    return {"produto": _stock(account.product(j))}


def lista_atualizacoes_estoque(account: Account, params: Params, now_us: int) -> dict[str, Any]:
    """lista.atualizacoes.estoque: the queue of stock changes since dataAlteracao (30 days).

    Like Tiny ("Registros já obtidos serão removidos da fila"), a served page takes its
    records out of the queue, so what was page 2 is page 1 on the next call; a product comes
    back when its stock changes again. AccountSpec.stock_updates_consume=False keeps them.
    """
    since = _datetime_us(params, "dataAlteracao")
    if since is None:
        raise ApiError(10, "dataAlteracao")
    if since < now_us - STOCK_UPDATES_MAX_DAYS * US_PER_DAY:
        raise ApiError(31, "dataAlteracao deve estar dentro dos últimos 30 dias")
    changed = account.stock_queue(since)

    def render(j: int) -> dict[str, Any]:
        product = account.product(j)
        row = _stock(product)
        row.update(tipo_variacao="N", data_alteracao=fmt_datetime(product["stock_changed_us"]))
        return {"produto": row}

    served = account.mark_stock_served if account.spec.stock_updates_consume else None
    return _page(changed, params, "produtos", render, served=served)


SERVICES: dict[str, Handler] = {
    "pedidos.pesquisa.php": pedidos_pesquisa,
    "pedido.obter.php": pedido_obter,
    "contas.pagar.pesquisa.php": _contas_pesquisa("pagar"),
    "contas.receber.pesquisa.php": _contas_pesquisa("receber"),
    "conta.pagar.obter.php": _conta_obter("pagar"),
    "conta.receber.obter.php": _conta_obter("receber"),
    "produtos.pesquisa.php": produtos_pesquisa,
    "produto.obter.estoque.php": produto_obter_estoque,
    "lista.atualizacoes.estoque": lista_atualizacoes_estoque,
}


def canonical_service(name: str) -> str:
    """Service name as listed in SERVICES; tolerates a missing or extra '.php'."""
    name = name.strip("/").rsplit("/", 1)[-1]
    for candidate in (name, name + ".php", name.removesuffix(".php")):
        if candidate in SERVICES:
            return candidate
    return name

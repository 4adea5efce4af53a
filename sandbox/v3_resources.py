"""Tiny API v3 resources over an account's data: the same records the v2 services show.

Shapes follow TINY_API_V3.md (from Tiny's v3 OpenAPI document): lists answer `{"itens",
"paginacao": {"limit", "offset", "total"}}` paged by `limit` (1..100, default 100) and
`offset`; money and quantities are Decimal (rendered as exact JSON numbers by sandbox.v3),
except the order list's `valor`, a string; dates are ISO (`YYYY-MM-DD`, change moments
`YYYY-MM-DD HH:MM:SS` in Brasília time) and null when absent. Like v2, a listing is computed
at each call, so an offset is no cursor. Ids of clients and deposits, which v2 does not
show, are derived from the account's seed (stable, inferred).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sandbox.account import OPEN_BILL, Account
from sandbox.common import from_us, mix
from sandbox.data import MAX_DUE_DAYS, S_IDS
from sandbox.names import CATEGORIES_PAY, CATEGORIES_REC, PAYMENT_FORMS
from sandbox.selection import Selection
from sandbox.services import EMPRESA
from sandbox.v3_params import (
    Params,
    V3Error,
    date_param,
    int_param,
    invalid,
    iso,
    moment,
    moment_us,
    page,
    path_id,
    text,
)

#: v2 order situations -> v3 codes (8, Dados incompletos, has no v2 counterpart here).
ORDER_CODES: dict[str, int] = {
    "Em aberto": 0,
    "Faturado": 1,
    "Cancelado": 2,
    "Aprovado": 3,
    "Preparando envio": 4,
    "Enviado": 5,
    "Entregue": 6,
    "Pronto para envio": 7,
    "Não Entregue": 9,
}
ORDER_CODE_NAMES = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
BILL_SITUATIONS = ("aberto", "cancelada", "pago", "parcial", "prevista", "atrasadas", "emissao")
DEPOSIT_IDS = {"Geral": 1, "Loja": 2, "Avariados": 3}


def client_id(account: Account, k: int) -> int:
    """A stable id for client k (v2 shows clients without ids)."""
    return 300_000_000 + (mix(account.gen.seed, S_IDS) % 900) * 10_000 + k


# -- orders -----------------------------------------------------------------------------
def _seller(record: dict[str, Any]) -> dict[str, Any]:
    return {"id": record["id_vendedor"], "nome": record["nome_vendedor"]}


def _ecommerce(record: dict[str, Any]) -> dict[str, Any] | None:
    if not record["numero_ecommerce"]:
        return None
    return {"id": 1, "nome": "Mercado Livre", "numeroPedidoEcommerce": record["numero_ecommerce"]}


def _order_item(account: Account, i: int) -> dict[str, Any]:
    r = account.order(i)
    return {
        "id": r["id"],
        "situacao": ORDER_CODES[r["situacao"]],
        "numeroPedido": r["numero"],
        "ecommerce": _ecommerce(r),
        "dataCriacao": r["data_pedido"].isoformat(),
        "dataPrevista": iso(r["data_prevista"]),
        "cliente": {"id": client_id(account, r["cliente_index"]), "nome": r["nome"]},
        "valor": f"{r['valor']:.2f}",
        "vendedor": _seller(r),
        "transportador": {"codigoRastreamento": r["codigo_rastreamento"]},
    }


def list_orders(account: Account, params: Params, now_us: int) -> dict[str, Any]:
    """GET /pedidos: by creation date, change moment (dataAtualizacao), situacao, numero."""
    start, end = date_param(params, "dataInicial"), date_param(params, "dataFinal")
    selection = account.select_orders(start, end, moment_us(params, "dataAtualizacao"))
    numero, situacao = int_param(params, "numero"), int_param(params, "situacao")
    if numero is not None:
        i = numero - account.gen.numero_base
        selection = Selection.of([i] if i in selection else [])
    if situacao is not None:
        if situacao not in ORDER_CODE_NAMES:
            raise invalid("situacao", f"situação desconhecida: {situacao}")
        selection = selection.filter(lambda i: ORDER_CODES[account.order_situacao(i)] == situacao)
    return page(selection, params, lambda i: _order_item(account, i))


def _client(account: Account, k: int) -> dict[str, Any]:
    c = account.gen.client(k)
    return {
        "id": client_id(account, k),
        "nome": c["nome"],
        "codigo": c["codigo"],
        "fantasia": c["nome_fantasia"],
        "tipoPessoa": c["tipo_pessoa"],
        "cpfCnpj": c["cpf_cnpj"],
        "inscricaoEstadual": c["ie"],
        "rg": c["rg"],
        "telefone": c["fone"],
        "celular": "",
        "email": c["email"],
        "endereco": {
            "endereco": c["endereco"],
            "numero": c["numero"],
            "complemento": c["complemento"],
            "bairro": c["bairro"],
            "municipio": c["cidade"],
            "cep": c["cep"],
            "uf": c["uf"],
            "pais": "Brasil",
        },
    }


def get_order(account: Account, params: Params, now_us: int, record: str) -> dict[str, Any]:
    """GET /pedidos/{id}: one order with client, items, installments and totals."""
    i = account.order_index(path_id(record))
    if i is None:
        raise V3Error(404, "Pedido não encontrado")
    r = account.gen.order_detail(i, account.order(i))
    forms = {name: n + 1 for n, name in enumerate(PAYMENT_FORMS)}
    return {
        "id": r["id"],
        "numeroPedido": r["numero"],
        "numeroOrdemCompra": "",
        "situacao": ORDER_CODES[r["situacao"]],
        "data": r["data_pedido"].isoformat(),
        "dataPrevista": iso(r["data_prevista"]),
        "dataFaturamento": iso(r["data_faturamento"]),
        "dataEnvio": iso(r["data_envio"]),
        "dataEntrega": iso(r["data_entrega"]),
        "valorTotalProdutos": r["total_produtos"],
        "valorTotalPedido": r["valor"],
        "valorDesconto": r["valor_desconto"],
        "valorFrete": r["valor_frete"],
        "valorOutrasDespesas": r["outras_despesas"],
        "cliente": _client(account, r["cliente_index"]),
        "ecommerce": _ecommerce(r),
        "vendedor": _seller(r),
        "transportador": {
            "nome": "Correios" if r["codigo_rastreamento"] else "",
            "fretePorConta": "R",
            "codigoRastreamento": r["codigo_rastreamento"],
            "urlRastreamento": "",
        },
        "deposito": {"id": DEPOSIT_IDS["Geral"], "nome": "Geral"},
        "pagamento": {
            "formaPagamento": {"id": forms[r["forma_pagamento"]], "nome": r["forma_pagamento"]},
            "parcelas": [
                {
                    "dias": p["dias"],
                    "data": p["data"].isoformat(),
                    "valor": p["valor"],
                    "observacoes": p["obs"],
                    "formaPagamento": {"id": forms[p["forma_pagamento"]]},
                }
                for p in r["parcelas"]
            ],
        },
        "itens": [
            {
                "produto": {
                    "id": it["id_produto"],
                    "sku": it["codigo"],
                    "descricao": it["descricao"],
                    "tipo": "P" if it["id_produto"] else "S",
                },
                "quantidade": it["quantidade"],
                "valorUnitario": it["valor_unitario"],
                "infoAdicional": "",
            }
            for it in r["itens"]
        ],
        "marcadores": [{"id": tag, "descricao": name} for tag, name, _ in r["marcadores"]],
        "observacoes": r["obs"],
        "observacoesInternas": "",
    }


# -- bills ------------------------------------------------------------------------------
def _bill_item(kind: str, bill: dict[str, Any]) -> dict[str, Any]:
    item = {
        "id": bill["id"],
        "situacao": bill["situacao"],
        "data": bill["data_emissao"].isoformat(),
        "dataVencimento": bill["data_vencimento"].isoformat(),
        "historico": bill["historico"],
        "valor": bill["valor"],
        "saldo": bill["saldo"],
        "numeroDocumento": bill["numero_doc"],
        "serieDocumento": bill.get("serie_doc", ""),
        "cliente": {"nome": bill["nome_cliente"]},
    }
    if kind == "receber":
        item["numeroBanco"] = bill["numero_banco"]
    return item


def _bill_wanted(account: Account, situacao: str | None, today: date) -> Callable[[dict], bool]:
    if situacao is None:
        return lambda bill: True
    if situacao not in BILL_SITUATIONS:
        raise invalid("situacao", f"situação desconhecida: {situacao}")
    if situacao == "aberto":
        # "aberto" is anything still owed unless the account says otherwise, as in v2.
        owed = OPEN_BILL if account.spec.open_includes_partial else ("aberto",)
        return lambda bill: bill["situacao"] in owed
    if situacao == "atrasadas":
        return lambda bill: bill["situacao"] in OPEN_BILL and bill["data_vencimento"] < today
    if situacao in ("prevista", "emissao"):
        return lambda bill: False  # the sandbox holds no forecast bills
    return lambda bill: bill["situacao"] == situacao


def _list_bills(kind: str) -> Callable[[Account, Params, int], dict[str, Any]]:
    def handler(account: Account, params: Params, now_us: int) -> dict[str, Any]:
        start, end = (
            date_param(params, "dataInicialEmissao"),
            date_param(params, "dataFinalEmissao"),
        )
        due_from = date_param(params, "dataInicialVencimento")
        due_to = date_param(params, "dataFinalVencimento")
        # Due dates trail emission by at most MAX_DUE_DAYS, which bounds the range to scan.
        if due_from is not None:
            earliest = due_from - timedelta(days=MAX_DUE_DAYS)
            start = max(start, earliest) if start else earliest
        if due_to is not None:
            end = min(end or due_to, due_to)
        wanted = _bill_wanted(account, text(params, "situacao"), from_us(now_us).date())
        numero = text(params, "numeroDocumento")
        nome = (text(params, "nomeCliente") or "").casefold()

        def keep(i: int) -> bool:
            bill = account.bill(kind, i)
            return (
                (due_from is None or bill["data_vencimento"] >= due_from)
                and (due_to is None or bill["data_vencimento"] <= due_to)
                and wanted(bill)
                and (numero is None or bill["numero_doc"] == numero)
                and (not nome or nome in bill["nome_cliente"].casefold())
            )

        selection = account.select_bills(kind, start, end).filter(keep)
        return page(selection, params, lambda i: _bill_item(kind, account.bill(kind, i)))

    handler.__doc__ = f"GET /contas-{kind}: bills by emission/due dates, situacao, document."
    return handler


def _get_bill(kind: str) -> Callable[[Account, Params, int, str], dict[str, Any]]:
    categories = CATEGORIES_PAY if kind == "pagar" else CATEGORIES_REC

    def handler(account: Account, params: Params, now_us: int, record: str) -> dict[str, Any]:
        i = account.bill_index(kind, path_id(record))
        if i is None:
            raise V3Error(404, "Conta não encontrada")
        bill = account.bill(kind, i)
        paid = bill["valor"] - bill["saldo"] if bill["situacao"] in ("pago", "parcial") else 0
        item = _bill_item(kind, bill)
        item.update(
            dataLiquidacao=iso(bill["data_pagamento"]),
            valorPago=Decimal(paid).quantize(Decimal("0.01")),
            multa=Decimal("0.00"),
            juros=Decimal("0.00"),
            categoria={
                "id": categories.index(bill["categoria"]) + 1,
                "descricao": bill["categoria"],
            },
            formaPagamento=PAYMENT_FORMS.index(bill["forma_pagamento"]) + 1,
            competencia=bill["data_emissao"].strftime("%Y-%m"),
            ocorrencia="U",
        )
        if kind == "receber":
            item["idVenda"] = bill["id_origem"]
        return item

    handler.__doc__ = f"GET /contas-{kind}/{{id}}: one bill with its payment details."
    return handler


# -- products and stock -----------------------------------------------------------------
def _product_changed_us(account: Account, j: int, product: dict[str, Any]) -> int:
    change = account.product_changes.get(j)
    return max(product["data_criacao_us"], change[1]) if change else product["data_criacao_us"]


def list_products(account: Account, params: Params, now_us: int) -> dict[str, Any]:
    """GET /produtos: by situacao (A, I or E; active only when not given, as in v2)."""
    situacao = (text(params, "situacao") or "A").upper()
    if situacao not in ("A", "I", "E"):
        raise invalid("situacao", f"situação desconhecida: {situacao}")
    created_since = moment_us(params, "dataCriacao")
    changed_since = moment_us(params, "dataAlteracao")
    nome = (text(params, "nome") or "").casefold()
    codigo = text(params, "codigo")

    def keep(j: int) -> bool:
        p = account.product(j)
        return (
            p["situacao"] == situacao
            and (created_since is None or p["data_criacao_us"] >= created_since)
            and (changed_since is None or _product_changed_us(account, j, p) >= changed_since)
            and (not nome or nome in p["nome"].casefold())
            and (codigo is None or p["codigo"] == codigo)
        )

    def render(j: int) -> dict[str, Any]:
        p = account.product(j)
        return {
            "id": p["id"],
            "sku": p["codigo"],
            "descricao": p["nome"],
            "tipo": "P",
            "situacao": p["situacao"],
            "dataCriacao": moment(p["data_criacao_us"]),
            "dataAlteracao": moment(_product_changed_us(account, j, p)),
            "unidade": p["unidade"],
            "gtin": p["gtin"],
            "precos": {
                "preco": p["preco"],
                "precoPromocional": p["preco_promocional"],
                "precoCusto": None,
                "precoCustoMedio": None,
            },
        }

    return page(Selection(0, account.product_count).filter(keep), params, render)


def get_stock(account: Account, params: Params, now_us: int, record: str) -> dict[str, Any]:
    """GET /estoque/{idProduto}: balance, reserved and available, per deposit too."""
    j = account.product_index(path_id(record))
    if j is None:
        raise V3Error(404, "Produto não encontrado")
    p = account.product(j)
    return {
        "id": p["id"],
        "nome": p["nome"],
        "codigo": p["codigo"],
        "unidade": p["unidade"],
        "saldo": p["saldo"],
        "reservado": p["saldo_reservado"],
        "disponivel": p["saldo"] - p["saldo_reservado"],
        "localizacao": "",
        "depositos": [
            {
                "id": DEPOSIT_IDS.get(name, 9),
                "nome": name,
                "desconsiderar": ignored == "S",
                "saldo": saldo,
                "reservado": held,
                "disponivel": saldo - held,
                "empresa": EMPRESA,
            }
            for n, (name, ignored, saldo) in enumerate(p["depositos"])
            # The reservation sits in the first deposit (Geral), so deposits add up.
            for held in [p["saldo_reservado"] if n == 0 else Decimal(0)]
        ],
    }


LISTS: dict[str, Callable[[Account, Params, int], dict[str, Any]]] = {
    "pedidos": list_orders,
    "contas-pagar": _list_bills("pagar"),
    "contas-receber": _list_bills("receber"),
    "produtos": list_products,
}
RECORDS: dict[str, Callable[[Account, Params, int, str], dict[str, Any]]] = {
    "pedidos": get_order,
    "contas-pagar": _get_bill("pagar"),
    "contas-receber": _get_bill("receber"),
    "estoque": get_stock,
}

"""`V3Source`: the modules' v2-shaped reads answered by Tiny API v3 resources.

Each v2 service the modules use has one v3 resource here (`LISTINGS`, `RECORDS`), with its
filters renamed and formatted (ISO dates; change filters `YYYY-MM-DD HH:MM:SS` on Brasília's
clock), and each v3 record is given back in the v2 shape the modules map (`as_v2_*`), so
the same code stores both. What v3 says that v2 does not (integer order situations) becomes
the vocabulary already stored: `ORDER_SITUACAO` maps v3's codes to v2's words, so reports,
truth checks and "Cancelado" mean the same for both APIs.

Listings page by `limit`/`offset`: the modules' page N is offset (N - 1) × PAGE_LIMIT, so a
checkpoint's page is the offset to resume from. v3's `E` (Excluído) product situation and
`dataAtualizacao` order filter are the same filters v2's truth mechanisms already send.
v3 has no stock change queue (`lista.atualizacoes.estoque`): asking for it raises
`TinyPermanentError`, and the stock module then asks every product's balance, as it does for
a v2 account without that add-on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from core.errors import TinyPermanentError
from core.tiny import Page, RetryHook, in_brasilia
from core.v3.client import PAGE_LIMIT, Bearer, V3Client

#: v3 order `situacao` codes in v2's words (the words stored and reported).
ORDER_SITUACAO = {
    0: "Em aberto",
    1: "Faturado",
    2: "Cancelado",
    3: "Aprovado",
    4: "Preparando envio",
    5: "Enviado",
    6: "Entregue",
    7: "Pronto para envio",
    8: "Dados incompletos",
    9: "Não Entregue",
}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def order_situacao(value: Any) -> Any:
    """v3's integer order situation in v2's words; anything else is kept as it came."""
    try:
        code = int(value)
    except (TypeError, ValueError):
        return value
    return ORDER_SITUACAO.get(code, value)


def v3_param(value: Any) -> Any:
    """A filter value as v3 takes it: dates ISO, moments `YYYY-MM-DD HH:MM:SS` in Brasília."""
    if isinstance(value, datetime):
        return in_brasilia(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return value


# -- v3 records in the v2 shape the modules map -------------------------------------------
def as_v2_order(item: dict[str, Any]) -> dict[str, Any]:
    """A `GET /pedidos` item (or an order's detail) as a `pedidos.pesquisa.php` record."""
    cliente, vendedor, ecommerce, transportador = (
        _dict(item.get(k)) for k in ("cliente", "vendedor", "ecommerce", "transportador")
    )
    return {
        "id": item.get("id"),
        "numero": item.get("numeroPedido", item.get("numero")),
        "numero_ecommerce": ecommerce.get("numeroPedidoEcommerce", item.get("numeroEcommerce")),
        "data_pedido": item.get("data", item.get("dataCriacao")),
        "data_prevista": item.get("dataPrevista"),
        "nome": cliente.get("nome"),
        "valor": item.get("valor", item.get("valorTotalPedido")),
        "id_vendedor": vendedor.get("id"),
        "nome_vendedor": vendedor.get("nome"),
        "situacao": order_situacao(item.get("situacao")),
        "codigo_rastreamento": transportador.get(
            "codigoRastreamento", item.get("codigoRastreamento")
        ),
    }


def as_v2_order_detail(detail: dict[str, Any]) -> dict[str, Any]:
    """`GET /pedidos/{id}` as a `pedido.obter.php` record (with its items)."""
    cliente = _dict(detail.get("cliente"))
    items = []
    for entry in detail.get("itens") or []:
        entry = _dict(entry)
        produto = _dict(entry.get("produto"))
        items.append(
            {
                "item": {
                    "codigo": produto.get("sku", produto.get("codigo")),
                    "descricao": produto.get("descricao", entry.get("descricao")),
                    "quantidade": entry.get("quantidade"),
                    "valor_unitario": entry.get("valorUnitario"),
                }
            }
        )
    return {
        **as_v2_order(detail),
        "data_faturamento": detail.get("dataFaturamento"),
        "cliente": {"nome": cliente.get("nome"), "cpf_cnpj": cliente.get("cpfCnpj")},
        "itens": items,
        "total_produtos": detail.get("valorTotalProdutos"),
        "total_pedido": detail.get("valorTotalPedido"),
        "valor_desconto": detail.get("valorDesconto"),
        "valor_frete": detail.get("valorFrete"),
    }


def as_v2_bill(item: dict[str, Any]) -> dict[str, Any]:
    """A `GET /contas-pagar|receber` item (or detail) as a `conta` record."""
    cliente = _dict(item.get("cliente", item.get("contato")))
    return {
        "id": item.get("id"),
        "nome_cliente": cliente.get("nome"),
        "historico": item.get("historico"),
        "numero_doc": item.get("numeroDocumento"),
        "serie_doc": item.get("serieDocumento"),
        "numero_banco": item.get("numeroBanco"),
        "data_emissao": item.get("data", item.get("dataEmissao")),
        "data_vencimento": item.get("dataVencimento"),
        "valor": item.get("valor"),
        "saldo": item.get("saldo"),
        "situacao": item.get("situacao"),
    }


def as_v2_product(item: dict[str, Any]) -> dict[str, Any]:
    """A `GET /produtos` item as a `produtos.pesquisa.php` record."""
    precos = _dict(item.get("precos"))
    return {
        "id": item.get("id"),
        "codigo": item.get("sku", item.get("codigo")),
        "nome": item.get("descricao", item.get("nome")),
        "unidade": item.get("unidade"),
        "preco": precos.get("preco", item.get("preco")),
        "situacao": item.get("situacao"),
        "data_criacao": item.get("dataCriacao"),
    }


def _yes_no(value: Any) -> Any:
    if isinstance(value, bool):
        return "S" if value else "N"
    return value


def as_v2_stock(record: dict[str, Any], product_id: int) -> dict[str, Any]:
    """`GET /estoque/{idProduto}` as a `produto.obter.estoque.php` record."""
    depositos = []
    for entry in record.get("depositos") or []:
        entry = _dict(entry)
        depositos.append(
            {
                "deposito": {
                    "nome": entry.get("nome"),
                    "saldo": entry.get("saldo"),
                    "desconsiderar": _yes_no(entry.get("desconsiderar")),
                    "empresa": entry.get("empresa"),
                }
            }
        )
    return {
        "id": record.get("id") or product_id,
        "codigo": record.get("sku", record.get("codigo")),
        "nome": record.get("descricao", record.get("nome")),
        "unidade": record.get("unidade"),
        "saldo": record.get("saldo"),
        "saldoReservado": record.get("reservado"),
        "depositos": depositos,
    }


@dataclass(frozen=True)
class Listing:
    """A v2 listing service answered by a v3 resource."""

    path: str
    filters: dict[str, str]  # v2 parameter -> v3 parameter (absent: not sent)
    record: Callable[[dict[str, Any]], dict[str, Any]]


_BILL_FILTERS = {
    "situacao": "situacao",
    "data_ini_emissao": "dataInicialEmissao",
    "data_fim_emissao": "dataFinalEmissao",
    "data_ini_vencimento": "dataInicialVencimento",
    "data_fim_vencimento": "dataFinalVencimento",
}
LISTINGS: dict[str, Listing] = {
    "pedidos.pesquisa.php": Listing(
        "pedidos",
        {
            "dataInicial": "dataInicial",
            "dataFinal": "dataFinal",
            "dataAtualizacao": "dataAtualizacao",
            "situacao": "situacao",
        },
        as_v2_order,
    ),
    "contas.pagar.pesquisa.php": Listing("contas-pagar", _BILL_FILTERS, as_v2_bill),
    "contas.receber.pesquisa.php": Listing("contas-receber", _BILL_FILTERS, as_v2_bill),
    "produtos.pesquisa.php": Listing(
        "produtos",
        {"situacao": "situacao", "dataCriacao": "dataCriacao", "dataAlteracao": "dataAlteracao"},
        as_v2_product,
    ),
}
#: A v2 record service: its v3 path (with the id) and the record's v2 shape.
RECORDS: dict[str, tuple[str, Callable[[dict[str, Any], int], dict[str, Any]]]] = {
    "pedido.obter.php": ("pedidos/{id}", lambda r, _i: as_v2_order_detail(r)),
    "conta.pagar.obter.php": ("contas-pagar/{id}", lambda r, _i: as_v2_bill(r)),
    "conta.receber.obter.php": ("contas-receber/{id}", lambda r, _i: as_v2_bill(r)),
    "produto.obter.estoque.php": ("estoque/{id}", as_v2_stock),
}


@dataclass
class V3Source:
    """Tiny API v3 for one company: its Bearer, its account key, the v3 client."""

    client: V3Client
    bearer: Bearer
    account: str

    def list_page(
        self,
        service: str,
        list_key: str,
        item_key: str,
        params: dict[str, Any],
        page: int,
        *,
        on_retry: RetryHook | None = None,
    ) -> Page:
        listing = LISTINGS.get(service)
        if listing is None:
            raise TinyPermanentError(f"Tiny API v3 has no equivalent of {service}", service=service)
        query = {
            listing.filters[name]: v3_param(value)
            for name, value in params.items()
            if name in listing.filters and value is not None and value != ""
        }
        answer = self.client.list_page(
            self.bearer,
            listing.path,
            query,
            (page - 1) * PAGE_LIMIT,
            account=self.account,
            on_retry=on_retry,
        )
        answer.records = [listing.record(item) for item in answer.records]
        return answer

    def get_record(
        self, service: str, record_key: str, record_id: int, *, on_retry: RetryHook | None = None
    ) -> dict[str, Any] | None:
        if service not in RECORDS:
            raise TinyPermanentError(f"Tiny API v3 has no equivalent of {service}", service=service)
        path, shape = RECORDS[service]
        record = self.client.get_record(
            self.bearer, path.format(id=int(record_id)), account=self.account, on_retry=on_retry
        )
        return None if record is None else shape(record, record_id)

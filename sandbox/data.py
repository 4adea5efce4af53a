"""Deterministic, lazy generation of an account's base records from their index.

Nothing is stored per record: order i, bill i and product j are recomputed from (seed, index)
whenever asked, so a 200,000-order account costs nothing to create. Creation times are
monotonic in the index, which turns every date window into an index range by arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sandbox.common import US_PER_DAY, Rng, date_of, fold, mix, mix_more, money, unit
from sandbox.names import (
    CATEGORIES_PAY,
    CATEGORIES_REC,
    CITIES,
    COMPANY_SUFFIXES,
    COMPANY_WORDS,
    FIRST_NAMES,
    LAST_NAMES,
    PAYMENT_FORMS,
    PLACE_WORDS,
    PRODUCT_ADJS,
    PRODUCT_NOUNS,
    PRODUCT_VARIANTS,
    SELLERS,
    TAGS,
)

# Streams keep the per-record hashes of different record kinds independent.
S_ORDER, S_ORDER_SIT, S_ORDER_CLIENT = 1, 2, 3
S_CLIENT, S_CLIENT_NAME = 4, 5
S_PRODUCT, S_PRODUCT_NAME, S_PRODUCT_PRICE = 6, 7, 8
S_PAYABLE, S_RECEIVABLE, S_ORDER_DETAIL, S_IDS = 9, 10, 11, 12

MAX_ORDERS = 2_000_000
MAX_PRODUCTS = 100_000
MAX_BILLS = 200_000

# Order statuses as Tiny shows them, with the slug its `situacao` filter takes.
ORDER_STATUSES: dict[str, str] = {
    "aberto": "Em aberto",
    "aprovado": "Aprovado",
    "preparando_envio": "Preparando envio",
    "faturado": "Faturado",
    "pronto_envio": "Pronto para envio",
    "enviado": "Enviado",
    "entregue": "Entregue",
    "nao_entregue": "Não Entregue",
    "cancelado": "Cancelado",
}
ORDER_FLOW = [
    "Em aberto",
    "Aprovado",
    "Preparando envio",
    "Faturado",
    "Pronto para envio",
    "Enviado",
    "Entregue",
]
ORDER_FINAL = {"Entregue", "Cancelado", "Não Entregue"}
SHIPPED = {"Enviado", "Entregue", "Não Entregue"}
INVOICED = {"Faturado", "Pronto para envio"} | SHIPPED
BILL_STATUSES = ("aberto", "pago", "cancelada", "parcial")
MAX_DUE_DAYS = 60  # due dates trail emission by at most this


@dataclass(frozen=True)
class AccountSpec:
    """Shape of a fake Tiny account; the same token and spec always give the same data."""

    orders: int = 200
    days: int = 400
    products: int = 50
    payables: int = 80
    receivables: int = 80
    seed: int | None = None
    #: The plan: calls accepted per window (Tiny's window is a minute; tests shorten it).
    rate_limit_calls: int = 60
    rate_limit_window_seconds: float = 60.0
    #: Whether answers carry `x-limit-api` (Tiny's always do; off, a client must pace blind).
    announce_limit: bool = True
    max_concurrent: int = 15
    items_per_order: tuple[int, int] = (1, 4)
    #: Listings of orders or bills matching more records than this answer code 21.
    max_query_records: int | None = None
    #: Whether contas.*.pesquisa.php with situacao=aberto also lists partly paid bills.
    open_includes_partial: bool = True
    #: Whether a served page of lista.atualizacoes.estoque leaves the queue (Tiny: yes).
    stock_updates_consume: bool = True
    #: API v3's own read budget (the plan's reads a minute), apart from v2's.
    v3_rate_limit_calls: int = 60
    v3_rate_limit_window_seconds: float = 60.0

    @property
    def calls_per_minute(self) -> int:
        """The plan in Tiny's unit, as `x-limit-api` says it (a shortened window scaled up)."""
        return max(1, round(self.rate_limit_calls * 60 / self.rate_limit_window_seconds))

    def __post_init__(self) -> None:
        checks = [
            (0 <= self.orders <= MAX_ORDERS, f"orders must be 0..{MAX_ORDERS}"),
            (self.days >= 1, "days must be at least 1"),
            (0 <= self.products <= MAX_PRODUCTS, f"products must be 0..{MAX_PRODUCTS}"),
            (0 <= self.payables <= MAX_BILLS, f"payables must be 0..{MAX_BILLS}"),
            (0 <= self.receivables <= MAX_BILLS, f"receivables must be 0..{MAX_BILLS}"),
            (self.rate_limit_calls >= 1, "rate_limit_calls must be at least 1"),
            (self.rate_limit_window_seconds > 0, "rate_limit_window_seconds must be positive"),
            (self.max_concurrent >= 1, "max_concurrent must be at least 1"),
            (self.v3_rate_limit_calls >= 1, "v3_rate_limit_calls must be at least 1"),
            (self.v3_rate_limit_window_seconds > 0, "v3_rate_limit_window_seconds must be > 0"),
            (
                len(self.items_per_order) == 2
                and 1 <= self.items_per_order[0] <= self.items_per_order[1],
                "items_per_order must be (min, max) with 1 <= min <= max",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        # Accept a list (e.g. from JSON) but keep the frozen dataclass hashable.
        object.__setattr__(self, "items_per_order", tuple(self.items_per_order))


class Timeline:
    """`count` records spread evenly over `days` days ending at `now_us`, monotonic in index."""

    def __init__(self, count: int, days: int, now_us: int) -> None:
        self.count = count
        self.span = days * US_PER_DAY
        self.t0 = now_us - self.span

    def created_us(self, index: int) -> int:
        """Creation time of record `index`."""
        return self.t0 + (index * self.span) // self.count

    def index_at(self, t_us: int) -> int:
        """Smallest index created at or after `t_us` (count when none)."""
        if self.count == 0:
            return 0
        # floor(i*span/count) >= x  <=>  i*span >= x*count, so i = ceil(x*count/span).
        x = t_us - self.t0
        return min(self.count, max(0, -(-x * self.count // self.span)))


def _cpf(rng: Rng) -> str:
    digits = [rng.randrange(10) for _ in range(9)]
    for size in (9, 10):
        total = sum(d * w for d, w in zip(digits, range(size + 1, 1, -1), strict=True))
        digits.append((total * 10 % 11) % 10)
    s = "".join(map(str, digits))
    return f"{s[:3]}.{s[3:6]}.{s[6:9]}-{s[9:]}"


def _cnpj(rng: Rng) -> str:
    digits = [rng.randrange(10) for _ in range(8)] + [0, 0, 0, 1]
    for weights in ([5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2], [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]):
        rest = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
        digits.append(0 if rest < 2 else 11 - rest)
    s = "".join(map(str, digits))
    return f"{s[:2]}.{s[2:5]}.{s[5:8]}/{s[8:12]}-{s[12:]}"


def _ean13(body: str) -> str:
    total = sum(int(c) * (3 if k % 2 else 1) for k, c in enumerate(body))
    return body + str((10 - total % 10) % 10)


class Generator:
    """Pure functions from (seed, index) to an account's base records."""

    def __init__(self, seed: int, spec: AccountSpec, now_us: int) -> None:
        self.seed = seed
        self.spec = spec
        self.now_us = now_us
        self.today = date_of(now_us)
        self.orders = Timeline(spec.orders, spec.days, now_us)
        self.bills = {
            "pagar": Timeline(spec.payables, spec.days, now_us),
            "receber": Timeline(spec.receivables, spec.days, now_us),
        }
        # Id blocks depend on the seed so two accounts rarely share ids, like real tenants.
        block = mix(seed, S_IDS) % 900
        self.order_id_base = 1_000_000_000 + block * 2 * MAX_ORDERS
        self.product_id_base = 500_000_000 + block * MAX_PRODUCTS
        self.bill_id_base = {
            "pagar": 200_000_000 + block * 2 * MAX_BILLS,
            "receber": 600_000_000 + block * 2 * MAX_BILLS,
        }
        self.n_clients = max(10, min(5000, spec.orders // 4 + 10))
        self.numero_base = 1000 + mix(seed, S_IDS, 1) % 9000
        # Per-stream hash prefixes: one mixing round per record field instead of three.
        self._keys = {stream: mix(seed, stream) for stream in range(S_ORDER, S_IDS + 1)}
        self._sit_key = self._keys[S_ORDER_SIT]
        self._client_key = self._keys[S_ORDER_CLIENT]
        self._item_cache: dict[int, dict[str, Any]] = {}

    def _h(self, stream: int, index: int) -> int:
        """mix(seed, stream, index), fast."""
        return mix_more(self._keys[stream], index)

    def _item_product(self, j: int) -> dict[str, Any]:
        """Order-item fields of product j, cached (orders repeat the same few products)."""
        cached = self._item_cache.get(j)
        if cached is None:
            if len(self._item_cache) > 20_000:  # bound memory on huge catalogues
                self._item_cache.clear()
            cached = self._item_cache[j] = {
                "id_produto": self.product_id_base + j,
                "codigo": self.product_code(j),
                "descricao": self.product_name(j),
                "valor_unitario": self.product_price(j),
            }
        return cached

    # -- clients -------------------------------------------------------------------------
    def client_name(self, k: int) -> str:
        """Name of client k (cheap: used by text filters over many records)."""
        h = self._h(S_CLIENT_NAME, k)
        if h % 5 == 0:
            words = (COMPANY_WORDS, PLACE_WORDS, COMPANY_SUFFIXES)
            return " ".join(w[(h >> (8 * n)) % len(w)] for n, w in enumerate(words, start=1))
        first = FIRST_NAMES[(h >> 8) % len(FIRST_NAMES)]
        last = LAST_NAMES[(h >> 16) % len(LAST_NAMES)]
        last2 = LAST_NAMES[(h >> 24) % len(LAST_NAMES)]
        return f"{first} {last} {last2}" if last != last2 else f"{first} {last}"

    def client(self, k: int) -> dict[str, Any]:
        """Full client k as pedido.obter shows it."""
        rng = Rng(self._h(S_CLIENT, k))
        name = self.client_name(k)
        company = self._h(S_CLIENT_NAME, k) % 5 == 0
        city, uf = CITIES[rng.randrange(len(CITIES))]
        return {
            "nome": name,
            "codigo": f"C{k + 1:05d}",
            "nome_fantasia": name.split()[0] + " " + name.split()[1] if company else "",
            "tipo_pessoa": "J" if company else "F",
            "cpf_cnpj": _cnpj(rng) if company else _cpf(rng),
            "ie": str(rng.randrange(10**8, 10**9)) if company else "",
            "rg": "",
            "endereco": f"Rua {rng.choice(LAST_NAMES)} {rng.choice(PLACE_WORDS)}",
            "numero": str(rng.randint(1, 3000)),
            "complemento": rng.choice(["", "", "Apto 12", "Sala 3", "Fundos"]),
            "bairro": rng.choice(["Centro", "Jardim América", "Vila Nova", "Boa Vista"]),
            "cep": f"{rng.randrange(10000, 99999)}-{rng.randrange(1000):03d}",
            "cidade": city,
            "uf": uf,
            "fone": f"({rng.randint(11, 99)}) 9{rng.randrange(10**7, 10**8)}",
            "email": f"{fold(name.split()[0])}{k}@exemplo.com.br",
        }

    # -- products ------------------------------------------------------------------------
    def product_code(self, j: int) -> str:
        """SKU of product j."""
        return f"SKU-{j + 1:05d}"

    def product_name(self, j: int) -> str:
        """Name of product j."""
        h = self._h(S_PRODUCT_NAME, j)
        return " ".join(
            (
                PRODUCT_NOUNS[h % len(PRODUCT_NOUNS)],
                PRODUCT_ADJS[(h >> 16) % len(PRODUCT_ADJS)],
                PRODUCT_VARIANTS[(h >> 32) % len(PRODUCT_VARIANTS)],
            )
        )

    def product_price(self, j: int) -> Decimal:
        """List price of product j."""
        return money(4.9 + unit(self._h(S_PRODUCT_PRICE, j)) * 495)

    def product(self, j: int) -> dict[str, Any]:
        """Product j with its base stock; `stock_changed_us` is the last stock change."""
        rng = Rng(self._h(S_PRODUCT, j))
        roll = rng.random()
        situacao = "A" if roll < 0.9 else ("I" if roll < 0.98 else "E")
        # [name, desconsiderar, saldo]; lists because the account's overlay adjusts saldo.
        depositos: list[list[Any]] = [["Geral", "N", Decimal(rng.randint(0, 400))]]
        if rng.random() < 0.4:
            depositos.append(["Loja", "N", Decimal(rng.randint(0, 80))])
        if rng.random() < 0.2:
            depositos.append(["Avariados", "S", Decimal(rng.randint(0, 9))])
        usable = sum((d[2] for d in depositos if d[1] == "N"), Decimal(0))
        return {
            "id": self.product_id_base + j,
            "codigo": self.product_code(j),
            "nome": self.product_name(j),
            "preco": self.product_price(j),
            "preco_promocional": Decimal("0.00"),
            "unidade": rng.choice(["UN", "UN", "UN", "CX", "PC", "KG"]),
            "gtin": _ean13("789" + f"{rng.randrange(10**9):09d}"),
            "situacao": situacao,
            "data_criacao_us": self.now_us - int(rng.random() * 3 * 365 * US_PER_DAY),
            "depositos": depositos,
            "saldo_reservado": Decimal(rng.randint(0, int(min(usable, 15)))),
            "stock_changed_us": self.now_us - int(rng.random() * 120 * US_PER_DAY),
        }

    # -- orders --------------------------------------------------------------------------
    def order_situacao(self, i: int, created_us: int) -> str:
        """Base status of order i: old orders are mostly delivered, recent ones in progress."""
        age_days = (self.now_us - created_us) // US_PER_DAY
        u = unit(mix_more(self._sit_key, i))
        table: tuple[tuple[str, float], ...]
        if age_days > 30:
            table = (("Entregue", 0.86), ("Cancelado", 0.93), ("Não Entregue", 0.95))
            fallback = "Enviado"
        elif age_days > 7:
            table = (("Entregue", 0.5), ("Enviado", 0.72), ("Faturado", 0.82), ("Cancelado", 0.9))
            fallback = "Aprovado"
        else:
            table = (("Em aberto", 0.35), ("Aprovado", 0.6), ("Preparando envio", 0.72))
            table += (("Faturado", 0.82), ("Enviado", 0.92), ("Pronto para envio", 0.95))
            fallback = "Cancelado"
        for status, upto in table:
            if u < upto:
                return status
        return fallback

    def order_client(self, i: int) -> int:
        """Client index of order i."""
        return mix_more(self._client_key, i) % self.n_clients

    def order(self, i: int, created_us: int, situacao: str) -> dict[str, Any]:
        """Order i with its items and totals (consistent with each other)."""
        rng = Rng(self._h(S_ORDER, i))
        day = date_of(created_us)
        k = self.order_client(i)
        lo, hi = self.spec.items_per_order
        count = rng.randint(lo, hi)
        # Distinct products per order, as an ERP merges repeated lines.
        picks = rng.sample(self.spec.products, min(count, self.spec.products))
        items = []
        for n in range(count):
            quantidade = Decimal(rng.choice([1, 1, 1, 1, 2, 2, 3, 5]))
            if n < len(picks):
                item = dict(self._item_product(picks[n]))
            else:
                item = {
                    "id_produto": 0,
                    "codigo": f"SRV{n + 1}",
                    "descricao": "Serviço avulso",
                    "valor_unitario": money(10 + rng.random() * 200),
                }
            item.update(unidade="UN", quantidade=quantidade)
            items.append(item)
        total_produtos = sum((it["quantidade"] * it["valor_unitario"] for it in items), Decimal())
        frete = money(rng.uniform(8, 60)) if rng.random() < 0.5 else Decimal("0.00")
        desconto = money(total_produtos * Decimal(rng.randint(1, 10)) / 100)
        desconto = desconto if rng.random() < 0.3 else Decimal("0.00")
        total = total_produtos + frete - desconto
        id_vendedor, nome_vendedor = SELLERS[rng.randrange(len(SELLERS))]
        ecommerce = rng.random() < 0.4
        tracking = f"BR{rng.randrange(10**8, 10**9)}BR"
        return {
            "id": self.order_id_base + i,
            "numero": self.numero_base + i,
            "numero_ecommerce": f"MLB-{rng.randrange(10**9, 10**10)}" if ecommerce else "",
            "data_pedido": day,
            "data_prevista": day + timedelta(days=rng.randint(3, 15)),
            "data_faturamento": day + timedelta(days=1) if situacao in INVOICED else None,
            "data_envio": day + timedelta(days=2) if situacao in SHIPPED else None,
            "data_entrega": day + timedelta(days=7) if situacao == "Entregue" else None,
            "cliente_index": k,
            "nome": self.client_name(k),
            "valor": total,
            "total_produtos": total_produtos,
            "valor_frete": frete,
            "valor_desconto": desconto,
            "outras_despesas": Decimal("0.00"),
            "id_vendedor": id_vendedor,
            "nome_vendedor": nome_vendedor,
            "situacao": situacao,
            "codigo_rastreamento": tracking if situacao in SHIPPED else "",
            "itens": items,
            "created_us": created_us,
        }

    def order_detail(self, i: int, order: dict[str, Any]) -> dict[str, Any]:
        """Fields only pedido.obter shows (installments, tags, notes), added to `order`."""
        rng = Rng(self._h(S_ORDER_DETAIL, i))
        parcelas = self._installments(rng, order["data_pedido"], order["valor"])
        order.update(
            parcelas=parcelas,
            marcadores=[rng.choice(TAGS)] if rng.random() < 0.2 else [],
            forma_pagamento=parcelas[0]["forma_pagamento"],
            obs=rng.choice(["", "", "Entregar em horário comercial", "Cliente recorrente"]),
        )
        return order

    @staticmethod
    def _installments(rng: Rng, day: date, total: Decimal) -> list[dict[str, Any]]:
        count = rng.choice([1, 1, 1, 2, 3])
        form = rng.choice(PAYMENT_FORMS)
        share = money(total / count)
        parcelas = []
        for n in range(count):
            # The last installment absorbs the rounding so they sum to the order total.
            value = total - share * (count - 1) if n == count - 1 else share
            parcelas.append(
                {
                    "dias": 30 * n,
                    "data": day + timedelta(days=30 * n),
                    "valor": value,
                    "obs": "",
                    "forma_pagamento": form,
                }
            )
        return parcelas

    # -- bills ---------------------------------------------------------------------------
    def bill(self, kind: str, i: int) -> dict[str, Any]:
        """Payable ('pagar') or receivable ('receber') i as it stood when the account was made."""
        stream = S_PAYABLE if kind == "pagar" else S_RECEIVABLE
        rng = Rng(self._h(stream, i))
        created_us = self.bills[kind].created_us(i)
        emissao = date_of(created_us)
        vencimento = emissao + timedelta(
            days=rng.choice([0, 7, 10, 14, 28, 30, 30, 45, MAX_DUE_DAYS])
        )
        valor = money(rng.uniform(30, 4000))
        overdue_days = (self.today - vencimento).days
        u = rng.random()
        if overdue_days > 5:
            situacao = "pago" if u < 0.85 else "cancelada" if u < 0.9 else "aberto"
            situacao = "parcial" if 0.97 <= u else situacao
        elif overdue_days > 0:
            situacao = "pago" if u < 0.5 else "aberto" if u < 0.9 else "parcial"
        else:
            situacao = "aberto" if u < 0.8 else "parcial" if u < 0.88 else "pago"
        saldo = valor
        data_pagamento = None
        if situacao == "pago":
            saldo = Decimal("0.00")
            paid_on = min(vencimento, self.today) - timedelta(days=rng.randint(0, 3))
            data_pagamento = max(paid_on, emissao)
        elif situacao == "parcial":
            saldo = money(valor * Decimal(rng.randint(20, 80)) / 100)
            data_pagamento = min(emissao + timedelta(days=rng.randint(0, 20)), self.today)
        if kind == "pagar":
            k = mix(self.seed, stream, i, 1) % max(10, self.n_clients // 20)
            nome = self.supplier_name(k)
            categoria = CATEGORIES_PAY[rng.randrange(len(CATEGORIES_PAY))]
        else:
            k = mix(self.seed, stream, i, 1) % self.n_clients
            nome = self.client_name(k)
            categoria = CATEGORIES_REC[rng.randrange(len(CATEGORIES_REC))]
        numero_doc = str(rng.randrange(1000, 999999))
        record: dict[str, Any] = {
            "id": self.bill_id_base[kind] + i,
            "nome_cliente": nome,
            "historico": f"{categoria} - documento {numero_doc}",
            "categoria": categoria,
            "numero_doc": numero_doc,
            "data_emissao": emissao,
            "data_vencimento": vencimento,
            "data_pagamento": data_pagamento,
            "valor": valor,
            "saldo": saldo,
            "situacao": situacao,
            "forma_pagamento": rng.choice(PAYMENT_FORMS),
            "created_us": created_us,
        }
        if kind == "receber":
            record["numero_banco"] = str(rng.randrange(10**7, 10**8)) if u < 0.6 else ""
            record["serie_doc"] = rng.choice(["1", "1", "2", ""])
            record["id_origem"] = self.order_id_base + rng.randrange(max(1, self.spec.orders))
        return record

    def supplier_name(self, k: int) -> str:
        """Name of supplier k (payables' counterpart)."""
        h = mix(self.seed, S_PAYABLE, k, 2)
        words = (COMPANY_WORDS, PLACE_WORDS, COMPANY_SUFFIXES)
        return " ".join(w[(h >> (8 * n)) % len(w)] for n, w in enumerate(words, start=1))

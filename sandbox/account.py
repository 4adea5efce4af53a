"""One fake Tiny account: lazily generated base data plus a small overlay of later changes."""

from __future__ import annotations

import bisect
import itertools
import random
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sandbox.common import US_PER_DAY, date_of, midnight_us, mix, stable_seed
from sandbox.data import ORDER_FINAL, ORDER_FLOW, AccountSpec, Generator

ORDER_LIST_FIELDS = (
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
)
BILL_LIST_FIELDS = (
    "id",
    "nome_cliente",
    "historico",
    "numero_doc",
    "data_vencimento",
    "data_emissao",
    "valor",
    "saldo",
    "situacao",
)
OPEN_BILL = ("aberto", "parcial")
S_EVOLVE = 99


class Selection:
    """Sorted record indices: the range [lo, hi) minus `removed`, plus `added` outside it.

    Listing 200,000 orders then costs a few arithmetic steps per page instead of a list.
    """

    def __init__(
        self, lo: int = 0, hi: int = 0, removed: Iterable[int] = (), added: Iterable[int] = ()
    ) -> None:
        self.lo, self.hi = lo, max(lo, hi)
        self.removed = sorted({r for r in removed if lo <= r < self.hi})
        extra = sorted({a for a in added if not lo <= a < self.hi})
        self.below = [a for a in extra if a < lo]
        self.above = [a for a in extra if a >= self.hi]

    @classmethod
    def of(cls, indices: Iterable[int]) -> Selection:
        """A selection holding exactly `indices`."""
        return cls(0, 0, (), indices)

    def __len__(self) -> int:
        return len(self.below) + (self.hi - self.lo - len(self.removed)) + len(self.above)

    def __getitem__(self, k: int) -> int:
        if not 0 <= k < len(self):
            raise IndexError(k)
        if k < len(self.below):
            return self.below[k]
        k -= len(self.below)
        middle = self.hi - self.lo - len(self.removed)
        if k >= middle:
            return self.above[k - middle]
        x = self.lo + k
        for r in self.removed:  # skip each removed index at or before the candidate
            if r > x:
                break
            x += 1
        return x

    def __iter__(self) -> Iterator[int]:
        yield from self.below
        removed = set(self.removed)
        yield from (i for i in range(self.lo, self.hi) if i not in removed)
        yield from self.above

    def __contains__(self, i: object) -> bool:
        if not isinstance(i, int):
            return False
        if self.lo <= i < self.hi:
            return bisect.bisect_left(self.removed, i) == bisect.bisect_right(self.removed, i)
        return i in self.below or i in self.above

    def filter(self, keep: Callable[[int], bool]) -> Selection:
        """The indices for which `keep` holds."""
        return Selection.of(i for i in self if keep(i))


@dataclass
class Truth:
    """What a correct sync of a date window must hold, in Python types."""

    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    order_items: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    payables_open: dict[int, dict[str, Any]] = field(default_factory=dict)
    payables_paid: dict[int, dict[str, Any]] = field(default_factory=dict)
    receivables_open: dict[int, dict[str, Any]] = field(default_factory=dict)
    receivables_paid: dict[int, dict[str, Any]] = field(default_factory=dict)
    products: dict[int, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready copy: decimals as strings, dates ISO, ids as object keys."""

        def plain(value: Any) -> Any:
            if isinstance(value, Decimal):
                return str(value)
            if isinstance(value, date):
                return value.isoformat()
            if isinstance(value, dict):
                return {str(k): plain(v) for k, v in value.items()}
            if isinstance(value, list):
                return [plain(v) for v in value]
            return value

        return {name: plain(getattr(self, name)) for name in self.__dataclass_fields__}


class Account:
    """A token's data: base records from `Generator` and an overlay written by `evolve`."""

    def __init__(self, token: str, spec: AccountSpec, now_us: int) -> None:
        self.token = token
        self.spec = spec
        self.seed = spec.seed if spec.seed is not None else stable_seed(token)
        self.gen = Generator(self.seed, spec, now_us)
        # Requests from server threads read while evolve() writes; the overlay is tiny, so one
        # lock per account held for a handler's few milliseconds is enough.
        self.lock = threading.RLock()
        self.order_changes: dict[int, tuple[str, int]] = {}  # index -> (situacao, updated_us)
        self.new_orders: list[int] = []  # created_us of orders added later; index = orders + n
        self.bill_changes: dict[str, dict[int, dict[str, Any]]] = {"pagar": {}, "receber": {}}
        self.stock_changes: dict[int, tuple[dict[str, Decimal], int]] = {}
        self.evolutions = 0

    # -- orders --------------------------------------------------------------------------
    @property
    def order_count(self) -> int:
        """Orders in the account, including ones added by evolve()."""
        return self.spec.orders + len(self.new_orders)

    def order_created_us(self, i: int) -> int:
        """Creation time of order index i."""
        if i < self.spec.orders:
            return self.gen.orders.created_us(i)
        return self.new_orders[i - self.spec.orders]

    def order_situacao(self, i: int) -> str:
        """Current status of order index i."""
        change = self.order_changes.get(i)
        if change:
            return change[0]
        if i >= self.spec.orders:
            return "Em aberto"
        return self.gen.order_situacao(i, self.order_created_us(i))

    def order_updated_us(self, i: int) -> int:
        """Last change of order index i (its creation unless evolve() touched it)."""
        change = self.order_changes.get(i)
        return change[1] if change else self.order_created_us(i)

    def order(self, i: int) -> dict[str, Any]:
        """Full current record of order index i."""
        record = self.gen.order(i, self.order_created_us(i), self.order_situacao(i))
        record["updated_us"] = self.order_updated_us(i)
        return record

    def order_index(self, order_id: int) -> int | None:
        """Index of an order id, or None when the account has no such order."""
        i = order_id - self.gen.order_id_base
        return i if 0 <= i < self.order_count else None

    def select_orders(
        self, start: date | None = None, end: date | None = None, since_us: int | None = None
    ) -> Selection:
        """Orders with data_pedido in [start, end] and (if given) changed at or after since_us."""
        timeline, base = self.gen.orders, self.spec.orders
        lo = timeline.index_at(midnight_us(start)) if start else 0
        hi = timeline.index_at(midnight_us(end + timedelta(days=1))) if end else base
        lo_u = max(lo, timeline.index_at(since_us)) if since_us is not None else lo
        removed, added = [], []
        if since_us is not None:
            # Untouched base orders were last changed at creation, which is monotonic in the
            # index; only evolve()'s changes need checking one by one.
            for k, (_, updated) in self.order_changes.items():
                if k < base and lo <= k < hi:
                    if k >= lo_u and updated < since_us:
                        removed.append(k)
                    elif k < lo_u and updated >= since_us:
                        added.append(k)
        for n, created in enumerate(self.new_orders):
            k = base + n
            day = date_of(created)
            if (start and day < start) or (end and day > end):
                continue
            if since_us is None or self.order_updated_us(k) >= since_us:
                added.append(k)
        return Selection(lo_u, hi, removed, added)

    # -- bills ---------------------------------------------------------------------------
    def bill(self, kind: str, i: int) -> dict[str, Any]:
        """Current payable/receivable index i."""
        record = self.gen.bill(kind, i)
        record.update(self.bill_changes[kind].get(i, {}))
        return record

    def bill_index(self, kind: str, bill_id: int) -> int | None:
        """Index of a bill id, or None."""
        i = bill_id - self.gen.bill_id_base[kind]
        return i if 0 <= i < self.gen.bills[kind].count else None

    def select_bills(self, kind: str, start: date | None, end: date | None) -> Selection:
        """Bills whose data_emissao is in [start, end]."""
        timeline = self.gen.bills[kind]
        lo = timeline.index_at(midnight_us(start)) if start else 0
        hi = timeline.index_at(midnight_us(end + timedelta(days=1))) if end else timeline.count
        return Selection(lo, hi)

    # -- products ------------------------------------------------------------------------
    def product(self, j: int) -> dict[str, Any]:
        """Product index j with current stock: `saldo` sums the deposits that count."""
        record = self.gen.product(j)
        change = self.stock_changes.get(j)
        if change:
            deltas, changed_us = change
            for dep in record["depositos"]:
                dep[2] += deltas.get(dep[0], Decimal(0))
            record["stock_changed_us"] = max(record["stock_changed_us"], changed_us)
        record["saldo"] = sum((d[2] for d in record["depositos"] if d[1] == "N"), Decimal(0))
        return record

    def product_index(self, product_id: int) -> int | None:
        """Index of a product id, or None."""
        j = product_id - self.gen.product_id_base
        return j if 0 <= j < self.spec.products else None

    # -- changes -------------------------------------------------------------------------
    def evolve(self, now_us: int, new_orders: int, status_changes: int, payments: int) -> None:
        """Apply business activity at `now_us`; every touched record's update time is now_us."""
        with self.lock:
            rng = random.Random(mix(self.seed, S_EVOLVE, self.evolutions))
            self.evolutions += 1
            # Status changes first, so they touch existing orders, not the ones added now.
            self._change_statuses(rng, now_us, status_changes)
            for _ in range(new_orders):
                self.new_orders.append(now_us)
                i = self.order_count - 1
                # A sale takes its items out of the main deposit, which shows up in
                # lista.atualizacoes.estoque like on a real account.
                for item in self.gen.order(i, now_us, "Em aberto")["itens"]:
                    j = self.product_index(item["id_produto"])
                    if j is not None:
                        deltas, _ = self.stock_changes.get(j, ({}, now_us))
                        deltas["Geral"] = deltas.get("Geral", Decimal(0)) - item["quantidade"]
                        self.stock_changes[j] = (deltas, now_us)
            for kind in ("pagar", "receber"):
                self._pay_bills(rng, now_us, kind, payments)

    def _change_statuses(self, rng: random.Random, now_us: int, count: int) -> None:
        lo = self.gen.orders.index_at(now_us - 30 * US_PER_DAY)
        total = self.order_count
        if count <= 0 or lo >= total:
            return
        changed: set[int] = set()
        for _ in range(count * 50):
            if len(changed) >= count:
                break
            i = rng.randrange(lo, total)
            current = self.order_situacao(i)
            if i in changed or current in ORDER_FINAL:
                continue
            step = ORDER_FLOW.index(current) + 1 if current in ORDER_FLOW else len(ORDER_FLOW) - 1
            status = "Cancelado" if rng.random() < 0.1 else ORDER_FLOW[step]
            self.order_changes[i] = (status, now_us)
            changed.add(i)

    def _pay_bills(self, rng: random.Random, now_us: int, kind: str, count: int) -> None:
        total = self.gen.bills[kind].count
        paid: set[int] = set()
        if count <= 0 or total == 0:
            return
        # Random probes first (cheap on big accounts), then a scan so small accounts still
        # get exactly `count` payments when that many bills are open.
        probes = [rng.randrange(total) for _ in range(count * 20)]
        for i in itertools.chain(probes, range(total)):
            if len(paid) >= count:
                break
            record = self.bill(kind, i)
            if i in paid or record["situacao"] not in OPEN_BILL:
                continue
            self.bill_changes[kind][i] = {
                "situacao": "pago",
                "saldo": Decimal("0.00"),
                "data_pagamento": date_of(now_us),
                "valor_pago": record["valor"],
                "updated_us": now_us,
            }
            paid.add(i)

    # -- truth ---------------------------------------------------------------------------
    def truth(self, start: date, end: date) -> Truth:
        """Everything a correct sync of [start, end] must hold."""
        truth = Truth()
        with self.lock:
            for i in self.select_orders(start, end):
                record = self.order(i)
                truth.orders[record["id"]] = {f: record[f] for f in ORDER_LIST_FIELDS}
                truth.order_items[record["id"]] = [
                    {f: item[f] for f in ("codigo", "descricao", "quantidade", "valor_unitario")}
                    for item in record["itens"]
                ]
            for kind, opened, paid in (
                ("pagar", truth.payables_open, truth.payables_paid),
                ("receber", truth.receivables_open, truth.receivables_paid),
            ):
                extra = ("numero_banco", "serie_doc") if kind == "receber" else ()
                for i in self.select_bills(kind, start, end):
                    bill = self.bill(kind, i)
                    row = {f: bill[f] for f in (*BILL_LIST_FIELDS, *extra)}
                    if bill["situacao"] in OPEN_BILL:
                        opened[bill["id"]] = row
                    elif bill["situacao"] == "pago":
                        paid[bill["id"]] = row
            for j in range(self.spec.products):
                product = self.product(j)
                if product["situacao"] == "A":
                    truth.products[product["id"]] = {
                        "id": product["id"],
                        "codigo": product["codigo"],
                        "nome": product["nome"],
                        "unidade": product["unidade"],
                        "preco": product["preco"],
                        "saldo": product["saldo"],
                        "saldo_reservado": product["saldo_reservado"],
                    }
        return truth

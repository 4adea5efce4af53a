"""One fake Tiny account: lazily generated base data plus a small overlay of later changes.

The overlay holds only what changed (statuses, payments, deletions, stock moves, added
records, planted odd values), so listings stay arithmetic over the generated base. Every
change method takes the moment it happens (`now_us`, the sandbox's clock) and logs itself.
"""

from __future__ import annotations

import itertools
import random
import threading
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sandbox.changes import Change, ChangeLog, Churn, apply_churn
from sandbox.common import US_PER_DAY, date_of, midnight_us, mix, money, stable_seed
from sandbox.data import ORDER_FINAL, ORDER_FLOW, AccountSpec, Generator
from sandbox.selection import Selection

OPEN_BILL = ("aberto", "parcial")
PRODUCT_STATUSES = ("A", "I", "E")
PRODUCT_CHANGE = {"A": "activate_product", "I": "deactivate_product", "E": "delete_product"}
S_EVOLVE = 99


class Account:
    """A token's data: base records from `Generator` and an overlay of later changes."""

    def __init__(self, token: str, spec: AccountSpec, now_us: int) -> None:
        self.token = token
        self.spec = spec
        self.seed = spec.seed if spec.seed is not None else stable_seed(token)
        self.gen = Generator(self.seed, spec, now_us)
        # Requests from server threads read while changes are written; the overlay is tiny,
        # so one lock per account held for a handler's few milliseconds is enough.
        self.lock = threading.RLock()
        self.order_changes: dict[int, tuple[str, int]] = {}  # index -> (situacao, updated_us)
        self.new_orders: list[int] = []  # created_us of orders added later; index = orders + n
        self.new_order_added_us: dict[int, int] = {}  # added orders dated before they were added
        self.deleted_orders: dict[int, int] = {}  # index -> deleted_us
        self.bill_changes: dict[str, dict[int, dict[str, Any]]] = {"pagar": {}, "receber": {}}
        self.deleted_bills: dict[str, dict[int, int]] = {"pagar": {}, "receber": {}}
        self.stock_changes: dict[int, tuple[dict[str, Decimal], int]] = {}
        self.product_changes: dict[int, tuple[str, int]] = {}  # index -> (situacao, changed_us)
        self.new_products: list[int] = []  # created_us; index = products + n
        self.stock_served: dict[int, int] = {}  # index -> stock_changed_us when last served
        self.planted: dict[int, dict[str, Any]] = {}  # record id -> {JSON field: odd value}
        self.log = ChangeLog()
        self.churn: Churn | None = None
        self.churn_calls = 0
        self.churn_batches = 0
        self.evolutions = 0

    def _log(self, kind: str, record_id: int, now_us: int, call: int | None, **detail: Any) -> None:
        self.log.add(Change(kind, record_id, now_us, call, detail))

    # -- scheduled churn -----------------------------------------------------------------
    def set_churn(self, churn: Churn | None) -> None:
        """Apply `churn` from the next call on (None stops it); calls count from here."""
        with self.lock:
            self.churn, self.churn_calls, self.churn_batches = churn, 0, 0

    def before_call(self, now_us: int) -> None:
        """Count an answered API call and apply the churn batch due before it, if any."""
        if self.churn is None:
            return
        self.churn_calls += 1
        if self.churn.due(self.churn_calls):
            self.churn_batches += 1
            apply_churn(self, self.churn, self.churn_batches, now_us, self.churn_calls)

    # -- orders --------------------------------------------------------------------------
    @property
    def order_count(self) -> int:
        """Orders ever in the account (deleted ones included), with ones added later."""
        return self.spec.orders + len(self.new_orders)

    def order_created_us(self, i: int) -> int:
        """Creation time of order index i (its data_pedido is this moment's Brasília date)."""
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
        """Last change of order index i (its creation unless something changed it)."""
        change = self.order_changes.get(i)
        if change:
            return change[1]
        return self.new_order_added_us.get(i, self.order_created_us(i))

    def order(self, i: int) -> dict[str, Any]:
        """Full current record of order index i."""
        record = self.gen.order(i, self.order_created_us(i), self.order_situacao(i))
        record["updated_us"] = self.order_updated_us(i)
        return record

    def order_exists(self, i: int) -> bool:
        """Whether order index i is in the account and not deleted."""
        return 0 <= i < self.order_count and i not in self.deleted_orders

    def order_can_cancel(self, i: int) -> bool:
        """Whether order index i exists and is not already cancelled."""
        return self.order_exists(i) and self.order_situacao(i) != "Cancelado"

    def order_index(self, order_id: int) -> int | None:
        """Index of an order id, or None when the account has no such order (or deleted it)."""
        i = order_id - self.gen.order_id_base
        return i if self.order_exists(i) else None

    def _order_index(self, order_id: int) -> int:
        i = self.order_index(order_id)
        if i is None:
            raise KeyError(f"no order {order_id} in account {self.token!r}")
        return i

    def select_orders(
        self, start: date | None = None, end: date | None = None, since_us: int | None = None
    ) -> Selection:
        """Orders with data_pedido in [start, end] and (if given) changed at or after since_us.

        Listed by order date: an order added later but dated inside the window is placed
        among the window's orders, shifting the pages after it.
        """
        timeline, base = self.gen.orders, self.spec.orders
        lo = timeline.index_at(midnight_us(start)) if start else 0
        hi = timeline.index_at(midnight_us(end + timedelta(days=1))) if end else base
        lo_u = max(lo, timeline.index_at(since_us)) if since_us is not None else lo
        removed = [k for k in self.deleted_orders if k < base]
        early: list[int] = []
        if since_us is not None:
            # Untouched base orders were last changed at creation, which is monotonic in the
            # index; only the overlay's changes need checking one by one.
            for k, (_, updated) in self.order_changes.items():
                if k < base and lo <= k < hi:
                    if k >= lo_u and updated < since_us:
                        removed.append(k)
                    elif k < lo_u and updated >= since_us and k not in self.deleted_orders:
                        early.append(k)
        inserted = [(k, k) for k in sorted(early)]
        added = []
        for n, created in enumerate(self.new_orders):
            k = base + n
            day = date_of(created)
            if k in self.deleted_orders or (start and day < start) or (end and day > end):
                continue
            if since_us is None or self.order_updated_us(k) >= since_us:
                added.append((created, k))
        inserted += [(timeline.index_at(created), k) for created, k in sorted(added)]
        return Selection(lo_u, hi, removed, inserted)

    def add_order(self, now_us: int, created_us: int | None = None, call: int | None = None) -> int:
        """Add an order dated `created_us` (default now; never later than now); its id."""
        created = now_us if created_us is None else min(created_us, now_us)
        self.new_orders.append(created)
        i = self.order_count - 1
        if created != now_us:
            self.new_order_added_us[i] = now_us
        order_id = self.gen.order_id_base + i
        self._log("add_order", order_id, now_us, call, data_pedido=date_of(created).isoformat())
        return order_id

    def cancel_order(self, now_us: int, order_id: int, call: int | None = None) -> None:
        """Set an order's situacao to Cancelado."""
        i = self._order_index(order_id)
        self.order_changes[i] = ("Cancelado", now_us)
        self._log("cancel_order", order_id, now_us, call)

    def delete_order(self, now_us: int, order_id: int, call: int | None = None) -> None:
        """Delete an order: pedido.obter answers 32 and no listing shows it."""
        i = self._order_index(order_id)
        self.deleted_orders[i] = now_us
        self._log("delete_order", order_id, now_us, call)

    # -- bills ---------------------------------------------------------------------------
    def bill(self, kind: str, i: int) -> dict[str, Any]:
        """Current payable/receivable index i."""
        record = self.gen.bill(kind, i)
        record.update(self.bill_changes[kind].get(i, {}))
        return record

    def bill_exists(self, kind: str, i: int) -> bool:
        """Whether bill index i of `kind` is in the account and not deleted."""
        return 0 <= i < self.gen.bills[kind].count and i not in self.deleted_bills[kind]

    def bill_is_open(self, kind: str, i: int) -> bool:
        """Whether bill index i exists and is still owed (aberto or parcial)."""
        return self.bill_exists(kind, i) and self.bill(kind, i)["situacao"] in OPEN_BILL

    def bill_index(self, kind: str, bill_id: int) -> int | None:
        """Index of a bill id, or None (also when deleted)."""
        i = bill_id - self.gen.bill_id_base[kind]
        return i if self.bill_exists(kind, i) else None

    def locate_bill(self, bill_id: int) -> tuple[str, int]:
        """(kind, index) of a bill id of either kind; KeyError when there is none."""
        for kind in ("pagar", "receber"):
            i = self.bill_index(kind, bill_id)
            if i is not None:
                return kind, i
        raise KeyError(f"no bill {bill_id} in account {self.token!r}")

    def select_bills(self, kind: str, start: date | None, end: date | None) -> Selection:
        """Bills whose data_emissao is in [start, end]."""
        timeline = self.gen.bills[kind]
        lo = timeline.index_at(midnight_us(start)) if start else 0
        hi = timeline.index_at(midnight_us(end + timedelta(days=1))) if end else timeline.count
        return Selection(lo, hi, self.deleted_bills[kind])

    def _open_bill(self, bill_id: int) -> tuple[str, int, dict[str, Any]]:
        kind, i = self.locate_bill(bill_id)
        record = self.bill(kind, i)
        if record["situacao"] not in OPEN_BILL:
            raise ValueError(f"bill {bill_id} is {record['situacao']}, not open")
        return kind, i, record

    def pay_bill(self, now_us: int, bill_id: int, call: int | None = None) -> None:
        """Pay an open bill in full today: situacao pago, saldo 0, paid date and value."""
        kind, i, record = self._open_bill(bill_id)
        self.bill_changes[kind][i] = {
            "situacao": "pago",
            "saldo": Decimal("0.00"),
            "data_pagamento": date_of(now_us),
            "valor_pago": record["valor"],
            "updated_us": now_us,
        }
        self._log("pay_bill", bill_id, now_us, call, bill_kind=kind)

    def partly_pay_bill(
        self, now_us: int, bill_id: int, amount: Decimal | None = None, call: int | None = None
    ) -> Decimal:
        """Pay part of an open bill today (default half its saldo): situacao parcial; the amount."""
        kind, i, record = self._open_bill(bill_id)
        amount = money(record["saldo"] / 2) if amount is None else money(amount)
        if not 0 < amount < record["saldo"]:
            raise ValueError(f"a partial payment must be between 0 and {record['saldo']}")
        saldo = record["saldo"] - amount
        self.bill_changes[kind][i] = {
            "situacao": "parcial",
            "saldo": saldo,
            "data_pagamento": date_of(now_us),
            "valor_pago": record["valor"] - saldo,
            "updated_us": now_us,
        }
        self._log("partly_pay_bill", bill_id, now_us, call, bill_kind=kind, amount=amount)
        return amount

    def cancel_bill(self, now_us: int, bill_id: int, call: int | None = None) -> None:
        """Cancel an open bill: situacao cancelada (listed only under situacao=cancelada)."""
        kind, i, _ = self._open_bill(bill_id)
        change = self.bill_changes[kind].setdefault(i, {})
        change.update(situacao="cancelada", updated_us=now_us)
        self._log("cancel_bill", bill_id, now_us, call, bill_kind=kind)

    def delete_bill(self, now_us: int, bill_id: int, call: int | None = None) -> None:
        """Delete a bill: conta.*.obter answers 32 and no listing shows it."""
        kind, i = self.locate_bill(bill_id)
        self.deleted_bills[kind][i] = now_us
        self._log("delete_bill", bill_id, now_us, call, bill_kind=kind)

    # -- products ------------------------------------------------------------------------
    @property
    def product_count(self) -> int:
        """Products in the account, including ones added later."""
        return self.spec.products + len(self.new_products)

    def product_situacao(self, j: int) -> str:
        """Current situacao (A, I or E) of product index j."""
        return self.product(j)["situacao"]

    def product(self, j: int) -> dict[str, Any]:
        """Product index j with current stock: `saldo` sums the deposits that count."""
        record = self.gen.product(j)
        if j >= self.spec.products:
            created = self.new_products[j - self.spec.products]
            record.update(situacao="A", data_criacao_us=created, stock_changed_us=created)
        change = self.product_changes.get(j)
        if change:
            record["situacao"] = change[0]
        stock = self.stock_changes.get(j)
        if stock:
            deltas, changed_us = stock
            for dep in record["depositos"]:
                dep[2] += deltas.get(dep[0], Decimal(0))
            record["stock_changed_us"] = max(record["stock_changed_us"], changed_us)
        record["saldo"] = sum((d[2] for d in record["depositos"] if d[1] == "N"), Decimal(0))
        return record

    def product_index(self, product_id: int) -> int | None:
        """Index of a product id, or None."""
        j = product_id - self.gen.product_id_base
        return j if 0 <= j < self.product_count else None

    def _product_index(self, product_id: int) -> int:
        j = self.product_index(product_id)
        if j is None:
            raise KeyError(f"no product {product_id} in account {self.token!r}")
        return j

    def add_product(self, now_us: int, created_us: int | None = None) -> int:
        """Add an active product created at `created_us` (default now); its id."""
        created = now_us if created_us is None else created_us
        self.new_products.append(created)
        product_id = self.gen.product_id_base + self.product_count - 1
        self._log("add_product", product_id, now_us, None)
        return product_id

    def set_product_situacao(
        self, now_us: int, product_id: int, situacao: str, call: int | None = None
    ) -> None:
        """Activate (A), deactivate (I) or delete (E) a product."""
        if situacao not in PRODUCT_STATUSES:
            raise ValueError(f"situacao must be one of {PRODUCT_STATUSES}")
        j = self._product_index(product_id)
        self.product_changes[j] = (situacao, now_us)
        self._log(PRODUCT_CHANGE[situacao], product_id, now_us, call)

    def move_stock(
        self,
        now_us: int,
        product_id: int,
        delta: Decimal | int,
        deposito: str = "Geral",
        call: int | None = None,
    ) -> None:
        """Add `delta` (negative to take out) to one deposit; the change enters the queue."""
        j = self._product_index(product_id)
        if deposito not in {d[0] for d in self.product(j)["depositos"]}:
            raise ValueError(f"product {product_id} has no deposit {deposito!r}")
        self._add_stock(j, deposito, Decimal(delta), now_us)
        self._log("move_stock", product_id, now_us, call, deposito=deposito, delta=Decimal(delta))

    def _add_stock(self, j: int, deposito: str, delta: Decimal, now_us: int) -> None:
        deltas, _ = self.stock_changes.get(j, ({}, now_us))
        deltas[deposito] = deltas.get(deposito, Decimal(0)) + delta
        self.stock_changes[j] = (deltas, now_us)

    def stock_queue(self, since_us: int) -> Selection:
        """Products in the stock-updates queue changed at or after since_us, unserved."""
        return Selection(0, self.product_count).filter(
            lambda j: (
                (changed := self.product(j)["stock_changed_us"]) >= since_us
                and changed > self.stock_served.get(j, -1)
            )
        )

    def mark_stock_served(self, indices: list[int]) -> None:
        """Take served products out of the queue until their stock changes again."""
        for j in indices:
            self.stock_served[j] = self.product(j)["stock_changed_us"]

    # -- evolve --------------------------------------------------------------------------
    def evolve(self, now_us: int, new_orders: int, status_changes: int, payments: int) -> None:
        """Apply business activity at `now_us`; every touched record's update time is now_us."""
        with self.lock:
            rng = random.Random(mix(self.seed, S_EVOLVE, self.evolutions))
            self.evolutions += 1
            # Status changes first, so they touch existing orders, not the ones added now.
            self._change_statuses(rng, now_us, status_changes)
            for _ in range(new_orders):
                self.add_order(now_us)
                i = self.order_count - 1
                # A sale takes its items out of the main deposit, which shows up in
                # lista.atualizacoes.estoque like on a real account.
                for item in self.gen.order(i, now_us, "Em aberto")["itens"]:
                    j = self.product_index(item["id_produto"])
                    if j is not None:
                        self._add_stock(j, "Geral", -item["quantidade"], now_us)
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
            if i in changed or current in ORDER_FINAL or i in self.deleted_orders:
                continue
            step = ORDER_FLOW.index(current) + 1 if current in ORDER_FLOW else len(ORDER_FLOW) - 1
            status = "Cancelado" if rng.random() < 0.1 else ORDER_FLOW[step]
            self.order_changes[i] = (status, now_us)
            kind = "cancel_order" if status == "Cancelado" else "advance_order"
            self._log(kind, self.gen.order_id_base + i, now_us, None, situacao=status)
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
            if i in paid or not self.bill_is_open(kind, i):
                continue
            self.pay_bill(now_us, self.gen.bill_id_base[kind] + i)
            paid.add(i)

"""Data that moves while a client reads it: the change log and scheduled churn.

A `Churn` set on an account applies a batch of changes before answering chosen API calls
(every `every_calls`-th call after the churn was set, and at each call number in `at_calls`),
drawn from an RNG seeded with `seed` and the batch number, so the same client calls see the
same changes. Every change, scheduled or explicit, lands in the account's `ChangeLog`.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

from sandbox.common import midnight_us, mix

if TYPE_CHECKING:
    from sandbox.account import Account

S_CHURN = 98
BILL_KINDS = ("pagar", "receber")
STOCK_STEPS = (-3, -2, -1, 1, 2, 5, 10)


@dataclass
class Change:
    """One change made to an account's data."""

    kind: str
    id: int
    at_us: int
    call: int | None  # the API call it was applied before, for scheduled changes
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (decimals as strings)."""
        detail = {k: str(v) if isinstance(v, Decimal) else v for k, v in self.detail.items()}
        return {"kind": self.kind, "id": self.id, "at_us": self.at_us, "call": self.call, **detail}


@dataclass
class ChangeLog:
    """Changes made so far: `counts` per kind, `ids` per kind in order, every `events` entry."""

    counts: Counter[str] = field(default_factory=Counter)
    ids: dict[str, list[int]] = field(default_factory=dict)
    events: list[Change] = field(default_factory=list)

    def add(self, change: Change) -> None:
        """Record one change."""
        self.counts[change.kind] += 1
        self.ids.setdefault(change.kind, []).append(change.id)
        self.events.append(change)

    @property
    def total(self) -> int:
        """All changes made."""
        return sum(self.counts.values())

    def copy(self) -> ChangeLog:
        """An independent snapshot."""
        return ChangeLog(
            Counter(self.counts), {k: list(v) for k, v in self.ids.items()}, [*self.events]
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "total": self.total,
            "counts": dict(self.counts),
            "ids": {k: list(v) for k, v in self.ids.items()},
            "events": [e.to_json() for e in self.events],
        }


@dataclass(frozen=True)
class Churn:
    """A batch of changes applied before every `every_calls`-th call and at `at_calls`.

    Bill counts apply to each of payables and receivables; bills and orders are drawn from the
    whole account (any emission or order date). `new_orders_window` dates the added orders
    inside [start, end] (default: today), so they land among a listing's existing records.
    """

    every_calls: int = 0
    at_calls: tuple[int, ...] = ()
    seed: int = 0
    pay_bills: int = 0
    partly_pay_bills: int = 0
    cancel_bills: int = 0
    delete_bills: int = 0
    cancel_orders: int = 0
    delete_orders: int = 0
    new_orders: int = 0
    new_orders_window: tuple[date, date] | None = None
    move_stock: int = 0
    deactivate_products: int = 0
    delete_products: int = 0

    def __post_init__(self) -> None:
        # Accept JSON shapes (lists, ISO dates) but keep the frozen dataclass hashable.
        object.__setattr__(self, "at_calls", tuple(int(c) for c in self.at_calls))
        window = self.new_orders_window
        if window is not None:
            start, end = (d if isinstance(d, date) else date.fromisoformat(d) for d in window)
            if start > end:
                raise ValueError("new_orders_window must be (start, end) with start <= end")
            object.__setattr__(self, "new_orders_window", (start, end))
        counts = [getattr(self, f.name) for f in fields(self) if f.type == "int"]
        if any(c < 0 for c in counts) or any(c < 1 for c in self.at_calls):
            raise ValueError("churn counts must be >= 0 and call numbers >= 1")

    def due(self, call: int) -> bool:
        """Whether a batch is applied before answering call number `call` (from 1)."""
        return call in self.at_calls or (self.every_calls > 0 and call % self.every_calls == 0)


FIELD_NAMES = frozenset(f.name for f in fields(Churn))


def _pick(rng: random.Random, total: int, count: int, eligible: Callable[[int], bool]) -> list[int]:
    """Up to `count` distinct indices in [0, total) where `eligible` holds, at random.

    Random probes first (cheap on big accounts), then a scan from a random start so small
    accounts still get `count` picks when that many qualify.
    """
    picked: list[int] = []
    if count <= 0 or total <= 0:
        return picked
    start = rng.randrange(total)
    probes = (rng.randrange(total) for _ in range(count * 20))
    scan = ((start + n) % total for n in range(total))
    for i in itertools.chain(probes, scan):
        if len(picked) >= count:
            break
        if i not in picked and eligible(i):
            picked.append(i)
    return picked


def apply_churn(account: Account, churn: Churn, batch: int, now_us: int, call: int) -> None:
    """Apply batch number `batch` of `churn` to `account` before answering `call`."""
    rng = random.Random(mix(churn.seed, S_CHURN, batch))
    for kind in BILL_KINDS:
        base = account.gen.bill_id_base[kind]
        total = account.gen.bills[kind].count
        for action, count in (
            (account.pay_bill, churn.pay_bills),
            (account.partly_pay_bill, churn.partly_pay_bills),
            (account.cancel_bill, churn.cancel_bills),
            (account.delete_bill, churn.delete_bills),
        ):
            open_bill = partial(account.bill_is_open, kind)
            for i in _pick(rng, total, count, open_bill):
                action(now_us, base + i, call=call)
    orders, order_base = account.order_count, account.gen.order_id_base
    for i in _pick(rng, orders, churn.cancel_orders, account.order_can_cancel):
        account.cancel_order(now_us, order_base + i, call=call)
    for i in _pick(rng, orders, churn.delete_orders, account.order_exists):
        account.delete_order(now_us, order_base + i, call=call)
    for _ in range(churn.new_orders):
        created = now_us
        if churn.new_orders_window is not None:
            start, end = churn.new_orders_window
            lo = midnight_us(start)
            hi = min(midnight_us(end + timedelta(days=1)), now_us + 1)
            created = lo + int(rng.random() * max(1, hi - lo)) if hi > lo else now_us
        account.add_order(now_us, created, call=call)
    products, product_base = account.product_count, account.gen.product_id_base
    for j in _pick(rng, products, churn.move_stock, lambda j: True):
        deposit, saldo = rng.choice([(d[0], d[2]) for d in account.product(j)["depositos"]])
        step = Decimal(rng.choice(STOCK_STEPS))
        delta = step if saldo + step >= 0 else abs(step)
        account.move_stock(now_us, product_base + j, delta, deposit, call=call)
    for situacao, count, before in (
        ("I", churn.deactivate_products, ("A",)),
        ("E", churn.delete_products, ("A", "I")),
    ):
        for j in _pick(rng, products, count, partial(_situacao_in, account, before)):
            account.set_product_situacao(now_us, product_base + j, situacao, call=call)


def _situacao_in(account: Account, situacoes: tuple[str, ...], j: int) -> bool:
    return account.product_situacao(j) in situacoes

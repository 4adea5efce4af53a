"""The soak's verdict: runs by status and stuck, records against the sandbox's truth, and the
Tiny tokens looked for in every log and stored log line.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, text

from bench.soak_parts import sandbox_admin
from core.models import (
    Payable,
    Receivable,
    SalesOrder,
    SalesOrderItem,
    StockItem,
    SyncRun,
    SyncRunLog,
    utcnow,
)

ACTIVE = ("QUEUED", "RUNNING")
DATA_TABLES = {
    "SalesOrder": ("companyId", "tinyId"),
    "SalesOrderItem": ("companyId", "orderTinyId", "position"),
    "Payable": ("companyId", "tinyId"),
    "Receivable": ("companyId", "tinyId"),
    "StockItem": ("companyId", "tinyId"),
}


# -- runs ---------------------------------------------------------------------------------
@dataclass
class RunFigures:
    """Where the runs stand."""

    by_status: Counter[str]
    by_trigger: Counter[str]
    stuck: list[str]
    unfinished: list[str]
    resumed: int
    reaped: int
    done_windows: dict[str, set[tuple[date, date]]]

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


def run_figures(engine: Engine, lease_seconds: float) -> RunFigures:
    """Runs by final status; stuck = RUNNING past its lease, or with no executor and idle."""
    now = utcnow()
    idle_since = now - timedelta(seconds=lease_seconds)
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                SyncRun.id,
                SyncRun.companyId,
                SyncRun.status,
                SyncRun.triggeredByUserId,
                SyncRun.leaseOwner,
                SyncRun.leaseExpiresAt,
                SyncRun.updatedAt,
                SyncRun.startDate,
                SyncRun.endDate,
                SyncRun.resumeCount,
            )
        ).all()
        reaped = conn.scalar(
            select(func.count(func.distinct(SyncRunLog.runId))).where(
                SyncRunLog.message.like("reaper:%")
            )
        )
    stuck, unfinished = [], []
    windows: dict[str, set[tuple[date, date]]] = {}
    for row in rows:
        if row.status == "RUNNING":
            lease_gone = row.leaseOwner is None or (
                row.leaseExpiresAt is not None and row.leaseExpiresAt < now
            )
            if lease_gone and (row.leaseOwner is not None or row.updatedAt < idle_since):
                stuck.append(row.id)
            else:
                unfinished.append(row.id)
        elif row.status == "QUEUED":
            (stuck if row.updatedAt < idle_since else unfinished).append(row.id)
        elif row.status == "DONE":
            windows.setdefault(row.companyId, set()).add((row.startDate.date(), row.endDate.date()))
    return RunFigures(
        by_status=Counter(row.status for row in rows),
        by_trigger=Counter(row.triggeredByUserId or "?" for row in rows),
        stuck=stuck,
        unfinished=unfinished,
        resumed=sum(1 for row in rows if row.resumeCount),
        reaped=int(reaped or 0),
        done_windows=windows,
    )


def active_runs(engine: Engine) -> list[str]:
    """Ids of the runs QUEUED or RUNNING now."""
    with engine.connect() as conn:
        return list(conn.scalars(select(SyncRun.id).where(SyncRun.status.in_(ACTIVE))))


# -- records against the truth ------------------------------------------------------------
@dataclass
class RecordFigures:
    """Records checked against the sandbox's truth, and what did not match."""

    checked: int = 0
    lost: int = 0
    duplicated: int = 0
    differing: int = 0
    windows: int = 0
    samples: list[str] = field(default_factory=list)

    def note(self, what: str) -> None:
        if len(self.samples) < 30:
            self.samples.append(what)


def _d(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def check_records(
    engine: Engine, sandbox_url: str, tokens: dict[str, str], runs: RunFigures
) -> RecordFigures:
    """For every DONE run's window: the company's rows there against `/_sandbox/truth`.

    Lost: in the truth, not in the database. Duplicated: a key stored twice, or a row the
    truth does not have. Differing: both have it, with other values.
    """
    figures = RecordFigures()
    truths: dict[tuple[str, date, date], dict[str, Any]] = {}
    figures.duplicated += _duplicate_keys(engine, figures)
    for company_id, windows in sorted(runs.done_windows.items()):
        token = tokens[company_id]
        for start, end in sorted(windows):
            key = (token, start, end)
            if key not in truths:
                truths[key] = sandbox_admin(
                    sandbox_url, "truth", token=token, start=start.isoformat(), end=end.isoformat()
                )
            _check_window(engine, figures, company_id, start, end, truths[key])
            figures.windows += 1
    return figures


def _duplicate_keys(engine: Engine, figures: RecordFigures) -> int:
    extra = 0
    with engine.connect() as conn:
        for table, key in DATA_TABLES.items():
            columns = ", ".join(f'"{c}"' for c in key)
            found = conn.execute(
                text(
                    f'SELECT {columns}, count(*) FROM "{table}" GROUP BY {columns} '
                    "HAVING count(*) > 1"
                )
            ).all()
            for row in found:
                extra += row[-1] - 1
                figures.note(f"{table} {tuple(row[:-1])} stored {row[-1]} times")
    return extra


def _compare(
    figures: RecordFigures,
    what: str,
    truth: dict[int, Any],
    stored: dict[int, Any],
) -> None:
    figures.checked += len(truth)
    for key in truth.keys() - stored.keys():
        figures.lost += 1
        figures.note(f"{what}: {key} lost")
    for key in stored.keys() - truth.keys():
        figures.duplicated += 1
        figures.note(f"{what}: {key} stored but not in the truth")
    for key in truth.keys() & stored.keys():
        if truth[key] != stored[key]:
            figures.differing += 1
            figures.note(f"{what}: {key} is {stored[key]}, truth {truth[key]}")


def _check_window(
    engine: Engine,
    figures: RecordFigures,
    company_id: str,
    start: date,
    end: date,
    truth: dict[str, Any],
) -> None:
    label = f"{company_id[:8]} {start}..{end}"
    with engine.connect() as conn:
        orders = conn.execute(
            select(SalesOrder.tinyId, SalesOrder.valor, SalesOrder.situacao).where(
                SalesOrder.companyId == company_id,
                SalesOrder.dataPedido >= start,
                SalesOrder.dataPedido <= end,
            )
        ).all()
        _compare(
            figures,
            f"{label} order",
            {int(k): (_d(v["valor"]), v["situacao"]) for k, v in truth["orders"].items()},
            {o.tinyId: (_d(o.valor), o.situacao) for o in orders},
        )
        order_ids = [int(k) for k in truth["orders"]]
        items = conn.execute(
            select(
                SalesOrderItem.orderTinyId,
                SalesOrderItem.position,
                SalesOrderItem.codigo,
                SalesOrderItem.quantidade,
                SalesOrderItem.valorUnitario,
            ).where(
                SalesOrderItem.companyId == company_id,
                SalesOrderItem.orderTinyId.in_(order_ids),
            )
        ).all()
        _compare(
            figures,
            f"{label} item",
            {
                (int(k), n): (i["codigo"], _d(i["quantidade"]), _d(i["valor_unitario"]))
                for k, lines in truth["order_items"].items()
                for n, i in enumerate(lines, start=1)
            },
            {
                (i.orderTinyId, i.position): (i.codigo, _d(i.quantidade), _d(i.valorUnitario))
                for i in items
            },
        )
        for model, name, open_key, paid_key in (
            (Payable, "payable", "payables_open", "payables_paid"),
            (Receivable, "receivable", "receivables_open", "receivables_paid"),
        ):
            bills = conn.execute(
                select(model.tinyId, model.valor, model.situacao).where(
                    model.companyId == company_id,
                    model.dataEmissao >= start,
                    model.dataEmissao <= end,
                    model.situacao.in_(("aberto", "parcial", "pago")),
                )
            ).all()
            truth_bills = {
                int(k): (_d(v["valor"]), v["situacao"])
                for group in (open_key, paid_key)
                for k, v in truth[group].items()
            }
            _compare(
                figures,
                f"{label} {name}",
                truth_bills,
                {b.tinyId: (_d(b.valor), b.situacao) for b in bills},
            )
        stock = conn.execute(
            select(StockItem.tinyId, StockItem.saldo).where(StockItem.companyId == company_id)
        ).all()
        _compare(
            figures,
            f"{label} product",
            {int(k): _d(v["saldo"]) for k, v in truth["products"].items()},
            {s.tinyId: _d(s.saldo) for s in stock},
        )


# -- secrets in logs ------------------------------------------------------------------------
def find_secrets(engine: Engine, files: list[Path], secrets: list[str]) -> list[str]:
    """Where any of `secrets` appears: log files, SyncRunLog lines, runs' stored JSON."""
    needles = [s.encode() for s in secrets]
    found = []
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            found.append(f"{path.name}: could not read it ({exc})")
            continue
        for needle in needles:
            if needle in data:
                found.append(f"log file {path.name}")
                break
    with engine.connect() as conn:
        rows = conn.execute(
            text('SELECT "runId", message, coalesce(metadata::text, \'\') FROM "SyncRunLog"')
        ).all()
        for run_id, message, metadata in rows:
            if any(s in message or s in metadata for s in secrets):
                found.append(f"SyncRunLog of run {run_id}")
        runs = conn.execute(
            text(
                "SELECT id, coalesce(\"errorMessage\", ''), coalesce(\"progressJson\"::text, ''), "
                'coalesce("checkpointJson"::text, \'\') FROM "SyncRun"'
            )
        ).all()
        for run_id, *texts in runs:
            if any(s in t for s in secrets for t in texts):
                found.append(f"SyncRun {run_id}")
    return found


def count_log_lines(engine: Engine) -> int:
    """How many SyncRunLog lines were scanned."""
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(SyncRunLog)) or 0)

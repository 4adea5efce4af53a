"""Prometheus metrics of one app, in registries of its own (no process-global state).

Business figures are private: `/metrics` shows them only to `Authorization: Bearer
<METRICS_TOKEN>`; without a token it shows the process metrics alone.

What the database knows (runs by status, records stored per module, Tiny calls of all runs)
is read at scrape time, so every API process reports the same cluster-wide numbers. What
only this process knows (its Tiny client's calls and retries, its step durations) is
per-process, as usual for Prometheus; sum it over the processes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from api.metrics_accounts import AccountCollector
from core.models import Payable, Receivable, SalesOrder, StockItem, SyncRun
from core.runs import RunStatus, count_runs_by_status
from core.services import Services

log = logging.getLogger(__name__)

PAID = "pago"
#: Where each module's records land; bills are split by whether Tiny says they are paid.
MODULE_RECORDS: dict[str, tuple[Any, bool | None]] = {
    "vw_vendas": (SalesOrder, None),
    "vw_contas_receber_posicao": (Receivable, False),
    "vw_contas_pagar": (Payable, False),
    "vw_contas_pagas": (Payable, True),
    "vw_contas_recebidas": (Receivable, True),
    "vw_estoque": (StockItem, None),
}
STEP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60)


class Metrics:
    """The app's registries: `registry` (business figures: runs, records, Tiny calls, step
    durations; for holders of METRICS_TOKEN) and `public` (this process's CPU, memory, GC)."""

    def __init__(self, services: Services):
        self.public = CollectorRegistry()
        ProcessCollector(registry=self.public)
        PlatformCollector(registry=self.public)
        GCCollector(registry=self.public)
        self.registry = CollectorRegistry()
        self.step_seconds = Histogram(
            "tinysync_step_duration_seconds",
            "Duration of the run steps this process executed, by module",
            ["module"],
            buckets=STEP_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StateCollector(services))
        self.registry.register(AccountCollector(services))

    def observe_step(self, module: str | None, seconds: float) -> None:
        """Record how long one step took."""
        self.step_seconds.labels(module=module or "none").observe(seconds)

    def render(self, *, private: bool = True) -> bytes:
        """The text exposition format: everything, or (private=False) the process only."""
        if not private:
            return generate_latest(self.public)
        return generate_latest(self.public) + generate_latest(self.registry)


class _StateCollector(Collector):
    """Reads the database and the Tiny client's counters at each scrape."""

    def __init__(self, services: Services):
        self.services = services

    def describe(self) -> list[Metric]:
        # Without this the registry would call collect() — and query the database — on
        # registration, at app creation.
        return []

    def collect(self) -> Iterator[Metric]:
        stats = self.services.client.stats
        yield CounterMetricFamily(
            "tinysync_tiny_calls",
            "Tiny API calls (attempts) made by this process",
            value=stats.calls,
        )
        retries = CounterMetricFamily(
            "tinysync_tiny_retries",
            "Tiny API calls this process retried, by reason",
            labels=["reason"],
        )
        for reason, count in sorted(stats.retries.items()):
            retries.add_metric([reason], count)
        yield retries
        up = GaugeMetricFamily("tinysync_database_up", "Whether the last scrape read the database")
        try:
            families = list(self._from_database())
        except SQLAlchemyError:
            log.exception("metrics could not read the database")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _from_database(self) -> Iterator[Metric]:
        with self.services.session_factory() as session:
            by_status = count_runs_by_status(session)
            runs = GaugeMetricFamily(
                "tinysync_runs", "Runs in the database, by status", labels=["status"]
            )
            for status in RunStatus:
                runs.add_metric([status.value], by_status.get(status.value, 0))
            yield runs

            records = GaugeMetricFamily(
                "tinysync_records",
                "Records stored (those Tiny deleted left out), by the module that syncs them",
                labels=["module"],
            )
            for module, (model, paid) in MODULE_RECORDS.items():
                stmt = select(func.count()).select_from(model).where(model.deletedAt.is_(None))
                if paid is True:
                    stmt = stmt.where(model.situacao == PAID)
                elif paid is False:
                    stmt = stmt.where(model.situacao.is_distinct_from(PAID))
                records.add_metric([module], session.scalar(stmt) or 0)
            yield records

            calls = session.scalar(select(func.coalesce(func.sum(SyncRun.tinyCalls), 0)))
            yield GaugeMetricFamily(
                "tinysync_run_tiny_calls",
                "Tiny API calls recorded by all runs, whichever process made them",
                value=calls or 0,
            )

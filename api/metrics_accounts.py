"""Per-account figures of Tiny pacing for `/metrics`: calls, refusals, pace and wait.

They come from the rate limiter, which every process that calls Tiny shares: with Redis the
counters live beside each account's pacing keys (one script call per Tiny call already writes
them), so any API process reports every worker's calls; without Redis the limiter is this
process's own, as are the steps it runs. Accounts are named by the first 8 hex of their key,
never by a company's name unless METRICS_ACCOUNT_LABEL=name.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from core.models import Company
from core.services import Services

log = logging.getLogger(__name__)

#: The Tiny codes that refuse a call for the account's limits: per minute, concurrency.
REFUSAL_CODES = (6, 11)


def account_label(key: str) -> str:
    """The short id of an account in metrics and logs: 8 hex of its (keyed) token hash."""
    return key[:8]


class AccountCollector(Collector):
    """Reads the companies' accounts from the database and their figures from the limiter."""

    def __init__(self, services: Services):
        self.services = services

    def describe(self) -> list[Metric]:
        return []  # no collect() (database and Redis reads) at registration

    def collect(self) -> Iterator[Metric]:
        try:
            names = self._accounts()
            stats = self.services.limiter.stats(names)
        except (SQLAlchemyError, redis.RedisError):
            log.exception("per-account metrics could not be read")
            return
        by_name = self.services.settings.metrics_account_label == "name"
        calls = CounterMetricFamily(
            "tinysync_account_tiny_calls",
            "Tiny calls made for the account, by every process sharing the limiter",
            labels=["account"],
        )
        refusals = CounterMetricFamily(
            "tinysync_account_tiny_refusals",
            "Answers refusing a call of the account for its limits, by Tiny code "
            "(6: calls a minute, 11: concurrent calls)",
            labels=["account", "code"],
        )
        waited = CounterMetricFamily(
            "tinysync_account_limiter_wait_seconds",
            "Time the account's calls waited for their turn in the rate limiter",
            labels=["account"],
        )
        pace = GaugeMetricFamily(
            "tinysync_account_pace_calls_per_minute",
            "The pace of the account's last call (its override, Tiny's limit less "
            "TINY_LIMIT_MARGIN, or TINY_MIN_INTERVAL)",
            labels=["account"],
        )
        announced = GaugeMetricFamily(
            "tinysync_account_announced_limit_calls_per_minute",
            "The limit Tiny last announced for the account (x-limit-api)",
            labels=["account"],
        )
        for key, figures in sorted(stats.items()):
            label = ", ".join(sorted(names[key])) if by_name else account_label(key)
            calls.add_metric([label], figures.calls)
            for code in REFUSAL_CODES:
                refusals.add_metric([label, str(code)], figures.refused.get(code, 0))
            waited.add_metric([label], figures.wait_seconds)
            if figures.pace_per_minute is not None:
                pace.add_metric([label], figures.pace_per_minute)
            if figures.announced_limit is not None:
                announced.add_metric([label], figures.announced_limit)
        yield from (calls, refusals, waited, pace, announced)

    def _accounts(self) -> dict[str, list[str]]:
        """Each account key with the names of its companies."""
        with self.services.session_factory() as session:
            rows = session.execute(select(Company.tinyAccountKey, Company.name)).all()
        names: dict[str, list[str]] = {}
        for key, name in rows:
            names.setdefault(key, []).append(name)
        return names

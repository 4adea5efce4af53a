"""Soak: the whole system under faults, bad input and load at the same time.

    .venv/bin/python -m bench.soak                # the full soak: 4 minutes of load
    .venv/bin/python -m bench.soak --minutes 15   # longer
    .venv/bin/python -m bench.soak --short        # the CI version: about 2 minutes in all

It starts the real parts on 127.0.0.1 only, each on a free port: a private PostgreSQL
cluster and a private Redis (the soak restarts both; the machine's shared servers are never
touched), the sandbox (`python -m sandbox`), the API under gunicorn, worker processes
(`tinysync worker`) and `tinysync beat`. Then, for the time asked:

- one driver per company creates, starts and watches runs through the API (the last two
  months and incremental, in turn), cancelling some mid-run; beat and the cron route start
  runs too. Several companies share one Tiny account (token);
- the sandbox injects faults into ~20% of Tiny calls (HTTP 5xx, code 35, timeouts, malformed
  bodies) on top of its per-account rate limit, which the workers must respect through the
  Redis limiter (no code 6);
- a worker is killed with SIGKILL at random moments (mostly one holding a run's lease) and
  restarted; Redis is restarted once and PostgreSQL once;
- pollers watch runs on the status route with ETags, and a battery of bad input and
  unauthenticated requests runs throughout.

Then it waits (bounded) for every run to finish and checks: runs by status and stuck, records
against the sandbox's truth for every DONE run's window, code-6 answers, 5xx answers, data
given to strangers, the status route's latency, kills survived, and the Tiny tokens in any
log, stored log line or response body. It prints a table, then one summary line last, and
exits 1 if any figure that must be zero is not.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import random
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import func, select, text, update

from bench.soak_check import (
    active_runs,
    check_records,
    count_log_lines,
    find_secrets,
    run_figures,
)
from bench.soak_hardening import Hardening, placeholder_deployments
from bench.soak_load import (
    Battery,
    Driver,
    Tally,
    api_client,
    cron_tick,
    dumps,
    poller_process,
)
from bench.soak_parts import (
    Deployment,
    PostgresCluster,
    RedisServer,
    Unavailable,
    sandbox_admin,
)
from core.db import make_engine
from core.migrate import upgrade
from core.models import SyncRun, UiSession, utcnow

#: Tiny calls per account: TINY_MIN_INTERVAL apart; the sandbox allows 10% more than that
#: pace (plus one) per window, so only a worker that ignored the shared limiter gets code 6.
MIN_INTERVAL_MS = 50
RATE_WINDOW_SECONDS = 10.0
RATE_LIMIT_CALLS = math.ceil(1.1 * RATE_WINDOW_SECONDS * 1000 / MIN_INTERVAL_MS) + 1
#: ~20% of calls fail; what each fault is: see docs/reliability.md.
FAULTS = {"p_5xx": 0.06, "p_code35": 0.05, "p_timeout": 0.03, "p_malformed": 0.06}
TIMEOUT_SECONDS = 2  # the sandbox's timeout fault holds the answer 3 s: a real client timeout
API_WORKERS = 4


@dataclass
class Plan:
    """The size of a soak."""

    load_seconds: float
    accounts: list[int]  # companies per Tiny account
    kills: int
    workers: int
    concurrency: int
    pollers: int
    poller_processes: int
    orders: int
    products: int
    bills: int
    lease_seconds: float
    reaper_seconds: float
    beat_minutes: float
    drain_seconds: float
    cancel_share: float = 0.15

    @property
    def companies(self) -> int:
        return sum(self.accounts)


FULL = Plan(
    load_seconds=240,
    accounts=[5, 4, 3, 2, 2, 1, 1, 1, 1, 1, 1],
    kills=12,
    workers=3,
    concurrency=2,
    pollers=100,
    poller_processes=4,
    orders=300,
    products=25,
    bills=60,
    lease_seconds=20,
    reaper_seconds=5,
    beat_minutes=1.0,
    drain_seconds=300,
)
SHORT = Plan(
    load_seconds=65,
    accounts=[3, 2, 1],
    kills=3,
    workers=2,
    concurrency=2,
    pollers=30,
    poller_processes=2,
    orders=120,
    products=10,
    bills=30,
    lease_seconds=10,
    reaper_seconds=2,
    beat_minutes=0.5,
    drain_seconds=180,
)


@dataclass
class Event:
    """Something the chaos did, when (seconds into the load) and to what."""

    at: float
    what: str
    detail: str = ""
    runs_in_flight: list[str] = field(default_factory=list)


def say(message: str) -> None:
    """One line of progress on stderr (the table and the summary go to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- chaos ----------------------------------------------------------------------------------
class Chaos(threading.Thread):
    """Kills workers, restarts Redis and PostgreSQL, and ticks the cron route, on a plan."""

    def __init__(self, soak: Soak, schedule: list[tuple[float, str]], started: float):
        super().__init__(name="chaos", daemon=True)
        self.soak = soak
        self.schedule = schedule
        self.started = started
        self.events: list[Event] = []
        self.errors: list[str] = []
        #: When the database was declared down, as time.monotonic() (begin, end) pairs.
        self.outages: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        for at, action in self.schedule:
            if self.stop.wait(max(0.0, self.started + at - time.monotonic())):
                return
            try:
                getattr(self, f"_{action}")()
            except Exception as exc:  # reported in the table; the soak goes on
                self.errors.append(f"{action}: {type(exc).__name__}: {exc}")
                say(f"chaos: {action} failed: {exc}")

    def _now(self) -> float:
        return time.monotonic() - self.started

    def _kill(self) -> None:
        soak = self.soak
        holders = soak.lease_holders()
        busy = [name for name in soak.worker_names if holders.get(name)]
        victim = (
            soak.rng.choice(busy)
            if busy and soak.rng.random() < 0.8
            else soak.rng.choice(soak.worker_names)
        )
        in_flight = soak.safe(lambda: active_runs(soak.engine), default=[])
        at = self._now()
        soak.deployment.kill(victim)
        held = len(holders.get(victim, []))
        detail = f"{victim} ({f'holding {held} lease(s)' if held else 'idle'})"
        self.events.append(Event(at, "SIGKILL worker", detail, in_flight))
        say(f"chaos: SIGKILL {detail}; restarting it")
        soak.deployment.worker(victim, soak.plan.concurrency)

    def _redis(self) -> None:
        at = self._now()
        say("chaos: restarting Redis (no persistence: queues and unacked messages are lost)")
        self.soak.redis.restart(down_seconds=1.0)
        self.events.append(Event(at, "Redis restart", f"down {self._now() - at:.1f}s"))

    def _postgres(self) -> None:
        at = self._now()
        say("chaos: restarting PostgreSQL (pg_ctl restart -m fast)")
        began = time.monotonic()
        try:
            self.soak.pg.restart(down_seconds=1.0)  # returns once the server accepts again
        finally:
            self.outages.append((began, time.monotonic()))
        self.events.append(Event(at, "PostgreSQL restart", f"down {self._now() - at:.1f}s"))

    def _cron(self) -> None:
        answer = cron_tick(self.soak.api, self.soak.cron_secret, self.soak.tally)
        created = len(answer.get("created", []))
        self.events.append(Event(self._now(), "POST /api/cron/sync", f"{created} run(s)"))


def chaos_schedule(plan: Plan, rng: random.Random) -> list[tuple[float, str]]:
    """Kills at random moments spread over the load; Redis at 30%, PostgreSQL at 60%."""
    load = plan.load_seconds
    fixed = [(0.30 * load, "redis"), (0.60 * load, "postgres")]
    fixed += [(0.45 * load, "cron"), (0.80 * load, "cron")]
    start, end = 0.10 * load, 0.85 * load
    slot = (end - start) / max(1, plan.kills)
    kills = []
    for i in range(plan.kills):
        at = start + (i + rng.uniform(0.1, 0.9)) * slot
        for restart_at, _ in fixed[:2]:
            if abs(at - restart_at) < 3:  # keep each restart's effects apart from a kill's
                at = restart_at + 4
        kills.append((at, "kill"))
    return sorted(fixed + kills)


# -- the soak -------------------------------------------------------------------------------
class Soak:
    """One soak: the deployment, the clients, the chaos, and the verdict."""

    def __init__(self, plan: Plan, seed: int, keep: bool):
        self.plan = plan
        self.rng = random.Random(seed)  # the chaos's: its schedule and its victims
        self.battery_rng = random.Random(seed + 1)
        self.seed = seed
        self.keep = keep
        self.workdir = Path(tempfile.mkdtemp(prefix="tinysync-soak-"))
        self.admin_token = "soak-admin-" + secrets.token_hex(12)
        self.cron_secret = "soak-cron-" + secrets.token_hex(12)
        self.metrics_token = "soak-metrics-" + secrets.token_hex(12)
        self.tokens = [
            f"soak-tiny-{i:02d}-{secrets.token_hex(10)}" for i in range(len(plan.accounts))
        ]
        self.tally = Tally(self.tokens)
        self.company_tokens: dict[str, str] = {}
        self.worker_names = [f"worker{i + 1}" for i in range(plan.workers)]
        # Set by setup(), in this order; close() stops whichever exist.
        self.pg: PostgresCluster = None  # type: ignore[assignment]
        self.redis: RedisServer = None  # type: ignore[assignment]
        self.deployment: Deployment = None  # type: ignore[assignment]
        self.engine: Any = None
        self.api = ""
        self.announced: set[int] = set()

    # -- helpers ---------------------------------------------------------------------------
    def safe(self, read: Any, default: Any) -> Any:
        """A read of the database that the PostgreSQL restart may interrupt."""
        try:
            return read()
        except Exception:
            return default

    def lease_holders(self) -> dict[str, list[str]]:
        """Worker name -> runs whose lease one of its pool processes holds now."""

        def read() -> list[Any]:
            with self.engine.connect() as conn:
                return conn.execute(
                    select(SyncRun.id, SyncRun.leaseOwner).where(
                        SyncRun.status == "RUNNING", SyncRun.leaseOwner.is_not(None)
                    )
                ).all()

        owners = self.safe(read, default=[])
        holders: dict[str, list[str]] = {}
        for name in self.worker_names:
            proc = self.deployment.procs.get(name)
            if proc is None or proc.process.poll() is not None:
                continue
            try:
                pids = {proc.process.pid} | {
                    child.pid for child in psutil.Process(proc.process.pid).children(True)
                }
            except psutil.Error:
                continue
            holders[name] = [
                run_id for run_id, owner in owners if int(owner.rsplit(":", 2)[1]) in pids
            ]
        return holders

    def admin(self) -> httpx.Client:
        """An HTTP client of the API with the admin token."""
        return api_client(self.api, {"Authorization": f"Bearer {self.admin_token}"})

    # -- setup -----------------------------------------------------------------------------
    def setup(self) -> None:
        """Start every part and add the companies; faults go on last."""
        plan = self.plan
        say(f"workdir {self.workdir}")
        self.pg = PostgresCluster()
        self.pg.init().start()
        admin = make_engine(self.pg.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text('CREATE DATABASE "tinysync"'))
        admin.dispose()
        url = self.pg.url("tinysync")
        self.engine = make_engine(url, pool_size=4)
        upgrade(self.engine)
        say(f"PostgreSQL {self.pg.port} (private cluster in {self.pg.root})")
        self.redis = RedisServer(self.workdir).start()
        say(f"Redis {self.redis.port} (private)")
        env = {
            "DATABASE_URL": url,
            "CELERY_BROKER_URL": self.redis.url(0),
            "SECRET_KEY": "soak-" + secrets.token_hex(16),
            "SYNC_ADMIN_TOKEN": self.admin_token,
            "CRON_SECRET": self.cron_secret,
            "METRICS_TOKEN": self.metrics_token,
            # One proxy hop is trusted, so the guessers (`X-Forwarded-For`) each have an
            # address of their own, and the default throttle stops them, not the drivers.
            "TRUSTED_PROXIES": "1",
            "AUTH_FAILURE_LIMIT": "10 per minute",
            "TINY_MIN_INTERVAL": str(MIN_INTERVAL_MS),
            "TINY_CONCURRENCY": "1",
            "TINY_MAX_RETRIES": "6",
            "TINY_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
            "TINY_RETRY_BASE_SECONDS": "0.2",
            "TINY_RATE_LIMIT_BACKOFF_SECONDS": str(RATE_WINDOW_SECONDS),
            "TINY_MAX_ENRICH_PER_RUN": "10000",
            "SYNC_LEASE_SECONDS": str(plan.lease_seconds),
            "SYNC_REAPER_INTERVAL_SECONDS": str(plan.reaper_seconds),
            "SYNC_BEAT_INTERVAL_MINUTES": str(plan.beat_minutes),
        }
        self.deployment = Deployment(env, self.workdir)
        sandbox = self.deployment.sandbox()
        self.deployment.env["TINY_API_URL"] = f"{sandbox}/api2"
        spec = {
            "orders": plan.orders,
            "days": 90,
            "products": plan.products,
            "payables": plan.bills,
            "receivables": plan.bills,
            "rate_limit_calls": RATE_LIMIT_CALLS,
            "rate_limit_window_seconds": RATE_WINDOW_SECONDS,
            "max_concurrent": 3,
        }
        for token in self.tokens:
            sandbox_admin(sandbox, "accounts", {"token": token, **spec})
        say(
            f"sandbox {sandbox}: {len(self.tokens)} accounts, {RATE_LIMIT_CALLS} calls per "
            f"{RATE_WINDOW_SECONDS:g} s each"
        )
        self.placeholders_refused, self.placeholder_failures = placeholder_deployments(
            self.deployment.env, self.workdir
        )
        say(f"deployments with .env.example's placeholders refused: {self.placeholders_refused}")
        self.api = self.deployment.api(workers=API_WORKERS)
        say(f"API {self.api} (gunicorn {API_WORKERS} workers x 8 threads)")
        with self.admin() as client:
            n = 0
            for account, companies in enumerate(plan.accounts):
                for _ in range(companies):
                    n += 1
                    answer = client.post(
                        "/api/admin/companies",
                        json={"name": f"Soak {n:02d} Ltda", "token": self.tokens[account]},
                    )
                    answer.raise_for_status()
                    self.tally.record("companies", answer)
                    self.company_tokens[answer.json()["company"]["id"]] = self.tokens[account]
        for name in self.worker_names:
            self.deployment.worker(name, plan.concurrency)
        self.deployment.beat()
        say(
            f"{plan.workers} workers x {plan.concurrency}, beat; {plan.companies} companies "
            f"on {len(self.tokens)} Tiny accounts"
        )
        sandbox_admin(sandbox, "faults", {**FAULTS, "seed": self.seed})
        sandbox_admin(sandbox, "reset_counters", {})

    # -- load ------------------------------------------------------------------------------
    def load(self) -> tuple[list[Driver], Chaos, dict[str, Any]]:
        """Drivers, pollers, battery and chaos for the load time; returns what they saw."""
        plan = self.plan
        stop = threading.Event()
        context = multiprocessing.get_context("spawn")
        poll_stop = context.Event()
        results = context.Queue()
        per = [plan.pollers // plan.poller_processes] * plan.poller_processes
        for i in range(plan.pollers % plan.poller_processes):
            per[i] += 1
        pollers = [
            context.Process(
                target=poller_process,
                args=(
                    self.api,
                    self.admin_token,
                    self.tokens,
                    n,
                    poll_stop,
                    results,
                    self.seed + i,
                ),
                daemon=True,
            )
            for i, n in enumerate(per)
        ]
        for process in pollers:
            process.start()
        drivers = [
            Driver(
                company_id,
                self.api,
                self.admin_token,
                self.tally,
                stop,
                self.seed * 100 + i,
                plan.cancel_share,
            )
            for i, company_id in enumerate(self.company_tokens)
        ]
        for driver in drivers:
            driver.start()
        battery = Battery(
            self.api,
            self.admin_token,
            self.cron_secret,
            self.tally,
            stop,
            self.known,
            self.seed,
            pause_seconds=0.2,
        )
        battery.start()
        self.hardening = Hardening(
            self.api,
            self.admin_token,
            self.metrics_token,
            self.tally,
            stop,
            self.known,
            self.age_session,
            race_token=self.tokens[0],
        )
        self.hardening.start()
        started = time.monotonic()
        chaos = Chaos(self, chaos_schedule(plan, self.rng), started)
        chaos.start()
        say(
            f"load: {plan.load_seconds:g} s, {plan.pollers} pollers in "
            f"{plan.poller_processes} processes, {plan.kills} kills planned"
        )
        while (left := started + plan.load_seconds - time.monotonic()) > 0:
            time.sleep(min(15.0, left))
            self.progress(f"load {time.monotonic() - started:5.0f}s")
        # Whatever the chaos has left (a slow worker start delays it) happens under load too.
        chaos.join(timeout=180)
        chaos.stop.set()
        stop.set()
        poll_stop.set()
        polled: dict[str, Any] = {"latencies": [], "codes": Counter()}
        for _ in pollers:
            figures = results.get(timeout=120)
            self.tally.merge(figures)
            polled["latencies"] += figures["latencies"]
            polled["codes"].update({int(k): v for k, v in figures["codes"].items()})
        for process in pollers:
            process.join(timeout=30)
        for thread in [*drivers, battery, self.hardening]:
            thread.join(timeout=90)
        # Beat and cron must start no new run now, so the runs in flight can drain.
        with self.admin() as client:
            for company_id in self.company_tokens:
                answer = client.post(f"/api/admin/companies/{company_id}/deactivate")
                self.tally.record("companies", answer)
        return drivers, chaos, polled

    def known(self) -> tuple[str, str, set[str]]:
        """A real company and run for the battery, and every id a stranger must not see."""

        def read() -> list[str]:
            with self.engine.connect() as conn:
                return list(conn.scalars(select(SyncRun.id).order_by(SyncRun.createdAt.desc())))

        runs = self.safe(read, default=[])
        company = self.battery_rng.choice(list(self.company_tokens))
        run = runs[0] if runs else "00000000-0000-4000-8000-000000000000"
        return company, run, set(self.company_tokens) | set(runs)

    def age_session(self, row_id: str, how: str) -> None:
        """Make a UI session expired: idle past SESSION_IDLE_MINUTES, or past SESSION_MAX_HOURS."""
        long_ago = utcnow() - timedelta(days=2)
        values = {"lastSeenAt": long_ago} if how == "idle" else {"createdAt": long_ago}
        with self.engine.begin() as conn:
            conn.execute(update(UiSession).where(UiSession.id == row_id).values(**values))

    def progress(self, label: str) -> None:
        """One line: runs by status, Tiny calls and faults so far."""

        def read() -> dict[str, int]:
            with self.engine.connect() as conn:
                rows = conn.execute(select(SyncRun.status, func.count()).group_by(SyncRun.status))
                return {status: n for status, n in rows}

        for pid, what in self.deployment.check_alive().items():
            if pid not in self.announced:
                self.announced.add(pid)
                say(f"{what}: it died on its own")
        counts = self.safe(read, default={})
        tiny = self.safe(lambda: sandbox_admin(self.deployment.sandbox_url, "counters"), {})
        say(
            f"{label}: runs {dict(sorted(counts.items()))}; Tiny calls {tiny.get('calls', '?')}, "
            f"code 6: {tiny.get('by_code', {}).get('6', 0)}"
        )

    def drain(self) -> float:
        """Wait until no run is QUEUED or RUNNING, or the drain time is up; returns seconds."""
        began = time.monotonic()
        deadline = began + self.plan.drain_seconds
        last = 0.0
        while time.monotonic() < deadline:
            active = self.safe(lambda: active_runs(self.engine), default=None)
            if active == []:
                break
            if time.monotonic() - last > 15:
                self.progress(f"drain {time.monotonic() - began:4.0f}s, {len(active or [])} active")
                last = time.monotonic()
            time.sleep(1.0)
        return time.monotonic() - began

    # -- verdict ---------------------------------------------------------------------------
    def verdict(
        self, drivers: list[Driver], chaos: Chaos, polled: dict[str, Any], drain_seconds: float
    ) -> int:
        """Check everything, print the table and the summary line; returns the exit code."""
        plan = self.plan
        self.tally.settle(chaos.outages)
        runs = run_figures(self.engine, plan.lease_seconds)
        tokens = dict(self.company_tokens)
        if self.hardening.race_company:  # its runs are canceled, but were one to end DONE
            tokens[self.hardening.race_company] = self.tokens[0]
        records = check_records(self.engine, self.deployment.sandbox_url, tokens, runs)
        tiny = sandbox_admin(self.deployment.sandbox_url, "counters")
        code6 = int(tiny["by_code"].get("6", 0))
        code11 = int(tiny["by_code"].get("11", 0))
        faults = sum(tiny["faults"].values())
        # Every log of ours and PostgreSQL's; not the sandbox's, which plays Tiny itself.
        logs = [p for p in self.deployment.log_files() if p.name != "sandbox.log"]
        leaks = find_secrets(self.engine, [*logs, self.pg.log_path], self.tokens)
        leaks += [f"response: {leak}" for leak in self.tally.leaks]
        died = list(self.deployment.check_alive().values())
        # A gunicorn worker that died drops its connections; the master boots another.
        api_log = self.deployment.procs["api"].output
        api_reboots = max(0, api_log.count("Booting worker with pid") - API_WORKERS)
        log_lines = count_log_lines(self.engine)
        kills = [e for e in chaos.events if e.what == "SIGKILL worker"]
        still_active = set(runs.stuck) | set(runs.unfinished)
        survived = [k for k in kills if not still_active & set(k.runs_in_flight)]
        latencies = sorted(polled["latencies"])
        codes: Counter[int] = polled["codes"]

        def pct(q: float) -> float:
            if not latencies:
                return float("nan")
            return latencies[min(len(latencies) - 1, int(q / 100 * len(latencies)))]

        api_requests = sum(self.tally.requests.values())
        no_answer = sum(self.tally.transport_errors.values())
        created = sum(len(d.created) for d in drivers)
        cancels = self.tally.cancels
        restarts = Counter(e.what for e in chaos.events)
        triggers = ", ".join(f"{k} {v}" for k, v in sorted(runs.by_trigger.items()))
        rows: list[tuple[str, str, str]] = [
            ("runs", f"{runs.total} (started by {triggers})", ""),
            (
                "  DONE / FAILED / CANCELED",
                " / ".join(str(runs.by_status.get(s, 0)) for s in ("DONE", "FAILED", "CANCELED")),
                "",
            ),
            (
                "  cancels asked mid-run (answered 200 / 409)",
                f"{cancels['asked']} ({cancels['200']} / {cancels['409']})",
                "",
            ),
            ("  runs stuck (RUNNING past their lease)", str(len(runs.stuck)), "0"),
            ("  runs still running at the end (lease live)", str(len(runs.unfinished)), ""),
            ("  runs resumed by another executor", str(runs.resumed), ""),
            ("  runs sent again by the reaper", str(runs.reaped), ""),
            (
                "records checked against the sandbox truth",
                f"{records.checked:,} in {records.windows} DONE windows",
                "",
            ),
            ("  records lost", str(records.lost), "0"),
            ("  records duplicated", str(records.duplicated), "0"),
            ("  records differing from the truth", str(records.differing), "0"),
            ("Tiny calls (sandbox)", f"{tiny['calls']:,}", ""),
            (
                "  faults injected (5xx / 35 / timeout / malformed)",
                f"{faults:,} ({100 * faults / max(1, tiny['calls']):.1f}%: "
                + " / ".join(
                    str(tiny["faults"].get(k, 0)) for k in ("5xx", "code35", "timeout", "malformed")
                )
                + ")",
                "",
            ),
            ("  code 6 answers (rate limit)", str(code6), "0"),
            ("  code 11 answers (concurrency)", str(code11), ""),
            ("API requests", f"{api_requests:,}", ""),
            ("  5xx answers", str(self.tally.server_error_count), "0"),
            (
                "  503 + Retry-After while PostgreSQL restarted",
                str(self.tally.outage_answers),
                "",
            ),
            ("  requests without an answer", str(no_answer), "0"),
            (
                "  GETs sent again (connection closed before an answer)",
                str(self.tally.retried),
                "",
            ),
            ("  API (gunicorn) workers that died and were booted again", str(api_reboots), "0"),
            (
                "  bad input not refused with a 4xx",
                f"{len(self.tally.bad_input_not_refused)} of {self.tally.bad_input:,}",
                "0",
            ),
            (
                "  unauthenticated requests that got data",
                f"{len(self.tally.unauthenticated_got_data)} of {self.tally.unauthenticated:,}",
                "0",
            ),
            ("hardened doors tried (bench/soak_hardening.py)", "", ""),
            *[(f"  {case}", f"{n:,}", "") for case, n in self.hardening.counts()],
            (
                "  drivers' cancels sent with a step beside them",
                str(cancels["raced by a step"]),
                "",
            ),
            (
                "  deployments started with placeholder secrets, refused",
                str(self.placeholders_refused),
                "",
            ),
            ("  hardened doors that did not hold", str(len(self.hardening.failures)), "0"),
            (
                "  guessing rounds without a 429 (bearer / sign-in)",
                f"{self.hardening.rounds_without_429['bearer']} / "
                f"{self.hardening.rounds_without_429['sign-in']}",
                "",
            ),
            (
                "status polls (200 / 304)",
                f"{sum(codes.values()):,} ({codes.get(200, 0):,} / {codes.get(304, 0):,})",
                "",
            ),
            ("  status latency p50 / p99", f"{pct(50):.0f} ms / {pct(99):.0f} ms", ""),
            ("worker kills survived", f"{len(survived)} of {len(kills)}", f"{len(kills)}"),
            ("processes that died on their own", str(len(died)), "0"),
            (
                "Redis / PostgreSQL restarts",
                f"{restarts['Redis restart']} / {restarts['PostgreSQL restart']}",
                "1 / 1",
            ),
            ("Tiny token found (logs, SyncRunLog, responses)", str(len(leaks)), "0"),
        ]
        width = max(len(r[0]) for r in rows)
        vwidth = max(len(r[1]) for r in rows)
        print()
        print(
            f"tinysync soak: {plan.load_seconds / 60:g} min of load, {plan.companies} companies "
            f"on {len(self.tokens)} Tiny accounts, {plan.workers} workers x {plan.concurrency}, "
            f"{plan.pollers} pollers; drained in {drain_seconds:.0f} s"
        )
        print(f"| {'figure':<{width}} | {'value':>{vwidth}} | must be |")
        print(f"|{'-' * (width + 2)}|{'-' * (vwidth + 2)}|---------|")
        for name, value, must in rows:
            print(f"| {name:<{width}} | {value:>{vwidth}} | {must:<7} |")
        problems = {
            "stuck runs": len(runs.stuck),
            "lost records": records.lost,
            "duplicated records": records.duplicated,
            "differing records": records.differing,
            "code-6 answers": code6,
            "API 5xx": self.tally.server_error_count,
            "API requests without an answer": no_answer,
            "API workers booted again": api_reboots,
            "bad input not refused": len(self.tally.bad_input_not_refused),
            "unauthenticated data": len(self.tally.unauthenticated_got_data),
            "hardening failures": len(self.hardening.failures) + len(self.placeholder_failures),
            "throttle never answered 429": int(self.hardening.cases["throttled 429s"] == 0),
            "kills not survived": len(kills) - len(survived),
            "processes that died": len(died),
            "token leaks": len(leaks),
            "chaos failures": len(chaos.errors),
            "Redis restarts missing": int(restarts["Redis restart"] != 1),
            "PostgreSQL restarts missing": int(restarts["PostgreSQL restart"] != 1),
            "kills missing": int(len(kills) < plan.kills),
        }
        details = {
            "events": [e.__dict__ for e in chaos.events],
            "chaos errors": chaos.errors,
            "stuck": runs.stuck,
            "unfinished": runs.unfinished,
            "record samples": records.samples,
            "5xx samples": self.tally.server_errors,
            "no answer samples": self.tally.transport_samples,
            "sent again samples": self.tally.retried_samples,
            "bad input not refused": self.tally.bad_input_not_refused,
            "unauthenticated got data": self.tally.unauthenticated_got_data,
            "hardening failures": self.hardening.failures + self.placeholder_failures,
            "hardening cases": dict(self.hardening.cases),
            "leaks": leaks,
            "died": died,
            "requests by kind": dict(self.tally.requests),
            "sandbox counters": tiny,
            "log lines scanned": log_lines,
            "adopted runs": sum(len(d.adopted) for d in drivers),
            "created by drivers": created,
        }
        (self.workdir / "soak-report.json").write_text(dumps(details))
        failed = {k: v for k, v in problems.items() if v}
        if failed:
            print()
            for key in (
                "events",
                "chaos errors",
                "stuck",
                "record samples",
                "5xx samples",
                "no answer samples",
                "sent again samples",
                "bad input not refused",
                "unauthenticated got data",
                "hardening failures",
                "leaks",
                "died",
            ):
                if details[key] and (key != "events"):
                    print(f"{key}:", file=sys.stdout)
                    for line in details[key][:10]:
                        print(f"  {line}")
        statuses = ", ".join(
            f"{s} {runs.by_status.get(s, 0)}" for s in ("DONE", "FAILED", "CANCELED")
        )
        summary = (
            f"soak {'FAILED' if failed else 'passed'}: {runs.total} runs ({statuses}), "
            f"stuck {len(runs.stuck)}, lost {records.lost}, duplicated {records.duplicated}, "
            f"differing {records.differing}, code-6 {code6}, API 5xx "
            f"{self.tally.server_error_count}, unauthenticated data "
            f"{len(self.tally.unauthenticated_got_data)}, status p99 {pct(99):.0f} ms, "
            f"worker kills survived {len(survived)}/{len(kills)}, processes died on their own "
            f"{len(died)}, token leaks {len(leaks)}; hardened doors: {self.hardening.summary()}, "
            f"placeholder deployments refused {self.placeholders_refused}, "
            f"hardening failures {len(self.hardening.failures) + len(self.placeholder_failures)}"
        )
        if failed:
            summary += " — not zero: " + ", ".join(f"{k} {v}" for k, v in failed.items())
        print(summary, flush=True)
        return 1 if failed else 0

    # -- teardown --------------------------------------------------------------------------
    def close(self, failed: bool) -> None:
        """Stop every process; keep the folder of a failed soak (or with --keep)."""
        if self.deployment is not None:
            self.deployment.close()
        if self.redis is not None:
            self.redis.stop()
        if self.engine is not None:
            self.engine.dispose()
        if self.pg is not None:
            if (failed or self.keep) and self.pg.log_path.exists():
                shutil.copy(self.pg.log_path, self.workdir / "postgres.log")
            self.pg.remove()
        if failed or self.keep:
            say(f"logs and soak-report.json kept in {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


def parse_args(argv: list[str] | None) -> tuple[Plan, int, bool]:
    """The plan from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="the CI version (about 2 minutes)")
    parser.add_argument("--minutes", type=float, help="minutes of load (default 4; short ~1)")
    parser.add_argument("--kills", type=int, help="worker kills (default 12; short 3)")
    parser.add_argument("--pollers", type=int, help="status pollers (default 100; short 30)")
    parser.add_argument("--workers", type=int, help="worker processes (default 3; short 2)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--keep", action="store_true", help="keep the logs even if it passes")
    args = parser.parse_args(argv)
    plan = SHORT if args.short else FULL
    overrides: dict[str, Any] = {}
    if args.minutes is not None:
        overrides["load_seconds"] = args.minutes * 60
        overrides["drain_seconds"] = max(plan.drain_seconds, args.minutes * 30)
    for name in ("kills", "pollers", "workers"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if overrides:
        plan = Plan(**{**plan.__dict__, **overrides})
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    return plan, seed, args.keep


def main(argv: list[str] | None = None) -> int:
    """Run one soak; returns the exit code."""
    plan, seed, keep = parse_args(argv)
    say(f"seed {seed}")
    soak = Soak(plan, seed, keep)
    code = 2
    try:
        try:
            soak.setup()
        except (Unavailable, FileNotFoundError) as exc:
            print(f"soak cannot run here: {exc}", file=sys.stderr)
            code = 3
            return code
        drivers, chaos, polled = soak.load()
        drained = soak.drain()
        code = soak.verdict(drivers, chaos, polled, drained)
    finally:
        soak.close(failed=code != 0)
    return code


if __name__ == "__main__":
    sys.exit(main())

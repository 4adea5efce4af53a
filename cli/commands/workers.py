"""`tinysync worker`, `beat` and `flower`: the Celery processes (they need a broker)."""

from __future__ import annotations

import logging

import typer

from cli.console import fail, load_settings
from cli.wiring import celery_app
from core.settings import Settings, secret_problems


def _broker_settings(what: str) -> Settings:
    settings = load_settings()
    if not settings.celery_broker_url:
        fail(f"CELERY_BROKER_URL is not set: {what} needs a broker (e.g. redis://...)")
    problems = secret_problems(settings)
    if problems:
        fail(problems[0])
    return settings


#: The pools `tinysync worker` offers: threads (the default, see docs/worker.md) or processes.
POOLS = ("threads", "prefork")


def worker(
    concurrency: int | None = typer.Option(
        None, help="Module tasks at once: threads (or processes). Default: WORKER_CONCURRENCY."
    ),
    pool: str = typer.Option("threads", help="threads (one process, many accounts) or prefork."),
    loglevel: str = typer.Option("info"),
    name: str = typer.Option("tinysync@%h", help="Node name (unique per worker on a host)."),
) -> None:
    """A Celery worker: runs the module tasks, the reaper and the periodic syncs."""
    settings = _broker_settings("the worker")
    if pool not in POOLS:
        fail(f"--pool must be one of {', '.join(POOLS)}, not {pool!r}")
    if concurrency is not None:
        if concurrency < 1:
            fail("--concurrency must be at least 1")
        settings = settings.with_(worker_concurrency=concurrency)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per Tiny call
    # No mingle or gossip: tinysync uses neither revokes nor worker-to-worker state, and
    # both cost a start-up delay and steady Redis traffic.
    celery_app(settings).worker_main(
        [
            "worker",
            f"--loglevel={loglevel}",
            f"--pool={pool}",
            f"--concurrency={settings.worker_concurrency}",
            f"--hostname={name}",
            "--without-mingle",
            "--without-gossip",
        ]
    )


def beat(
    loglevel: str = typer.Option("info"),
    schedule: str = typer.Option("celerybeat-schedule", help="Where beat keeps its last ticks."),
) -> None:
    """Celery beat: periodic incremental syncs and the reaper of stalled runs."""
    settings = _broker_settings("beat")
    celery_app(settings).start(["beat", f"--loglevel={loglevel}", f"--schedule={schedule}"])


def flower(
    port: int = typer.Option(5555, help="Port."), address: str = typer.Option("127.0.0.1")
) -> None:
    """Flower, the web monitor of the workers and their tasks (see docs/worker.md)."""
    settings = _broker_settings("Flower")
    celery_app(settings).start(["flower", f"--port={port}", f"--address={address}"])

"""The Celery app's factory and configuration, without a broker."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from types import SimpleNamespace

from sqlalchemy import create_engine

from core.modules import MODULE_KEYS
from core.settings import Settings
from tests.support.processes import ROOT
from worker import celery_init_app
from worker.app import TinySyncCelery, beat_schedule
from worker.tasks import FINALIZE_TASK, MODULE_TASK, remaining_modules, run_chain

SETTINGS = Settings(
    celery_broker_url="redis://127.0.0.1:1/0",
    sync_module_soft_time_limit_seconds=600,
    sync_module_time_limit_seconds=700,
    sync_reaper_interval_seconds=15,
    sync_beat_interval_minutes=30,
)


def _app(settings: Settings = SETTINGS, factory=None) -> TinySyncCelery:
    return celery_init_app(settings, services_factory=factory or (lambda: None))


def test_importing_the_worker_and_the_cli_creates_no_app_and_no_engine():
    code = (
        "import celery._state, sqlalchemy, worker, tests.support.processes, cli\n"
        "assert not list(celery._state._apps), list(celery._state._apps)\n"
        "assert 'celery' not in vars(cli)\n"
        "import gc\n"
        "assert not [o for o in gc.get_objects() if isinstance(o, sqlalchemy.Engine)]\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_the_celery_settings_deliver_each_module_at_least_once_and_one_at_a_time():
    conf = _app().conf
    assert conf.broker_url == SETTINGS.celery_broker_url
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert (conf.task_soft_time_limit, conf.task_time_limit) == (600, 700)
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit
    assert conf.broker_connection_retry_on_startup is True
    assert conf.worker_send_task_events is True and conf.task_send_sent_event is True


def test_a_message_is_sent_again_for_longer_than_a_redis_restart_takes():
    policy = _app().conf.task_publish_retry_policy
    waits = [
        min(policy["interval_start"] + n * policy["interval_step"], policy["interval_max"])
        for n in range(policy["max_retries"])
    ]
    assert _app().conf.task_publish_retry is True
    assert sum(waits) >= 5  # a restart is a second or two; a slow one, a few


def test_the_app_has_the_six_tasks_named_for_flower():
    names = {name for name in _app().tasks if name.startswith("tinysync.")}
    assert names == {
        "tinysync.module",
        "tinysync.finalize",
        "tinysync.reap_stale_runs",
        "tinysync.sync_all_companies",
        "tinysync.prune",
        "tinysync.refresh_v3_tokens",
    }


def test_beat_runs_the_reaper_and_looks_for_due_companies_every_minute():
    schedule = beat_schedule(SETTINGS)
    assert schedule["reap-stale-runs"]["task"] == "tinysync.reap_stale_runs"
    assert schedule["reap-stale-runs"]["schedule"] == timedelta(seconds=15)
    assert schedule["sync-all-companies"]["task"] == "tinysync.sync_all_companies"
    # Each company is due once per SYNC_BEAT_INTERVAL_MINUTES, at its own slot in it.
    assert schedule["sync-all-companies"]["schedule"] == timedelta(seconds=60)
    assert _app().conf.beat_schedule == schedule
    short = beat_schedule(SETTINGS.with_(sync_beat_interval_minutes=0.5))
    assert short["sync-all-companies"]["schedule"] == timedelta(seconds=30)


def test_a_beat_interval_of_zero_turns_the_periodic_sync_off_but_not_the_reaper():
    schedule = beat_schedule(SETTINGS.with_(sync_beat_interval_minutes=0))
    assert set(schedule) == {"reap-stale-runs", "prune-old-rows", "refresh-v3-tokens"}


def test_a_run_is_a_chain_of_immutable_module_tasks_in_run_order_then_the_finaliser():
    run_id = "7f1c0e0e-0000-4000-8000-000000000001"
    tasks = run_chain(_app(), run_id, MODULE_KEYS[2:]).tasks
    assert [t.task for t in tasks] == [MODULE_TASK] * 4 + [FINALIZE_TASK]
    assert [tuple(t.args) for t in tasks[:-1]] == [(run_id, key) for key in MODULE_KEYS[2:]]
    assert tuple(tasks[-1].args) == (run_id,)
    assert all(t.immutable for t in tasks)


def test_the_remaining_modules_are_the_pending_and_running_ones_in_run_order():
    statuses = ["done", "failed", "running", "pending", "done", "pending"]
    progress = {"modules": {k: {"status": s} for k, s in zip(MODULE_KEYS, statuses, strict=True)}}
    assert remaining_modules(progress) == [MODULE_KEYS[2], MODULE_KEYS[3], MODULE_KEYS[5]]
    assert remaining_modules(None) == list(MODULE_KEYS)


def test_services_are_built_once_per_process_and_again_after_a_fork(monkeypatch):
    built: list[object] = []

    def factory() -> object:
        built.append(SimpleNamespace(engine=create_engine("sqlite://")))
        return built[-1]

    app = _app(factory=factory)
    assert app.services is app.services
    assert len(built) == 1
    monkeypatch.setattr("worker.app.os.getpid", lambda: -1)  # as in a forked pool process
    assert app.services is built[-1] and len(built) == 2


def test_cli_celery_is_the_app_for_celerys_own_command_line(monkeypatch):
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    import cli

    monkeypatch.delitem(vars(cli), "celery", raising=False)
    assert isinstance(cli.celery, TinySyncCelery)
    assert cli.celery is cli.celery
    monkeypatch.delitem(vars(cli), "celery")

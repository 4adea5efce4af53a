"""Driving a run from the terminal: a thread steps it to its end while the main thread draws a
live progress bar per module from the database; Ctrl-C cancels the run."""

from __future__ import annotations

import threading
import time
from typing import Any

from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

from api.run_views import run_status
from cli.console import console, err, styled
from core.modules import MODULE_KEYS
from core.runs import ModuleStatus, cancel_run
from core.services import Services
from core.steps import run_step

FINISHED = frozenset({ModuleStatus.DONE, ModuleStatus.FAILED, ModuleStatus.CANCELED})
REDRAW_SECONDS = 0.2


def drive(services: Services, run_id: str) -> dict[str, Any]:
    """Step the run to its end in a thread while drawing a live progress bar per module.

    Returns the run as `run_status` shows it; a failure of the stepping thread is raised here.
    """
    failure: list[BaseException] = []

    def loop() -> None:
        try:
            while True:
                result = run_step(
                    services.session_factory, services.settings, services.client, run_id
                )
                if not result.has_more:
                    return
        except BaseException as exc:  # raised in the main thread below
            failure.append(exc)

    stepper = threading.Thread(target=loop, name=f"run-{run_id[:8]}", daemon=True)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<28}"),
        BarColumn(bar_width=30),
        TextColumn("{task.completed:>6} processed"),
        TextColumn("{task.fields[state]}"),
        console=console,
    )
    tasks = {key: progress.add_task(key, total=None, state="pending") for key in MODULE_KEYS}
    stepper.start()
    try:
        with progress:
            while True:
                with services.session_factory() as session:
                    status = run_status(session, run_id, log_limit=1)
                for key, entry in status["progress"]["modules"].items():
                    state = entry.get("status", ModuleStatus.PENDING)
                    processed = int(entry.get("processed", 0))
                    progress.update(
                        tasks[key],
                        completed=processed,
                        total=max(processed, 1) if state in FINISHED else None,
                        state=styled(state),
                    )
                if not stepper.is_alive():
                    break
                time.sleep(REDRAW_SECONDS)
    except KeyboardInterrupt:
        with services.session_factory() as session:
            cancel_run(session, run_id, reason="canceled from the command line (Ctrl-C)")
        stepper.join(timeout=30)
        err.print("canceled")
    if failure:
        raise failure[0]
    with services.session_factory() as session:
        return run_status(session, run_id, log_limit=5)

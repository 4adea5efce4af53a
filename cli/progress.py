"""Driving a run from the terminal: a thread steps it to its end while the main thread draws a
live progress bar per module from the database; Ctrl-C cancels the run.

When Tiny asks for a pause (code 6: its minute window), a step returns at once with the wait;
the stepping thread then sleeps that long (on an event, so Ctrl-C still ends it at once) and
the display says "aguardando o limite do Tiny: 42 s" — no core spins through the pause.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, Task, TextColumn
from rich.text import Text

from api.run_views import run_status
from cli.console import console, err, styled
from core.modules import MODULE_KEYS
from core.runs import ModuleStatus, cancel_run, notifier
from core.services import Services
from core.steps import run_step
from core.wording import module_label

FINISHED = frozenset({ModuleStatus.DONE, ModuleStatus.FAILED, ModuleStatus.CANCELED})
REDRAW_SECONDS = 0.2
#: The longest the stepping thread sleeps at once in a pause (it re-checks the run after).
LONGEST_NAP_SECONDS = 5.0
#: Marks of a module that is not running: a pending module does not spin, nor a finished one.
STILL_MARKS = {
    ModuleStatus.PENDING: Text("○", style="dim"),
    ModuleStatus.DONE: Text("✓", style="green"),
    ModuleStatus.FAILED: Text("✕", style="red"),
    ModuleStatus.CANCELED: Text("⊘", style="magenta"),
}


class StateMark(ProgressColumn):
    """A spinner for the running module only; a still mark for every other state."""

    def __init__(self) -> None:
        super().__init__()
        self._spinner = SpinnerColumn()

    def render(self, task: Task) -> Any:
        """The task's mark."""
        mark = STILL_MARKS.get(task.fields.get("status", ModuleStatus.PENDING))
        return mark if mark is not None else self._spinner.render(task)


def waiting_line(seconds: float) -> str:
    """What the display says while Tiny's limit makes the run wait."""
    return f"aguardando o limite do Tiny: {math.ceil(seconds)} s"


class Stepper(threading.Thread):
    """Steps a run to its end; sleeps out the pauses Tiny imposes instead of asking again."""

    def __init__(self, services: Services, run_id: str):
        super().__init__(name=f"run-{run_id[:8]}", daemon=True)
        self.services = services
        self.run_id = run_id
        self.failure: BaseException | None = None
        self.stop = threading.Event()
        #: monotonic time until which the run waits for Tiny (0: not waiting).
        self.waiting_until = 0.0

    def run(self) -> None:
        """Step until the run has nothing more to do (or `stop` is set)."""
        services = self.services
        try:
            while not self.stop.is_set():
                result = run_step(
                    services.session_factory, services.settings, services.client, self.run_id
                )
                if not result.has_more:
                    return
                wait = result.retry_after_seconds
                if wait:
                    self.waiting_until = time.monotonic() + wait
                    self.stop.wait(min(wait, LONGEST_NAP_SECONDS))
                else:
                    self.waiting_until = 0.0
        except BaseException as exc:  # raised in the main thread by `drive`
            self.failure = exc

    def wait_left(self) -> float:
        """Seconds the run still waits for Tiny, 0 when it is not waiting."""
        return max(0.0, self.waiting_until - time.monotonic())


def drive(services: Services, run_id: str) -> dict[str, Any]:
    """Step the run to its end in a thread while drawing a live progress bar per module.

    Returns the run as `run_status` shows it; a failure of the stepping thread is raised here.
    """
    stepper = Stepper(services, run_id)
    progress = Progress(
        StateMark(),
        TextColumn("{task.description:<28}"),
        BarColumn(bar_width=30),
        TextColumn("{task.fields[processed]:>6} processed"),
        TextColumn("{task.fields[state]}"),
        console=console,
    )
    tasks = {
        key: progress.add_task(
            module_label(key), total=None, state="", status="pending", processed=0
        )
        for key in MODULE_KEYS
    }
    stepper.start()
    try:
        with progress:
            while True:
                with services.session_factory() as session:
                    status = run_status(session, run_id, log_limit=1)
                wait = stepper.wait_left()
                for key, entry in status["progress"]["modules"].items():
                    state = entry.get("status", ModuleStatus.PENDING)
                    processed = int(entry.get("processed", 0))
                    finished = state in FINISHED
                    shown = styled(state)
                    if wait and key == status.get("currentModule") and not finished:
                        shown = f"{shown} [yellow]{waiting_line(wait)}[/]"
                    listing = entry.get("listing") or {}
                    pages = int(listing.get("pages") or 0)
                    if finished:
                        completed, total = max(processed, 1), max(processed, 1)
                    elif state == ModuleStatus.RUNNING and pages:
                        # Tiny said how many pages the listing has: a bar with its total.
                        completed, total = min(int(listing.get("page") or 0), pages), pages
                    else:
                        completed, total = processed, None
                    progress.update(
                        tasks[key],
                        completed=completed,
                        total=total,
                        state=shown,
                        status=state,
                        processed=processed,
                    )
                if not stepper.is_alive():
                    break
                time.sleep(REDRAW_SECONDS)
    except KeyboardInterrupt:
        stepper.stop.set()
        with services.session_factory() as session:
            cancel_run(
                session,
                run_id,
                reason="cancelada pela linha de comando (Ctrl-C)",
                on_finish=notifier(services.session_factory, services.settings),  # NOTIFY_ON=all
            )
        stepper.join(timeout=30)
        err.print("canceled")
    if stepper.failure is not None:
        raise stepper.failure
    with services.session_factory() as session:
        return run_status(session, run_id, log_limit=5)

"""What the pages say, in Brazilian Portuguese: labels of modules and statuses, money, dates.

The functions are the Jinja filters of the UI (`brl`, `number`, `day`, `moment`, `duration`);
labels are keyed by the values the API and the database use, so a template looks them up with
the value it has (`run_status_labels[run.status]`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from core.reports import BRASILIA
from core.runs import Mode, ModuleStatus, RunStatus
from core.wording import MODULE_LABELS, mode_label

RUN_STATUS_LABELS: dict[str, str] = {
    RunStatus.QUEUED: "Na fila",
    RunStatus.RUNNING: "Em execução",
    RunStatus.DONE: "Concluída",
    RunStatus.FAILED: "Falhou",
    RunStatus.CANCELED: "Cancelada",
}
MODULE_STATUS_LABELS: dict[str, str] = {
    ModuleStatus.PENDING: "Aguardando",
    ModuleStatus.RUNNING: "Em execução",
    ModuleStatus.DONE: "Concluído",
    ModuleStatus.FAILED: "Falhou",
    ModuleStatus.CANCELED: "Cancelado",
}
MONTH_NAMES = (
    "janeiro fevereiro março abril maio junho julho agosto setembro outubro novembro dezembro"
).split()


def _grouped(value: Decimal, places: int) -> str:
    text = f"{value:,.{places}f}"  # 1,234.56
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def format_brl(value: Any) -> str:
    """R$ 1.234,56"""
    amount = Decimal(str(value or 0))
    sign = "-" if amount < 0 else ""
    return f"{sign}R$\u00a0{_grouped(abs(amount), 2)}"


def format_number(value: Any) -> str:
    """1.234 or 12,5 (a quantity without trailing zeros)."""
    amount = Decimal(str(value or 0))
    if amount == amount.to_integral_value():
        return _grouped(amount, 0)
    places = max(0, -amount.normalize().as_tuple().exponent)  # type: ignore[operator]
    return _grouped(amount, min(int(places), 4))


def format_day(value: date | str | None) -> str:
    """29/11/2026"""
    if value is None or value == "":
        return "—"
    day = date.fromisoformat(value[:10]) if isinstance(value, str) else value
    return day.strftime("%d/%m/%Y")


def format_moment(value: datetime | str | None) -> str:
    """29/11/2026 12:13, in Brasília time."""
    if value is None or value == "":
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(BRASILIA).strftime("%d/%m/%Y %H:%M:%S")


def format_duration(seconds: float | None) -> str:
    """1 min 05 s"""
    if seconds is None:
        return "—"
    total = int(round(seconds))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def month_label(month: str) -> str:
    """`2026-11` → `novembro de 2026`"""
    year, number = month.split("-")
    return f"{MONTH_NAMES[int(number) - 1]} de {year}"


def mode_labels(incremental_days: int) -> dict[str, str]:
    """One label per mode, the same everywhere: "Rápido (30 dias)", "Por mês"."""
    return {mode.value: mode_label(mode.value, incremental_days) for mode in Mode}


#: How many months the month pickers offer, back from the current one.
MONTHS_OFFERED = 24


def month_options(last: str, also: str | None = None) -> list[tuple[str, str]]:
    """The months a picker offers, newest first, with Portuguese names ("novembro de 2026").

    A `<select>`, not `<input type="month">`: the browser would name the months in its own
    language ("December 2026"). `also` (a month being shown) is added if it is older.
    """
    year, month = (int(part) for part in last.split("-"))
    values = []
    for _ in range(MONTHS_OFFERED):
        values.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    if also and also not in values:
        values.append(also)
    return [(value, month_label(value)) for value in values]


#: The Jinja filters the templates use.
FILTERS: dict[str, Callable[..., str]] = {
    "brl": format_brl,
    "number": format_number,
    "day": format_day,
    "moment": format_moment,
    "duration": format_duration,
}
#: The labels every template can read.
LABELS = {
    "run_status_labels": RUN_STATUS_LABELS,
    "module_status_labels": MODULE_STATUS_LABELS,
    "module_labels": MODULE_LABELS,
}

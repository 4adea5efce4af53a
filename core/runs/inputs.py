"""What a person asks a run to cover: the mode and the period, checked and turned into dates."""

from __future__ import annotations

import calendar
import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from core.errors import ValidationError
from core.settings import Settings
from core.tiny import today_in_brasilia

if TYPE_CHECKING:
    from core.models import SyncRun

MAX_PERIOD_DAYS = 366


class Mode(enum.StrEnum):
    INCREMENTAL = "incremental"
    PERIOD = "period"


@dataclass(frozen=True)
class Window:
    """The dates a run covers, inclusive."""

    start: date
    end: date


def parse_month(value: Any, today: date) -> Window:
    """`YYYY-MM` to its first and last day; the future and malformed months are refused."""
    if not isinstance(value, str):
        raise ValidationError("month must be text in the form YYYY-MM, e.g. 2024-12")
    text = value.strip()
    parts = text.split("-")
    if (
        len(parts) != 2
        or len(parts[0]) != 4
        or len(parts[1]) != 2
        or not all(p.isascii() and p.isdigit() for p in parts)
    ):
        raise ValidationError(f"month {value!r} is not in the form YYYY-MM, e.g. 2024-12")
    year, month = int(parts[0]), int(parts[1])
    if not 1 <= month <= 12:
        raise ValidationError(f"month {value!r} does not exist: the month must be 01 to 12")
    if year < 2000:
        raise ValidationError(f"month {value!r} is before 2000")
    first = date(year, month, 1)
    if first > today:
        raise ValidationError(f"month {value!r} is in the future")
    last = date(year, month, calendar.monthrange(year, month)[1])
    return Window(first, last)


def parse_day(value: Any, name: str) -> date:
    """An ISO date `YYYY-MM-DD`, or a ValidationError naming the field."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a date in the form YYYY-MM-DD")
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError as exc:
        raise ValidationError(f"{name} {value!r} is not a date in the form YYYY-MM-DD") from exc


def resolve_window(
    settings: Settings,
    mode: Any,
    *,
    month: Any = None,
    start_date: Any = None,
    end_date: Any = None,
    today: date | None = None,
) -> tuple[Mode, Window]:
    """Check the mode and period a person asked for, and turn them into dates."""
    # The dates are Tiny's calendar (Brasília): at 22:00 there it is tomorrow in UTC.
    today = today or today_in_brasilia()
    try:
        parsed_mode = Mode(mode)
    except ValueError as exc:
        raise ValidationError(f"mode {mode!r} is unknown: use 'incremental' or 'period'") from exc
    if parsed_mode is Mode.INCREMENTAL:
        if month is not None or start_date is not None or end_date is not None:
            raise ValidationError("incremental mode takes no month or dates")
        days = settings.sync_incremental_days
        return parsed_mode, Window(today - timedelta(days=days), today)
    if month is not None:
        if start_date is not None or end_date is not None:
            raise ValidationError("give either month or startDate/endDate, not both")
        return parsed_mode, parse_month(month, today)
    if start_date is None or end_date is None:
        raise ValidationError("period mode needs month (YYYY-MM) or both startDate and endDate")
    start, end = parse_day(start_date, "startDate"), parse_day(end_date, "endDate")
    if start > end:
        raise ValidationError("startDate is after endDate")
    if start > today:
        raise ValidationError("startDate is in the future")
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise ValidationError("the period is longer than 12 months; split it into smaller runs")
    return parsed_mode, Window(start, end)


def at_midnight(day: date) -> datetime:
    """The first instant of `day`, UTC (how a run's dates are stored)."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def run_window(run: SyncRun) -> Window:
    """The inclusive dates a run covers."""
    start = run.startDate or run.createdAt
    end = run.endDate or run.createdAt
    return Window(start.date(), end.date())

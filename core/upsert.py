"""Bulk upserts keyed by (company, Tiny id): one statement per batch, on PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

#: Both databases cap bound parameters per statement (SQLite 32766, PostgreSQL 65535).
MAX_PARAMS = 30_000

ExtraSet = Callable[[Any], dict[str, ColumnElement[Any]]]


def upsert(
    session: Session,
    model: type[Any],
    rows: Sequence[dict[str, Any]],
    *,
    key: Sequence[str] = ("companyId", "tinyId"),
    update: Sequence[str] | None = None,
    extra_set: ExtraSet | None = None,
) -> int:
    """Insert `rows`, updating those whose `key` exists; returns how many rows were sent.

    Rows must all have the same columns. `extra_set(excluded)` adds computed assignments
    (e.g. "flag the order for enrichment when its fingerprint changed").
    """
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    columns = list(rows[0])
    update_columns = [c for c in (update or columns) if c not in key]
    chunk = max(1, MAX_PARAMS // max(1, len(columns)))
    for start in range(0, len(rows), chunk):
        stmt = insert(model).values(list(rows[start : start + chunk]))
        assignments: dict[str, Any] = {c: stmt.excluded[c] for c in update_columns}
        if extra_set is not None:
            assignments.update(extra_set(stmt.excluded))
        session.execute(stmt.on_conflict_do_update(index_elements=list(key), set_=assignments))
    return len(rows)

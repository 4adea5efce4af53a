"""Bulk upserts keyed by (company, Tiny id): one statement per batch, on PostgreSQL and SQLite.

On PostgreSQL the rows travel as one array per column and are expanded by `unnest`: the SQL
text is the same for every batch, so neither SQLAlchemy nor psycopg re-parse a statement with
thousands of placeholders (which made a multi-row VALUES insert several times slower). SQLite
gets multi-row VALUES statements.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ARRAY, JSON, ColumnElement, bindparam, cast, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

#: Rows per statement on PostgreSQL, where parameters are arrays and do not count per row.
PG_BATCH = 5_000

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
    columns = list(rows[0])
    update_columns = [c for c in (update or columns) if c not in key]
    table = model.__table__
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres and not any(isinstance(table.c[c].type, JSON) for c in columns):
        for start in range(0, len(rows), PG_BATCH):
            batch = rows[start : start + PG_BATCH]
            arrays = [
                cast(
                    bindparam(f"u_{c}", value=[r[c] for r in batch], type_=ARRAY(table.c[c].type)),
                    ARRAY(table.c[c].type),
                )
                for c in columns
            ]
            source = func.unnest(*arrays).table_valued(*columns).render_derived()
            stmt = pg_insert(model).from_select(columns, select(*[source.c[c] for c in columns]))
            session.execute(_on_conflict(stmt, key, update_columns, extra_set))
        return len(rows)
    # SQLite (and JSON columns, which do not travel well in arrays): SQLAlchemy's
    # "insertmanyvalues" turns this executemany into multi-row VALUES statements from one
    # cached compilation (it applies when the INSERT has RETURNING).
    insert = pg_insert if postgres else sqlite_insert
    stmt = _on_conflict(insert(model), key, update_columns, extra_set)
    session.connection().execute(stmt.returning(table.c[key[0]]), list(rows)).all()
    return len(rows)


def _on_conflict(
    stmt: Any, key: Sequence[str], update_columns: Sequence[str], extra_set: ExtraSet | None
) -> Any:
    assignments: dict[str, Any] = {c: stmt.excluded[c] for c in update_columns}
    if extra_set is not None:
        assignments.update(extra_set(stmt.excluded))
    return stmt.on_conflict_do_update(index_elements=list(key), set_=assignments)

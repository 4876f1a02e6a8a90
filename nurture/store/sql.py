"""What every query module shares: dialect switches, `IN` lists, JSON row documents.

On PostgreSQL the bulk writes pass their rows as one JSON document, read back
with `jsonb_to_recordset`: the SQL text never changes with the number of
rows, so it is parsed and planned once (psycopg prepares it), and the rows
cost one `json.dumps` in C. A multi-row ``VALUES`` is a new, long statement
for every batch; an executemany is one statement per row on the server; and
arrays of text are escaped element by element in Python by the driver.
Elsewhere (SQLite, the embedded default) the same functions fall back to
executemany, which is what SQLite is fast at.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    any_,
    bindparam,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

import nurture.clock as clock


def among(session: Session, column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """`column IN values`; on PostgreSQL ``= ANY(array)``, one parameter however many values.

    An IN list is as many parameters: SQLAlchemy renders, and psycopg parses
    again, a new statement for each length (~2 ms for a list of 200), where
    the array form is one statement, prepared once.
    """
    wanted = list(values)
    if session.get_bind().dialect.name == "postgresql":
        return cast(
            ColumnElement[bool],
            column == any_(bindparam(None, wanted, type_=postgresql.ARRAY(column.type))),
        )
    return cast(ColumnElement[bool], column.in_(wanted))


def insert_ignore(
    session: Session,
    table: Table,
    values: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
    conflict: list[str],
) -> Any:
    """INSERT … ON CONFLICT DO NOTHING; `values` None: rows come as execute parameters."""
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(table)
    if values is not None:
        statement = statement.values(values)
    return statement.on_conflict_do_nothing(index_elements=conflict)


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return clock.as_utc(value).isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_rows(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows as the one JSON document `jsonb_to_recordset` reads (times in UTC ISO 8601).

    On PostgreSQL a batch's rows go as one parameter: `json.dumps` runs in C,
    where arrays are converted element by element in Python by the driver,
    and the statement's text never changes with the number of rows.
    """
    return json.dumps(rows, ensure_ascii=False, default=_iso)


def on_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)

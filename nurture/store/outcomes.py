"""Recording delivery outcomes one by one, without waiting for each commit.

A crash must resend at most the one message in flight, so each outcome is
committed before the next message is handed to the transport. On PostgreSQL
that commit waits for a WAL flush (~0.5 ms on the development machine), as
long as composing an email. `PipelinedOutcomeLog` sends outcome k's UPDATE
(a statement of its own, committed by the server as it runs) and returns at
once. Email k+1 is rendered and built meanwhile, and `ready()`, called just
before k+1 leaves, collects k's answer. The window stays one message and
the commit is hidden behind the rendering.

It speaks to libpq through psycopg's documented low-level `pq` module on a
connection of its own, checked out of the pool for the batch: psycopg's
`Connection.execute` always waits for the result, and a thread doing the
waiting was starved by the rendering thread's hold on the GIL (measured).
Each UPDATE is an unnamed statement, not a prepared one: preparing gained
nothing measurable, and an unnamed statement also works behind PgBouncer in
transaction mode, where a statement prepared on one server connection is
unknown to the next. Everywhere else (SQLite) `InlineOutcomeLog` commits each
outcome in place.
"""

from __future__ import annotations

import select
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import Connection, Engine
from sqlalchemy.engine.interfaces import DBAPIConnection

import nurture.clock as clock
from nurture.store import sends as ledger


class OutcomeLog(Protocol):
    """Where delivery records each send's outcome, committed before the next email leaves.

    `outcome_log` picks `PipelinedOutcomeLog` on PostgreSQL, `InlineOutcomeLog` elsewhere.
    """

    def open(self) -> None:
        """Take the connection before the first message leaves: a database that
        is down stops the batch before anything is sent, not after."""

    def record(self, outcome: Mapping[str, Any]) -> None:
        """Commit this outcome (a mapping with `send_id` and the columns to set)."""

    def ready(self) -> None:
        """Return once every outcome recorded so far is committed; raise if one failed."""

    def close(self) -> None: ...


def outcome_log(bind: Engine) -> OutcomeLog:
    if bind.dialect.name == "postgresql":
        return PipelinedOutcomeLog(bind)
    return InlineOutcomeLog(bind)


class InlineOutcomeLog:
    """The `OutcomeLog` for SQLite: each outcome's UPDATE executed and committed in place."""

    def __init__(self, bind: Engine) -> None:
        self._bind = bind
        self._connection: Connection | None = None

    def open(self) -> None:
        if self._connection is None:
            self._connection = self._bind.connect()

    def record(self, outcome: Mapping[str, Any]) -> None:
        self.open()
        assert self._connection is not None
        columns = tuple(sorted(key for key in outcome if key != "send_id"))
        self._connection.execute(ledger.finish_statement(columns), dict(outcome))
        self._connection.commit()

    def ready(self) -> None:
        pass

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class OutcomeNotRecorded(RuntimeError):
    """PostgreSQL refused or lost an outcome's UPDATE: stop sending."""


class PipelinedOutcomeLog:
    """The `OutcomeLog` for PostgreSQL: each outcome's commit overlaps rendering the next email.

    `record` sends a self-committing UPDATE without waiting; `ready` collects its answer.
    """

    def __init__(self, bind: Engine) -> None:
        self._bind = bind
        self._raw: DBAPIConnection | None = None
        self._pending = False

    def open(self) -> None:
        self._pgconn()

    def record(self, outcome: Mapping[str, Any]) -> None:
        self.ready()
        pgconn = self._pgconn()
        columns = tuple(sorted(key for key in outcome if key != "send_id"))
        values = [_text(outcome["send_id"]), *(_text(outcome[c]) for c in columns)]
        try:
            pgconn.send_query_params(_update_sql(columns), values)
            self._pending = True
            while pgconn.flush():  # a non-blocking connection may not send it all at once
                select.select([], [pgconn.socket], [])
        except Exception as exc:
            self._discard()
            raise OutcomeNotRecorded(f"recording a delivery outcome failed: {exc}") from exc

    def ready(self) -> None:
        if not self._pending:
            return
        self._pending = False
        pgconn = self._pgconn()
        try:
            pgconn.consume_input()
            while pgconn.is_busy():
                select.select([pgconn.socket], [], [])  # waits without holding the GIL
                pgconn.consume_input()
            results = []
            while (result := pgconn.get_result()) is not None:
                results.append(result)
        except Exception as exc:
            self._discard()
            raise OutcomeNotRecorded(f"recording a delivery outcome failed: {exc}") from exc
        from psycopg.pq import ExecStatus

        if not results or any(r.status != ExecStatus.COMMAND_OK for r in results):
            message = b"; ".join(r.error_message for r in results if r.error_message)
            self._discard()
            raise OutcomeNotRecorded(
                "recording a delivery outcome failed: "
                + (message.decode(errors="replace").strip() or "no answer")
            )

    def close(self) -> None:
        try:
            self.ready()
        finally:
            if self._raw is not None:
                self._raw.close()  # back to the pool, idle (each UPDATE committed itself)
                self._raw = None

    def _pgconn(self) -> Any:
        if self._raw is None:
            self._raw = self._bind.raw_connection()
        driver = self._raw.driver_connection
        assert driver is not None
        return driver.pgconn

    def _discard(self) -> None:
        if self._raw is not None:
            self._raw.invalidate()
            self._raw = None


@lru_cache(maxsize=32)
def _update_sql(columns: tuple[str, ...]) -> bytes:
    """``UPDATE sends SET a = $2, … WHERE id = $1``; not in a transaction: it commits itself."""
    assignments = ", ".join(f"{column} = ${n}" for n, column in enumerate(columns, start=2))
    return f"UPDATE sends SET {assignments} WHERE id = $1".encode()


def _text(value: Any) -> bytes | None:
    """A parameter in PostgreSQL's text format; the server casts it to the column's type."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return clock.as_utc(value).isoformat().encode()
    if isinstance(value, bool):
        return b"true" if value else b"false"
    return str(value).encode()

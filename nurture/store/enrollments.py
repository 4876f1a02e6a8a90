"""The engine's named queries: claiming due work, enrollment state, the send ledger.

Claims are single `UPDATE … RETURNING` statements: on PostgreSQL the inner
SELECT takes `FOR UPDATE SKIP LOCKED`, so schedulers on several machines split
the due rows between them instead of queueing behind each other; on SQLite,
where writers are serialised anyway, the statement is atomic as it stands.
Both order by `next_run_at` over a partial index, so a claim costs what is
due, not what is waiting.

Nothing here commits; the caller owns the transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    any_,
    bindparam,
    case,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

import nurture.clock as clock
from nurture.store.models import (
    Contact,
    Enrollment,
    Event,
    Send,
    UTCDateTime,
    WorkflowVersion,
)

_enrollments = cast(Table, Enrollment.__table__)
_sends = cast(Table, Send.__table__)


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


# --- workflow versions ----------------------------------------------------------


def workflow_version_id(session: Session, name: str, content_hash: str, source: str) -> int:
    """The id of this exact workflow content, stored on first use."""
    found = session.scalar(
        select(WorkflowVersion.id).where(
            WorkflowVersion.name == name, WorkflowVersion.content_hash == content_hash
        )
    )
    if found is not None:
        return found
    table = cast(Table, WorkflowVersion.__table__)
    values = {"name": name, "content_hash": content_hash, "source": source}
    statement = insert_ignore(session, table, values, ["name", "content_hash"])
    session.execute(statement)
    return session.scalars(
        select(WorkflowVersion.id).where(
            WorkflowVersion.name == name, WorkflowVersion.content_hash == content_hash
        )
    ).one()


def workflow_version_sources(session: Session, ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    rows = session.execute(
        select(WorkflowVersion.id, WorkflowVersion.name, WorkflowVersion.source).where(
            WorkflowVersion.id.in_(set(ids))
        )
    )
    return {row.id: (row.name, row.source) for row in rows}


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


# --- enrollments --------------------------------------------------------------------


@dataclass(frozen=True)
class PastEnrollment:
    contact_id: int
    workflow: str
    status: str
    started_at: datetime
    ended_at: datetime | None


def enrollments_for(
    session: Session, contact_ids: Iterable[int], workflows: Iterable[str]
) -> list[PastEnrollment]:
    """Existing enrollments, for the re-enrollment rules."""
    rows = session.execute(
        select(
            Enrollment.contact_id,
            Enrollment.workflow,
            Enrollment.status,
            Enrollment.started_at,
            Enrollment.ended_at,
        ).where(
            among(session, Enrollment.contact_id, set(contact_ids)),
            Enrollment.workflow.in_(set(workflows)),
        )
    )
    return [PastEnrollment(*row) for row in rows]


def insert_enrollments(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        session.execute(_enrollments.insert(), list(rows))


def claim_due_enrollments(
    session: Session, now: datetime, limit: int, lease: timedelta
) -> list[int]:
    """Lease up to `limit` due enrollments; returns their ids, oldest due first."""
    due = (
        select(Enrollment.id)
        .where(
            Enrollment.next_run_at <= now,
            or_(Enrollment.lease_until.is_(None), Enrollment.lease_until < now),
        )
        .order_by(Enrollment.next_run_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    statement = (
        update(Enrollment)
        .where(Enrollment.id.in_(due.scalar_subquery()))
        .values(lease_until=now + lease)
        .returning(Enrollment.id)
        .execution_options(synchronize_session=False)
    )
    return list(session.scalars(statement))


def load_enrollments(session: Session, ids: Iterable[int]) -> list[Enrollment]:
    return list(session.scalars(select(Enrollment).where(among(session, Enrollment.id, set(ids)))))


@dataclass(frozen=True)
class EnrollmentWrite:
    """A decision's new state for one enrollment, and the state it was decided from."""

    id: int
    expected_visit: int
    expected_step: str | None
    #: `next_run_at` as the decision found it: if it differs now, an event woke the
    #: enrollment meanwhile (`wake_contacts`), and that earlier moment is kept.
    loaded_next_run_at: datetime | None
    step: str | None
    visit: int
    status: str
    waiting_for: dict[str, Any] | None
    next_run_at: datetime | None
    ended: bool = False
    ended_at: datetime | None = None
    exit_reason: str | None = None

    def values(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "step": self.step,
            "visit": self.visit,
            "status": self.status,
            "waiting_for": self.waiting_for,
            "next_run_at": self.next_run_at,
            "lease_until": None,
        }
        if self.ended:
            values |= {"ended_at": self.ended_at, "exit_reason": self.exit_reason}
        return values


def save_enrollments(session: Session, writes: Sequence[EnrollmentWrite]) -> set[int]:
    """Write a batch of decisions; returns the ids written (the rest lost a race).

    Each row is written only if it is still at the visit and step it was decided
    from, and still running: another worker may have advanced it, or an event
    may have ended it (`end_nurture`) since it was loaded. An event that woke it
    meanwhile is not lost: the decision did not see that event, so a running
    enrollment keeps the earlier, woken `next_run_at` and is advanced again.

    On PostgreSQL one ``UPDATE … FROM unnest(…)`` writes the whole batch: one
    statement per row cost more than the rest of the advance
    (`benchmarks/send_throughput.py`). SQLite, in-process, runs one per row.
    """
    if not writes:
        return set()
    if session.get_bind().dialect.name != "postgresql":
        written = set()
        for write in writes:
            parameters = {
                **write.values(),
                "b_id": write.id,
                "b_visit": write.expected_visit,
                "b_step": write.expected_step,
                "b_next_run_at": write.loaded_next_run_at,
                "b_ended": write.ended,
                "ended_at": write.ended_at,
                "exit_reason": write.exit_reason,
            }
            if cast(Any, session.execute(_save_one(), parameters)).rowcount:
                written.add(write.id)
        return written
    rows = [
        {
            "id": w.id,
            "b_visit": w.expected_visit,
            "b_step": w.expected_step,
            "step": w.step,
            "visit": w.visit,
            "status": w.status,
            "waiting_for": w.waiting_for,
            "next_run_at": w.next_run_at,
            "ended": w.ended,
            "ended_at": w.ended_at,
            "exit_reason": w.exit_reason,
            "loaded_next_run": w.loaded_next_run_at,
        }
        for w in writes
    ]
    return set(session.scalars(_SAVE_MANY, {"rows": json_rows(rows)}))


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


_SAVE_MANY = text(
    """
    UPDATE enrollments AS e SET
        step = v.step,
        visit = v.visit,
        status = v.status,
        waiting_for = v.waiting_for,
        next_run_at = CASE
            WHEN NOT v.ended AND e.next_run_at IS DISTINCT FROM v.loaded_next_run
                 AND (v.next_run_at IS NULL OR e.next_run_at < v.next_run_at)
            THEN e.next_run_at ELSE v.next_run_at END,
        lease_until = NULL,
        ended_at = CASE WHEN v.ended THEN v.ended_at ELSE e.ended_at END,
        exit_reason = CASE WHEN v.ended THEN v.exit_reason ELSE e.exit_reason END
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v(
        id bigint, b_visit integer, b_step text, step text, visit integer, status text,
        waiting_for jsonb, next_run_at timestamptz, ended boolean, ended_at timestamptz,
        exit_reason text, loaded_next_run timestamptz)
    WHERE e.id = v.id
      AND e.visit = v.b_visit
      AND e.step IS NOT DISTINCT FROM v.b_step
      AND e.status IN ('active', 'waiting')
    RETURNING e.id
    """
)


@lru_cache(maxsize=1)
def _save_one() -> Any:
    """`_SAVE_MANY` for one row, portable (SQLite): the same guards, the same woken time."""
    table = _enrollments
    woken = and_(
        bindparam("b_ended").is_(False),
        table.c.next_run_at.is_distinct_from(bindparam("b_next_run_at", type_=UTCDateTime())),
        or_(
            bindparam("next_run_at", type_=UTCDateTime()).is_(None),
            table.c.next_run_at < bindparam("next_run_at", type_=UTCDateTime()),
        ),
    )
    columns = ("step", "visit", "status", "waiting_for", "lease_until", "ended_at", "exit_reason")
    values: dict[str, Any] = {column: bindparam(column) for column in columns}
    values["next_run_at"] = case(
        (woken, table.c.next_run_at), else_=bindparam("next_run_at", type_=UTCDateTime())
    )
    values["ended_at"] = case(
        (bindparam("b_ended"), bindparam("ended_at", type_=UTCDateTime())),
        else_=table.c.ended_at,
    )
    values["exit_reason"] = case(
        (bindparam("b_ended"), bindparam("exit_reason")), else_=table.c.exit_reason
    )
    return (
        update(table)
        .where(
            table.c.id == bindparam("b_id"),
            table.c.visit == bindparam("b_visit"),
            table.c.step.is_not_distinct_from(bindparam("b_step")),
            table.c.status.in_(("active", "waiting")),
        )
        .values(values)
    )


def wake_contacts(session: Session, contact_ids: Iterable[int], now: datetime) -> int:
    """Make these contacts' waiting enrollments due now: an event may end a wait or an enrollment.

    One being advanced right now (leased) is marked too, though already due: the
    worker decided without this event, and `save_enrollments` keeps the woken
    time when it sees `next_run_at` changed under it.
    """
    result = session.execute(
        update(Enrollment)
        .where(
            among(session, Enrollment.contact_id, contact_ids),
            Enrollment.next_run_at.is_not(None),
            or_(Enrollment.next_run_at > now, Enrollment.lease_until > now),
        )
        .values(next_run_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(cast(Any, result).rowcount)


def next_due_at(session: Session) -> datetime | None:
    """The earliest moment any enrollment or send is due: where `simulate` jumps next."""
    enrollment = session.scalar(
        select(Enrollment.next_run_at)
        .order_by(Enrollment.next_run_at)
        .where(Enrollment.next_run_at.is_not(None))
        .limit(1)
    )
    send = session.scalar(
        select(Send.next_attempt_at)
        .order_by(Send.next_attempt_at)
        .where(Send.next_attempt_at.is_not(None))
        .limit(1)
    )
    moments = [moment for moment in (enrollment, send) if moment is not None]
    return min(moments) if moments else None


# --- contacts and events ----------------------------------------------------------


def contacts_by_id(session: Session, ids: Iterable[int]) -> dict[int, Contact]:
    return {
        c.id: c
        for c in session.scalars(select(Contact).where(among(session, Contact.id, set(ids))))
    }


def events_since(
    session: Session, since_by_contact: Mapping[int, datetime]
) -> dict[int, list[Event]]:
    """Each contact's events from its own `since` on, for `wait_for` matching."""
    if not since_by_contact:
        return {}
    earliest = min(since_by_contact.values())
    rows = session.scalars(
        select(Event)
        .where(among(session, Event.contact_id, set(since_by_contact)), Event.at >= earliest)
        .order_by(Event.at)
    )
    found: dict[int, list[Event]] = {}
    for event in rows:
        assert event.contact_id is not None
        if event.at >= since_by_contact[event.contact_id]:
            found.setdefault(event.contact_id, []).append(event)
    return found


# --- events ---------------------------------------------------------------------------


def record_events(session: Session, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Insert events whose id was never seen; returns the ids actually inserted."""
    if not rows:
        return set()
    from nurture.store import ingest_queries

    # PostgreSQL: the rows as one JSON document, one statement whatever the batch size.
    inserted = ingest_queries.insert_events(session, rows)
    if inserted is not None:
        return inserted
    table = cast(Table, Event.__table__)
    # Rows as executemany parameters, as in `claim_sends`: inlined with `.values(rows)`
    # the statement was compiled afresh for every batch (`benchmarks/ingest.py`).
    statement = insert_ignore(session, table, None, ["event_id"]).returning(table.c.event_id)
    return {row.event_id for row in session.execute(statement, [dict(r) for r in rows])}

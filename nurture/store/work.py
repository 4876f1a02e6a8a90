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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from nurture.store.models import Contact, Enrollment, Event, Send, WorkflowVersion

_enrollments = cast(Table, Enrollment.__table__)
_sends = cast(Table, Send.__table__)


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
            Enrollment.contact_id.in_(set(contact_ids)), Enrollment.workflow.in_(set(workflows))
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
    return list(session.scalars(select(Enrollment).where(Enrollment.id.in_(set(ids)))))


def save_enrollment(
    session: Session,
    enrollment_id: int,
    *,
    expected_visit: int,
    expected_step: str | None,
    values: Mapping[str, Any],
) -> bool:
    """Write a decision's state, unless another worker advanced it first (then False)."""
    parameters = {**values, "b_id": enrollment_id, "b_visit": expected_visit}
    if expected_step is not None:
        parameters["b_step"] = expected_step
    statement = _save_statement(tuple(sorted(values)), expected_step is None)
    result = session.execute(statement, parameters)
    return bool(cast(Any, result).rowcount)


@lru_cache(maxsize=32)
def _save_statement(columns: tuple[str, ...], step_is_null: bool) -> Any:
    """One Core UPDATE per shape, values as bound parameters: built and compiled once.

    Building an ORM update with the values inlined for every row cost more than
    the round trip itself (~0.3 ms a row, `benchmarks/send_throughput.py`).
    """
    table = _enrollments
    step = table.c.step.is_(None) if step_is_null else table.c.step == bindparam("b_step")
    return (
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.visit == bindparam("b_visit"), step)
        .values({column: bindparam(column) for column in columns})
    )


def wake_contact(session: Session, contact_id: int, now: datetime) -> int:
    return wake_contacts(session, [contact_id], now)


def wake_contacts(session: Session, contact_ids: Sequence[int], now: datetime) -> int:
    """Make these contacts' waiting enrollments due now: an event may end a wait or an enrollment."""
    result = session.execute(
        update(Enrollment)
        .where(
            Enrollment.contact_id.in_(contact_ids),
            Enrollment.next_run_at.is_not(None),
            Enrollment.next_run_at > now,
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
    return {c.id: c for c in session.scalars(select(Contact).where(Contact.id.in_(set(ids))))}


def events_since(
    session: Session, since_by_contact: Mapping[int, datetime]
) -> dict[int, list[Event]]:
    """Each contact's events from its own `since` on, for `wait_for` matching."""
    if not since_by_contact:
        return {}
    earliest = min(since_by_contact.values())
    rows = session.scalars(
        select(Event)
        .where(Event.contact_id.in_(set(since_by_contact)), Event.at >= earliest)
        .order_by(Event.at)
    )
    found: dict[int, list[Event]] = {}
    for event in rows:
        assert event.contact_id is not None
        if event.at >= since_by_contact[event.contact_id]:
            found.setdefault(event.contact_id, []).append(event)
    return found


# --- the send ledger -------------------------------------------------------------------


def claim_sends(session: Session, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Insert send claims; returns claim key → id for the rows *this* call inserted.

    A claim key that already exists (a retried message, a racing worker) is
    silently skipped: that email was claimed before, and is not ours to send.
    """
    if not rows:
        return {}
    # The rows as executemany parameters (SQLAlchemy's "insertmanyvalues"), not
    # inlined with `.values(rows)`: that statement was compiled afresh for every
    # batch, ~0.5 ms a row (`benchmarks/send_throughput.py`).
    statement = insert_ignore(session, _sends, None, ["claim_key"]).returning(
        _sends.c.claim_key, _sends.c.id
    )
    return {row.claim_key: row.id for row in session.execute(statement, [dict(r) for r in rows])}


def lease_sends(
    session: Session,
    now: datetime,
    lease: timedelta,
    ids: Iterable[int] | None = None,
    limit: int = 500,
) -> list[int]:
    """Lease sends due for delivery (the given ones, or the oldest due); counts an attempt."""
    due = and_(
        Send.status == "claimed",
        Send.next_attempt_at <= now,
        or_(Send.lease_until.is_(None), Send.lease_until < now),
    )
    if ids is not None:
        target = Send.id.in_(set(ids))
    else:
        target = Send.id.in_(
            select(Send.id)
            .where(due)
            .order_by(Send.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
    statement = (
        update(Send)
        .where(target, due)
        .values(lease_until=now + lease, attempts=Send.attempts + 1)
        .returning(Send.id)
        .execution_options(synchronize_session=False)
    )
    return list(session.scalars(statement))


def renew_send_leases(session: Session, sends: Sequence[tuple[int, int]], until: datetime) -> None:
    """Extend leases still held: (send id, the `attempts` value this worker leased it at)."""
    if sends:
        session.execute(
            update(_sends)
            .where(
                _sends.c.id == bindparam("send_id"),
                _sends.c.attempts == bindparam("held_attempts"),
                _sends.c.status == "claimed",
            )
            .values(lease_until=until),
            [{"send_id": i, "held_attempts": a} for i, a in sends],
        )


def load_sends(session: Session, ids: Iterable[int]) -> list[Send]:
    return list(session.scalars(select(Send).where(Send.id.in_(set(ids))).order_by(Send.id)))


def finish_sends(session: Session, outcomes: Sequence[Mapping[str, Any]]) -> None:
    """Record delivery outcomes: each mapping has `send_id` and the columns to set."""
    by_columns: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for outcome in outcomes:
        columns = tuple(sorted(k for k in outcome if k != "send_id"))
        by_columns.setdefault(columns, []).append(outcome)
    for columns, group in by_columns.items():
        statement = (
            update(_sends)
            .where(_sends.c.id == bindparam("send_id"))
            .values({column: bindparam(column) for column in columns})
        )
        session.execute(statement, [dict(row) for row in group])


def recent_send_times(
    session: Session, contact_ids: Iterable[int], since: datetime
) -> dict[int, list[datetime]]:
    """When each contact was last emailed (claimed or sent), for frequency caps."""
    rows = session.execute(
        select(Send.contact_id, Send.claimed_at).where(
            Send.contact_id.in_(set(contact_ids)),
            Send.claimed_at >= since,
            Send.status.in_(("claimed", "sent")),
        )
    )
    found: dict[int, list[datetime]] = {}
    for contact_id, at in rows:
        found.setdefault(contact_id, []).append(at)
    return found


def record_events(session: Session, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Insert events whose id was never seen; returns the ids actually inserted."""
    if not rows:
        return set()
    table = cast(Table, Event.__table__)
    # Rows as executemany parameters, as in `claim_sends`: inlined with `.values(rows)`
    # the statement was compiled afresh for every batch (`benchmarks/ingest.py`).
    statement = insert_ignore(session, table, None, ["event_id"]).returning(table.c.event_id)
    return {row.event_id for row in session.execute(statement, [dict(r) for r in rows])}


def sends_by_message_id(session: Session, message_ids: Iterable[str]) -> dict[str, Send]:
    """Sends whose stored Message-ID is among `message_ids` (as stored: ``<...>``).

    The fallback of ESP webhooks that do not echo `X-Nurture-Send-Id`; unindexed.
    """
    wanted = list(set(message_ids))
    if not wanted:
        return {}
    statement = select(Send).where(Send.message_id.in_(wanted))
    return {send.message_id: send for send in session.scalars(statement) if send.message_id}

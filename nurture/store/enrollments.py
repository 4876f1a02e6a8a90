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

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from nurture.store.models import (
    Enrollment,
    Send,
    UTCDateTime,
)
from nurture.store.sql import among, json_rows
from nurture.store.statuses import RUNNING, EnrollmentStatus

_enrollments = cast(Table, Enrollment.__table__)
_sends = cast(Table, Send.__table__)


# --- workflow versions ----------------------------------------------------------


# --- enrollments --------------------------------------------------------------------


@dataclass(frozen=True)
class PastEnrollment:
    """A contact's enrollment in a workflow, running or ended, as `may_enroll` weighs it."""

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
            table.c.status.in_(RUNNING),
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


# --- events ---------------------------------------------------------------------------


def end_nurture(session: Session, contact_ids: Sequence[int], reason: str, now: datetime) -> int:
    """End every running enrollment of these contacts at once: they reached the prospect
    stage, were suppressed, unsubscribed or erased. Returns how many ended."""
    result = session.execute(
        update(Enrollment)
        .where(
            among(session, _enrollments.c.contact_id, contact_ids),
            Enrollment.status.in_(RUNNING),
        )
        .values(
            status=EnrollmentStatus.EXITED,
            exit_reason=reason,
            ended_at=now,
            next_run_at=None,
            lease_until=None,
            waiting_for=None,
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def enrollments_of(session: Session, contact_id: int) -> list[Enrollment]:
    """A contact's enrollments, oldest first."""
    return list(
        session.scalars(
            select(Enrollment)
            .where(Enrollment.contact_id == contact_id)
            .order_by(Enrollment.started_at, Enrollment.id)
        )
    )


def running_enrollments_by_step(session: Session, workflow: str) -> dict[str | None, int]:
    """How many running enrollments of `workflow` stand on each step (`nurture graph`).

    The key is the step id, None for enrollments not yet on their first step.
    One grouped SELECT: the graph must stay cheap on a database of millions.
    """
    statement = (
        select(Enrollment.step, func.count())
        .where(Enrollment.workflow == workflow, Enrollment.status.in_(RUNNING))
        .group_by(Enrollment.step)
    )
    return {step: int(count) for step, count in session.execute(statement)}


@dataclass(frozen=True)
class RunningGroup:
    """Running enrollments of one workflow version at one step, and when they next run."""

    workflow: str
    version_id: int
    step: str | None
    count: int
    first_due: datetime | None
    last_due: datetime | None


def running_by_version(session: Session) -> list[RunningGroup]:
    """Running enrollments by workflow, version and step (`nurture plan`)."""
    rows = session.execute(
        select(
            Enrollment.workflow,
            Enrollment.workflow_version_id,
            Enrollment.step,
            func.count(),
            func.min(Enrollment.next_run_at),
            func.max(Enrollment.next_run_at),
        )
        .where(Enrollment.status.in_(RUNNING))
        .group_by(Enrollment.workflow, Enrollment.workflow_version_id, Enrollment.step)
    )
    return [RunningGroup(*row) for row in rows]


def running_steps(session: Session) -> list[tuple[int, int, str | None]]:
    """(id, version id, step) of every running enrollment that is on a step."""
    rows = session.execute(
        select(Enrollment.id, Enrollment.workflow_version_id, Enrollment.step).where(
            Enrollment.status.in_(RUNNING), Enrollment.step.is_not(None)
        )
    )
    return [(r[0], r[1], r[2]) for r in rows]


def move_running(
    session: Session,
    workflow: str,
    version_id: int,
    step: str | None,
    values: Mapping[str, Any],
) -> int:
    """Set `values` on the running enrollments of one workflow version on one step (a
    migration); how many moved. `visit` is bumped too, so a worker that loaded one
    before the move fails its optimistic write (`WHERE visit = :seen`) instead of
    writing the old version back."""
    result = session.execute(
        update(Enrollment)
        .where(
            Enrollment.workflow == workflow,
            Enrollment.workflow_version_id == version_id,
            Enrollment.status.in_(RUNNING),
            Enrollment.step.is_(None) if step is None else Enrollment.step == step,
        )
        .values(**values, visit=Enrollment.visit + 1)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)

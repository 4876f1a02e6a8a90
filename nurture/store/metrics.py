"""The figures `/metrics` reports, read from the database at scrape time.

Several processes (workers, schedulers, web) share one database, so counters
kept in any one process would each tell part of the story; the rows are the
truth, and every scrape reads them. Each figure is one statement: counts by
status, and "due" counts that walk the partial indexes the scheduler itself
uses (`ix_enrollments_due`, `ix_sends_due`, `ix_handoffs_status_sla_due_at`),
so a scrape stays cheap next to the work it watches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from nurture.store.models import Enrollment, Event, Handoff, Notification, Send
from nurture.store.statuses import HandoffStatus, SendStatus

#: The window of `events_recent`: how fast events are coming in now.
RECENT_EVENTS = timedelta(minutes=5)


@dataclass(frozen=True)
class Figures:
    """One consistent-enough reading of the database (one session, one `now`)."""

    sends: dict[str, int] = field(default_factory=dict)
    sends_due: int = 0
    sends_held: int = 0
    sends_throttled: int = 0
    enrollments: dict[str, int] = field(default_factory=dict)
    enrollments_due: int = 0
    oldest_due_seconds: float = 0.0
    events: dict[str, int] = field(default_factory=dict)
    events_recent: int = 0
    handoffs: dict[str, int] = field(default_factory=dict)
    handoffs_overdue: int = 0
    notifications: dict[str, int] = field(default_factory=dict)


def _by_status(session: Session, column: InstrumentedAttribute[str]) -> dict[str, int]:
    rows = session.execute(select(column, func.count()).group_by(column)).all()
    return {str(key): int(count) for key, count in rows}


def sends_by_status(session: Session) -> dict[str, int]:
    return _by_status(session, Send.status)


def sends_due(session: Session, now: datetime) -> int:
    """Claimed sends whose (next) attempt is due: what delivery is behind on."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Send)
            .where(Send.next_attempt_at <= now, Send.status == SendStatus.CLAIMED)
        )
        or 0
    )


def sends_held(session: Session, prefix: str = "held: ") -> int:
    """Emails left due for a reason `sends.error` starts with: "held: " (their template
    broke), "throttled: " (waiting for `sending.rate`)."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Send)
            .where(Send.status == SendStatus.CLAIMED, Send.error.like(f"{prefix}%"))
        )
        or 0
    )


def enrollments_by_status(session: Session) -> dict[str, int]:
    return _by_status(session, Enrollment.status)


def enrollments_due(session: Session, now: datetime) -> tuple[int, float]:
    """The due backlog: how many enrollments are due and how late the oldest is (s)."""
    count, oldest = session.execute(
        select(func.count(), func.min(Enrollment.next_run_at)).where(Enrollment.next_run_at <= now)
    ).one()
    late = (now - oldest).total_seconds() if oldest is not None else 0.0
    return int(count or 0), max(late, 0.0)


def events_by_type(session: Session) -> dict[str, int]:
    return _by_status(session, Event.type)


def events_since(session: Session, since: datetime) -> int:
    return int(
        session.scalar(select(func.count()).select_from(Event).where(Event.received_at >= since))
        or 0
    )


def handoffs_by_status(session: Session) -> dict[str, int]:
    return _by_status(session, Handoff.status)


def handoffs_overdue(session: Session, now: datetime) -> int:
    """Open handoffs past their SLA (`handoff.is_overdue`, counted in SQL)."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Handoff)
            .where(Handoff.status == HandoffStatus.OPEN, Handoff.sla_due_at <= now)
        )
        or 0
    )


def notifications_by_status(session: Session) -> dict[str, int]:
    return _by_status(session, Notification.status)


def read_figures(session: Session, now: datetime) -> Figures:
    due, oldest = enrollments_due(session, now)
    return Figures(
        sends=sends_by_status(session),
        sends_due=sends_due(session, now),
        sends_held=sends_held(session),
        sends_throttled=sends_held(session, "throttled: "),
        enrollments=enrollments_by_status(session),
        enrollments_due=due,
        oldest_due_seconds=oldest,
        events=events_by_type(session),
        events_recent=events_since(session, now - RECENT_EVENTS),
        handoffs=handoffs_by_status(session),
        handoffs_overdue=handoffs_overdue(session, now),
        notifications=notifications_by_status(session),
    )

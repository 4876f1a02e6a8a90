"""Every row that names a person, for a GDPR export or an erasure (`nurture.tools.privacy`
decides what to keep)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import DeclarativeBase, Session

from nurture.store.models import (
    Enrollment,
    Event,
    ExperimentArm,
    Handoff,
    Notification,
    ScoreEntry,
    SegmentMember,
    Send,
    StageHistory,
)
from nurture.store.statuses import SendStatus

#: The tables holding rows about one contact, under the names an export uses.
CONTACT_TABLES: tuple[tuple[str, type[DeclarativeBase]], ...] = (
    ("stage_history", StageHistory),
    ("events", Event),
    ("score_ledger", ScoreEntry),
    ("enrollments", Enrollment),
    ("sends", Send),
    ("handoffs", Handoff),
    ("notifications", Notification),
    ("experiment_arms", ExperimentArm),  # the variant of each send is in `sends`
    ("segment_members", SegmentMember),
)


def as_dict(row: DeclarativeBase) -> dict[str, Any]:
    """Every column of a row, JSON-ready."""
    data: dict[str, Any] = {}
    for column in row.__table__.columns:
        value = getattr(row, column.key)
        data[column.key] = value.isoformat() if isinstance(value, datetime) else value
    return data


def rows_about(session: Session, contact_id: int) -> dict[str, list[dict[str, Any]]]:
    """Each table's rows about the contact, every column, oldest first."""
    found = {}
    for key, model in CONTACT_TABLES:
        table = model.__table__
        query = select(model).where(table.c.contact_id == contact_id).order_by(table.c.id)
        found[key] = [as_dict(r) for r in session.scalars(query)]
    return found


def events_of(session: Session, contact_id: int) -> Sequence[Event]:
    return session.scalars(select(Event).where(Event.contact_id == contact_id)).all()


def handoffs_of(session: Session, contact_id: int) -> Sequence[Handoff]:
    return session.scalars(select(Handoff).where(Handoff.contact_id == contact_id)).all()


def notifications_of(session: Session, contact_id: int | None) -> Sequence[Notification]:
    """The notifications about the contact (None: the ones about nobody, the digests)."""
    column = Notification.contact_id
    match = column.is_(None) if contact_id is None else column == contact_id
    return session.scalars(select(Notification).where(match)).all()


def forget_sends(session: Session, contact_id: int) -> int:
    """The contact's sends lose their subject and error; one not yet sent is skipped
    for good. How many sends the contact had."""
    sends = session.execute(
        update(Send)
        .where(Send.contact_id == contact_id)
        .values(subject=None, error=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Send)
        .where(Send.contact_id == contact_id, Send.status == SendStatus.CLAIMED)
        .values(status=SendStatus.SKIPPED, error="erased", next_attempt_at=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(sends, "rowcount", 0) or 0)

"""The outbox of messages to sales and CRMs (`notifications`): queue, due, lease."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, or_, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from nurture.store.models import (
    Notification,
)
from nurture.store.sql import json_rows, on_postgresql
from nurture.store.statuses import NotificationStatus

_notifications = cast(Table, Notification.__table__)


_INSERT_NOTIFICATIONS = text(
    "INSERT INTO notifications (dedupe_key, kind, topic, target, template, handoff_id,"
    " contact_id, payload, status, attempts, next_attempt_at, created_at, log)"
    " SELECT r.dedupe_key, r.kind, r.topic, r.target, r.template, r.handoff_id, r.contact_id,"
    " r.payload, r.status, r.attempts, r.next_attempt_at, r.created_at, r.log"
    " FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(dedupe_key text,"
    " kind text, topic text, target text, template text, handoff_id bigint, contact_id bigint,"
    " payload jsonb, status text, attempts int, next_attempt_at timestamptz,"
    " created_at timestamptz, log jsonb)"
    " ON CONFLICT (dedupe_key) DO NOTHING"
)


def insert_notifications(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Queue notifications, each unless one with its dedupe key exists."""
    if not rows:
        return
    if on_postgresql(session):
        session.execute(_INSERT_NOTIFICATIONS, {"rows": json_rows(rows)})
        return
    statement = sqlite.insert(_notifications).on_conflict_do_nothing(index_elements=["dedupe_key"])
    session.execute(statement, [dict(r) for r in rows])


def any_queued(session: Session, key_pattern: str) -> bool:
    """Whether a notification whose dedupe key matches this LIKE pattern exists."""
    found = session.scalar(
        select(Notification.id).where(Notification.dedupe_key.like(key_pattern)).limit(1)
    )
    return found is not None


def due_notifications(session: Session, now: datetime, limit: int) -> list[int]:
    """Pending notifications due now and not leased, oldest due first."""
    return list(
        session.scalars(
            select(Notification.id)
            .where(
                Notification.status == NotificationStatus.PENDING,
                Notification.next_attempt_at <= now,
                or_(Notification.lease_until.is_(None), Notification.lease_until < now),
            )
            .order_by(Notification.next_attempt_at)
            .limit(limit)
        )
    )


def lease_notification(
    session: Session, notification_id: int, now: datetime, until: datetime
) -> bool:
    """Take a pending notification for one attempt (counted); False if someone else has it."""
    leased = session.execute(
        update(Notification)
        .where(
            Notification.id == notification_id,
            Notification.status == NotificationStatus.PENDING,
            or_(Notification.lease_until.is_(None), Notification.lease_until < now),
        )
        .values(lease_until=until, attempts=Notification.attempts + 1)
        .returning(Notification.id)
    ).first()
    return leased is not None


def notification_by_id(session: Session, notification_id: int) -> Notification | None:
    return session.get(Notification, notification_id)


def next_notification_due(session: Session) -> datetime | None:
    """When the earliest pending notification is due."""
    return session.scalar(
        select(func.min(Notification.next_attempt_at)).where(
            Notification.status == NotificationStatus.PENDING
        )
    )

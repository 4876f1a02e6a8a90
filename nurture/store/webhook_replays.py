"""Signed webhooks already accepted: one row per replay key, shared by every process.

`claim` is an insert-if-absent on the primary key, run in the transaction
that records the webhook's events: of several concurrent posts of one signed
request (one Mailgun token, one SNS message), exactly one inserts the row and
goes on; the others find it (on PostgreSQL they wait for the first to commit,
on SQLite for its write lock) and are refused. If recording fails, the claim
rolls back with it, so the provider's retry is not taken for a replay.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete
from sqlalchemy.orm import Session

from nurture.store.models import WebhookReplay
from nurture.store.sql import insert_ignore

#: The longest replay key kept (longer keys are hashed by the caller).
MAX_KEY = 255


def claim(session: Session, key: str, now: datetime, expires_at: datetime) -> bool:
    """True if `key` was not seen (or only expired): it is now taken until `expires_at`."""
    if len(key) > MAX_KEY:
        raise ValueError(f"a replay key is at most {MAX_KEY} characters")
    session.execute(
        delete(WebhookReplay).where(WebhookReplay.key == key, WebhookReplay.expires_at <= now)
    )
    table = cast(Table, WebhookReplay.__table__)
    statement = insert_ignore(
        session, table, {"key": key, "seen_at": now, "expires_at": expires_at}, ["key"]
    ).returning(table.c.key)
    return session.execute(statement).scalar() is not None


def forget_expired(session: Session, now: datetime, limit: int = 10_000) -> int:
    """Expired keys: deleted, at most `limit` at a time (the oldest first)."""
    oldest = (
        WebhookReplay.__table__.select()
        .with_only_columns(WebhookReplay.key)
        .where(WebhookReplay.expires_at <= now)
        .order_by(WebhookReplay.expires_at)
        .limit(limit)
        .scalar_subquery()
    )
    result = session.execute(delete(WebhookReplay).where(WebhookReplay.key.in_(oldest)))
    return int(getattr(result, "rowcount", 0) or 0)

"""The score ledger: every change of a contact's score, one row each (`score_ledger`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select, text
from sqlalchemy.orm import Session

from nurture.store.models import (
    ScoreEntry,
)
from nurture.store.sql import among, json_rows, on_postgresql

_ledger = cast(Table, ScoreEntry.__table__)


_INSERT_LEDGER = text(
    "INSERT INTO score_ledger (contact_id, ledger_key, rule, kind, points, score_after, at,"
    " event_id)"
    " SELECT r.contact_id, r.ledger_key, r.rule, r.kind, r.points, r.score_after, r.at,"
    " r.event_id"
    " FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(contact_id bigint, ledger_key text,"
    " rule text, kind text, points float8, score_after float8, at timestamptz, event_id text)"
)


def insert_ledger(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Score ledger rows, all in one statement (a duplicate `ledger_key` fails the batch)."""
    if not rows:
        return
    if on_postgresql(session):
        session.execute(_INSERT_LEDGER, {"rows": json_rows(rows)})
    else:
        session.execute(insert(_ledger), list(rows))


def rule_uses(
    session: Session,
    contact_ids: Iterable[int],
    rules: Sequence[str],
    since: datetime | None,
) -> list[tuple[int, str, datetime]]:
    """(contact, rule, when) of each time these engagement rules scored for these
    contacts (since `since`, if given): what the caps count."""
    query = select(_ledger.c.contact_id, _ledger.c.rule, _ledger.c.at).where(
        among(session, _ledger.c.contact_id, contact_ids),
        _ledger.c.rule.in_(list(rules)),
        _ledger.c.kind == "engagement",
    )
    if since is not None:
        query = query.where(_ledger.c.at >= since)
    return [(contact_id, rule, at) for contact_id, rule, at in session.execute(query)]


def ledger_of(session: Session, contact_id: int) -> list[ScoreEntry]:
    """A contact's ledger rows, oldest first: what `explain` shows and `replay` checks."""
    return list(
        session.scalars(
            select(ScoreEntry)
            .where(ScoreEntry.contact_id == contact_id)
            .order_by(ScoreEntry.at, ScoreEntry.id)
        )
    )


def points_to_revoke(session: Session, event_ids: Sequence[str]) -> list[ScoreEntry]:
    """The engagement points these events earned and that were not taken back yet."""
    if not event_ids:
        return []
    earned = list(
        session.scalars(
            select(ScoreEntry)
            .where(ScoreEntry.event_id.in_(list(event_ids)), ScoreEntry.kind == "engagement")
            .order_by(ScoreEntry.at, ScoreEntry.id)
        )
    )
    taken = set(
        session.scalars(
            select(ScoreEntry.ledger_key).where(
                ScoreEntry.ledger_key.in_([f"revoke:{row.ledger_key}" for row in earned])
            )
        )
    )
    return [row for row in earned if f"revoke:{row.ledger_key}" not in taken]

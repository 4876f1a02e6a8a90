"""The event log: insert once by `event_id`, read back for `wait_for` and for trust.

Every door's events arrive here through the ingest; the reads serve the
executor (what a contact did since it began waiting), the traffic
classifier (the earlier opens and clicks of the same emails) and `explain`
(a contact's opens and clicks with their class, and the email they were about).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, func, select, text, update
from sqlalchemy.orm import Session

from nurture.store.models import Event, Send
from nurture.store.sql import among, insert_ignore, json_rows, on_postgresql

_events = cast(Table, Event.__table__)


_INSERT_EVENTS = text(
    "INSERT INTO events (event_id, type, at, contact_id, properties, raw, source, received_at,"
    " traffic, traffic_reason)"
    " SELECT r.event_id, r.type, r.at, r.contact_id, coalesce(r.properties, '{}'), r.raw,"
    " r.source, r.received_at, coalesce(r.traffic, 'human'), r.traffic_reason"
    " FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(event_id text, type text,"
    " at timestamptz, contact_id bigint, properties jsonb, raw jsonb, source text,"
    " received_at timestamptz, traffic text, traffic_reason text)"
    " ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)


def insert_events(session: Session, rows: Sequence[Mapping[str, Any]]) -> set[str] | None:
    """PostgreSQL: insert events never seen (by `event_id`); the ids actually inserted.

    None elsewhere: the caller's portable statement applies.
    """
    if not on_postgresql(session):
        return None
    if not rows:
        return set()
    return set(session.execute(_INSERT_EVENTS, {"rows": json_rows(rows)}).scalars())


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


def record_events(session: Session, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Insert events whose id was never seen; returns the ids actually inserted."""
    if not rows:
        return set()

    # PostgreSQL: the rows as one JSON document, one statement whatever the batch size.
    inserted = insert_events(session, rows)
    if inserted is not None:
        return inserted
    table = cast(Table, Event.__table__)
    # Rows as executemany parameters, as in `claim_sends`: inlined with `.values(rows)`
    # the statement was compiled afresh for every batch (`benchmarks/ingest.py`).
    statement = insert_ignore(session, table, None, ["event_id"]).returning(table.c.event_id)
    return {row.event_id for row in session.execute(statement, [dict(r) for r in rows])}


def signals_since(
    session: Session, contact_ids: set[int], types: Sequence[str], since: datetime
) -> list[Event]:
    """These contacts' events of these types from `since` on, oldest first (the earlier
    opens and clicks the traffic classifier compares a new one with)."""
    if not contact_ids:
        return []
    return list(
        session.scalars(
            select(Event)
            .where(
                among(session, Event.contact_id, contact_ids),
                Event.at >= since,
                Event.type.in_(list(types)),
            )
            .order_by(Event.at, Event.id)
        )
    )


def reclassify(session: Session, event_ids: Sequence[str], traffic: str, reason: str) -> None:
    """Mark recorded events as another class (a click found to be part of a burst)."""
    if event_ids:
        session.execute(
            update(Event)
            .where(Event.event_id.in_(list(event_ids)))
            .values(traffic=traffic, traffic_reason=reason)
            .execution_options(synchronize_session=False)
        )


@dataclass(frozen=True)
class Signal:
    """One of a contact's opens or clicks as `explain` shows it: its class, and the email
    it was about (from its send, else from the template it names)."""

    event_id: str
    type: str
    at: datetime
    traffic: str
    traffic_reason: str | None
    workflow: str | None
    template: str | None
    url: str | None


def signals_of(
    session: Session, contact_id: int, types: Sequence[str], limit: int
) -> tuple[list[Signal], int]:
    """The contact's latest `limit` events of these types (oldest first), and how many
    there are in all."""
    where = (Event.contact_id == contact_id, Event.type.in_(list(types)))
    total = session.scalar(select(func.count()).select_from(Event).where(*where))
    rows = _signals(session, *where, newest=limit)
    return rows, int(total or 0)


def signals_named(session: Session, contact_id: int, event_ids: Collection[str]) -> list[Signal]:
    """The contact's events with these ids (a revoked ledger row's cause), oldest first."""
    if not event_ids:
        return []
    return _signals(session, Event.contact_id == contact_id, Event.event_id.in_(list(event_ids)))


def _signals(
    session: Session, *where: ColumnElement[bool], newest: int | None = None
) -> list[Signal]:
    send_id = Event.properties["send_id"].as_integer()
    query = (
        select(Event, Send.workflow, Send.template)
        .outerjoin(Send, Send.id == send_id)
        .where(*where)
        .order_by(Event.at.desc(), Event.id.desc())
    )
    if newest is not None:
        query = query.limit(newest)
    found = [
        Signal(
            event.event_id,
            event.type,
            event.at,
            event.traffic,
            event.traffic_reason,
            workflow or _text(event.properties.get("workflow")),
            template or _text(event.properties.get("template")),
            _text(event.properties.get("url")),
        )
        for event, workflow, template in session.execute(query)
    ]
    return found[::-1]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None

"""The statements of bulk event ingest: a batch's rows in a handful of statements.

A batch of 1,000 events touches hundreds of contacts, writes a thousand
events and as many ledger rows, and may open dozens of handoffs. Row by row
that was ~800 statements per batch; here each kind of write is one statement
for the whole batch and each kind of read one query for all its contacts.

On PostgreSQL the bulk writes pass their rows as one JSON document, read back
with `jsonb_to_recordset`: the SQL text never changes with the number of
rows, so it is parsed and planned once (psycopg prepares it), and the rows
cost one `json.dumps` in C. A multi-row ``VALUES`` is a new, long statement
for every batch; an executemany is one statement per row on the server; and
arrays of text are escaped element by element in Python by the driver.
Elsewhere (SQLite, the embedded default) the same functions fall back to
executemany, which is what SQLite is fast at.

Nothing here commits; the caller owns the transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    Integer,
    Table,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstanceState, Session, attributes

from nurture.store.enrollments import among, json_rows
from nurture.store.models import (
    Contact,
    Event,
    Handoff,
    Notification,
    RoundRobin,
    ScoreEntry,
    Send,
    StageHistory,
    UTCDateTime,
)

_contacts = cast(Table, Contact.__table__)
_events = cast(Table, Event.__table__)
_ledger = cast(Table, ScoreEntry.__table__)
_history = cast(Table, StageHistory.__table__)
_handoffs = cast(Table, Handoff.__table__)
_notifications = cast(Table, Notification.__table__)
_round_robin = cast(Table, RoundRobin.__table__)
_sends = cast(Table, Send.__table__)


def _on_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


# --- events -------------------------------------------------------------------------

_INSERT_EVENTS = text(
    "INSERT INTO events (event_id, type, at, contact_id, properties, raw, source, received_at)"
    " SELECT r.event_id, r.type, r.at, r.contact_id, coalesce(r.properties, '{}'), r.raw,"
    " r.source, r.received_at"
    " FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(event_id text, type text,"
    " at timestamptz, contact_id bigint, properties jsonb, raw jsonb, source text,"
    " received_at timestamptz)"
    " ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)


def insert_events(session: Session, rows: Sequence[Mapping[str, Any]]) -> set[str] | None:
    """PostgreSQL: insert events never seen (by `event_id`); the ids actually inserted.

    None elsewhere: the caller's portable statement applies.
    """
    if not _on_postgresql(session):
        return None
    if not rows:
        return set()
    return set(session.execute(_INSERT_EVENTS, {"rows": json_rows(rows)}).scalars())


# --- the score ledger and stage history -------------------------------------------------

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
    if _on_postgresql(session):
        session.execute(_INSERT_LEDGER, {"rows": json_rows(rows)})
    else:
        session.execute(insert(_ledger), list(rows))


def insert_history(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        session.execute(insert(_history), list(rows))


# --- contacts: the batch's changes in a few statements ---------------------------------


def _pg_type(column: Any) -> str:
    kind = column.type
    if isinstance(kind, JSON):
        return "jsonb"
    if isinstance(kind, UTCDateTime):
        return "timestamptz"
    if isinstance(kind, Float):
        return "float8"
    if isinstance(kind, Integer | BigInteger):
        return "int8"
    return "text"


#: Every contact column a batch may change, with its type in `jsonb_to_recordset`.
_WRITTEN: dict[str, str] = {
    column.key: _pg_type(column)
    for column in _contacts.columns
    if column.key not in ("id", "created_at", "updated_at")
}
_WRITTEN_KEYS = frozenset(_WRITTEN)


def save_contacts(session: Session, contacts: Iterable[Contact], now: datetime) -> int:
    """Write what changed on these contacts, one statement per set of changed columns.

    The ORM would write them too, but one UPDATE per contact at every autoflush:
    half of a batch's statements. Contacts still in the session are told their
    values are stored, so no flush repeats them; detached ones (`loose_contacts`)
    need not be. Returns how many contacts were written.
    """
    groups: dict[tuple[str, ...], list[InstanceState[Contact]]] = {}
    for contact in contacts:
        state = attributes.instance_state(contact)
        if not state.modified or state.key is None:
            continue  # unchanged, or not yet inserted (the flush will insert it whole)
        changed = _WRITTEN_KEYS.difference(state.unmodified_intersection(_WRITTEN_KEYS))
        if changed:
            groups.setdefault(tuple(sorted(changed)), []).append(state)
    written = 0
    for columns, states in groups.items():
        # The instance dicts, not the attributes: no instrumentation per value read.
        rows = [{"id": s.dict["id"], **{name: s.dict[name] for name in columns}} for s in states]
        if _on_postgresql(session):
            parameters = {"rows": json_rows(rows), "updated_at": now}
            session.execute(_update_contacts_statement(columns), parameters)
        else:
            session.execute(
                _update_contact_statement(columns),
                [
                    {"b_id": row["id"], "updated_at": now, **{name: row[name] for name in columns}}
                    for row in rows
                ],
            )
        for state, row in zip(states, rows, strict=True):
            if state.session_id is not None:
                contact = cast(Contact, state.obj())
                for name in columns:
                    attributes.set_committed_value(contact, name, row[name])
                attributes.set_committed_value(contact, "updated_at", now)
        written += len(states)
    return written


@lru_cache(maxsize=64)
def _update_contacts_statement(columns: tuple[str, ...]) -> Any:
    assignments = ", ".join(f"{name} = r.{name}" for name in columns)
    types = ", ".join(f"{name} {_WRITTEN[name]}" for name in columns)
    return text(
        f"UPDATE contacts SET {assignments}, updated_at = :updated_at"
        f" FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(id bigint, {types})"
        " WHERE contacts.id = r.id"
    )


@lru_cache(maxsize=64)
def _update_contact_statement(columns: tuple[str, ...]) -> Any:
    return (
        update(_contacts)
        .where(_contacts.c.id == bindparam("b_id"))
        .values({name: bindparam(name) for name in (*columns, "updated_at")})
    )


# --- handoffs -----------------------------------------------------------------------------


def contacts_with_open_handoff(session: Session, contact_ids: Iterable[int]) -> set[int]:
    wanted = set(contact_ids)
    if not wanted:
        return set()
    statement = select(_handoffs.c.contact_id).where(
        among(session, _handoffs.c.contact_id, wanted), _handoffs.c.status == "open"
    )
    return set(session.execute(statement).scalars())


def advance_round_robin(session: Session, name: str, turns: int) -> int | None:
    """Take `turns` turns of a rotation at once; its position after them (None: no row yet)."""
    statement = (
        update(_round_robin)
        .where(_round_robin.c.name == name)
        .values(position=_round_robin.c.position + turns)
        .returning(_round_robin.c.position)
    )
    position = session.execute(statement).scalar()
    return None if position is None else int(position)


@dataclass(frozen=True)
class TimelineEvent:
    at: datetime
    type: str
    properties: Mapping[str, Any]


@dataclass(frozen=True)
class HistoryLine:
    at: datetime
    from_stage: str | None
    to_stage: str
    cause: str


@dataclass(frozen=True)
class SentEmail:
    sent_at: datetime | None
    template: str
    subject: str | None


@dataclass
class SnapshotData:
    """What a handoff snapshot reads from the database, for one contact."""

    events: list[TimelineEvent]
    rule_points: list[tuple[str, float]]
    history: list[HistoryLine]
    emails: list[SentEmail]


def snapshot_data(
    session: Session, contact_ids: Sequence[int], events: int = 50
) -> dict[int, SnapshotData]:
    """The latest `events` events, ledger lines, stage history and emails of each contact:
    one query each for all the contacts, not four per handoff."""
    found = {cid: SnapshotData([], [], [], []) for cid in contact_ids}
    if not found:
        return found
    ids = list(found)
    rank = (
        func.row_number()
        .over(
            partition_by=_events.c.contact_id,
            order_by=(_events.c.at.desc(), _events.c.id.desc()),
        )
        .label("rank")
    )
    latest = (
        select(_events.c.contact_id, _events.c.at, _events.c.type, _events.c.properties, rank)
        .where(among(session, _events.c.contact_id, ids))
        .subquery()
    )
    timeline = session.execute(
        select(latest.c.contact_id, latest.c.at, latest.c.type, latest.c.properties)
        .where(latest.c.rank <= events)
        .order_by(latest.c.contact_id, latest.c.rank)
    )
    for contact_id, at, kind, properties in timeline:
        found[contact_id].events.append(TimelineEvent(at, kind, properties or {}))
    ledger = session.execute(
        select(_ledger.c.contact_id, _ledger.c.rule, _ledger.c.points)
        .where(among(session, _ledger.c.contact_id, ids), _ledger.c.kind != "decay")
        .order_by(_ledger.c.id)
    )
    for contact_id, rule, points in ledger:
        found[contact_id].rule_points.append((rule, points))
    history = session.execute(
        select(
            _history.c.contact_id,
            _history.c.at,
            _history.c.from_stage,
            _history.c.to_stage,
            _history.c.cause,
        )
        .where(among(session, _history.c.contact_id, ids))
        .order_by(_history.c.contact_id, _history.c.at, _history.c.id)
    )
    for contact_id, at, from_stage, to_stage, cause in history:
        found[contact_id].history.append(HistoryLine(at, from_stage, to_stage, cause))
    emails = session.execute(
        select(_sends.c.contact_id, _sends.c.sent_at, _sends.c.template, _sends.c.subject)
        .where(among(session, _sends.c.contact_id, ids), _sends.c.status == "sent")
        .order_by(_sends.c.contact_id, _sends.c.sent_at, _sends.c.id)
    )
    for contact_id, sent_at, template, subject in emails:
        found[contact_id].emails.append(SentEmail(sent_at, template, subject))
    return found


_INSERT_HANDOFFS = text(
    "INSERT INTO handoffs (contact_id, status, owner, created_at, sla_due_at, snapshot, actions)"
    " SELECT r.contact_id, r.status, r.owner, r.created_at, r.sla_due_at, r.snapshot, r.actions"
    " FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(contact_id bigint,"
    " status text, owner text, created_at timestamptz, sla_due_at timestamptz, snapshot jsonb,"
    " actions jsonb)"
    " RETURNING id, contact_id"
)


def insert_handoffs(session: Session, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert handoffs (at most one per contact); their ids, in the order of `rows`."""
    if not rows:
        return []
    if _on_postgresql(session):
        inserted = session.execute(_INSERT_HANDOFFS, {"rows": json_rows(rows)})
        by_contact = {int(contact_id): int(handoff_id) for handoff_id, contact_id in inserted}
        return [by_contact[row["contact_id"]] for row in rows]
    statement = insert(_handoffs).returning(_handoffs.c.id, sort_by_parameter_order=True)
    return [int(i) for i in session.execute(statement, [dict(r) for r in rows]).scalars()]


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
    if _on_postgresql(session):
        session.execute(_INSERT_NOTIFICATIONS, {"rows": json_rows(rows)})
        return
    statement = sqlite.insert(_notifications).on_conflict_do_nothing(index_elements=["dedupe_key"])
    session.execute(statement, [dict(r) for r in rows])


def create_round_robin(session: Session, name: str) -> None:
    """A rotation's row at position 0, unless another worker created it first."""
    module: Any = postgresql if _on_postgresql(session) else sqlite
    statement = module.insert(_round_robin).values(name=name, position=0)
    session.execute(statement.on_conflict_do_nothing(index_elements=["name"]))


def loose_contacts(
    session: Session, emails: Iterable[str], ids: Iterable[int]
) -> tuple[list[Contact], list[Contact]]:
    """The contacts with these addresses, and with these ids, outside the session (unless
    it held them already: a caller's own object stays the caller's).

    A batch changes hundreds of contacts and writes them itself (`save_contacts`):
    in the session, each would cost the ORM's bookkeeping again at every flush
    until the transaction ends. They are read on the session's connection (same
    transaction) by a session of their own, closed at once, which leaves them
    detached; expunging them one by one costs more than loading them.
    """
    held = {obj.id: obj for obj in session.identity_map.values() if isinstance(obj, Contact)}
    loader = Session(bind=session.connection(), autoflush=False)
    try:
        found: list[list[Contact]] = []
        for column, values in ((_contacts.c.email, list(emails)), (_contacts.c.id, list(ids))):
            query = select(Contact).where(among(session, column, values))
            found.append(list(loader.scalars(query)) if values else [])
    finally:
        loader.close()
    by_email, by_id = ([held.get(c.id, c) for c in contacts] for contacts in found)
    return by_email, by_id

"""Handoffs (`handoffs`, `round_robin`): opening in bulk, the snapshot's data, lists, locks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Table,
    case,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from nurture.store.models import (
    Contact,
    Event,
    Handoff,
    RoundRobin,
    ScoreEntry,
    Send,
    StageHistory,
)
from nurture.store.sql import among, json_rows, on_postgresql
from nurture.store.statuses import HandoffStatus, SendStatus

_events = cast(Table, Event.__table__)


_ledger = cast(Table, ScoreEntry.__table__)


_history = cast(Table, StageHistory.__table__)


_handoffs = cast(Table, Handoff.__table__)


_round_robin = cast(Table, RoundRobin.__table__)


_sends = cast(Table, Send.__table__)


def contacts_with_open_handoff(session: Session, contact_ids: Iterable[int]) -> set[int]:
    wanted = set(contact_ids)
    if not wanted:
        return set()
    statement = select(_handoffs.c.contact_id).where(
        among(session, _handoffs.c.contact_id, wanted), _handoffs.c.status == HandoffStatus.OPEN
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
    """One of a contact's latest events, for the timeline of a handoff snapshot."""

    at: datetime
    type: str
    properties: Mapping[str, Any]


@dataclass(frozen=True)
class HistoryLine:
    """One stage change of a contact, for the stage history of a handoff snapshot."""

    at: datetime
    from_stage: str | None
    to_stage: str
    cause: str


@dataclass(frozen=True)
class SentEmail:
    """One email a contact was sent, for the emails received in a handoff snapshot."""

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
        .where(among(session, _sends.c.contact_id, ids), _sends.c.status == SendStatus.SENT)
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
    if on_postgresql(session):
        inserted = session.execute(_INSERT_HANDOFFS, {"rows": json_rows(rows)})
        by_contact = {int(contact_id): int(handoff_id) for handoff_id, contact_id in inserted}
        return [by_contact[row["contact_id"]] for row in rows]
    statement = insert(_handoffs).returning(_handoffs.c.id, sort_by_parameter_order=True)
    return [int(i) for i in session.execute(statement, [dict(r) for r in rows]).scalars()]


def create_round_robin(session: Session, name: str) -> None:
    """A rotation's row at position 0, unless another worker created it first."""
    module: Any = postgresql if on_postgresql(session) else sqlite
    statement = module.insert(_round_robin).values(name=name, position=0)
    session.execute(statement.on_conflict_do_nothing(index_elements=["name"]))


def handoff_by_id(session: Session, handoff_id: int, *, lock: bool = False) -> Handoff | None:
    """`lock` holds the row until commit: two people deciding at once, one waits."""
    return session.get(Handoff, handoff_id, with_for_update=lock or None)


def overdue_handoffs(session: Session, now: datetime) -> Sequence[Handoff]:
    """Open handoffs past their SLA (reminded or escalated ones too: the caller checks)."""
    return session.scalars(
        select(Handoff).where(Handoff.status == HandoffStatus.OPEN, Handoff.sla_due_at <= now)
    ).all()


def handoffs_created_between(
    session: Session, since: datetime, until: datetime
) -> Sequence[Handoff]:
    """Handoffs opened in [since, until), by owner then time (the weekly digest)."""
    return session.scalars(
        select(Handoff)
        .where(Handoff.created_at >= since, Handoff.created_at < until)
        .order_by(Handoff.owner, Handoff.created_at)
    ).all()


def handoffs_with_contacts(
    session: Session,
    status: str | None = None,
    owner: str | None = None,
    limit: int = 200,
) -> list[tuple[Handoff, Contact]]:
    """Handoffs and their contacts, as every list shows them: open ones first, the most
    urgent first (no SLA last); then the latest decisions. `owner` matches without case."""
    query = select(Handoff, Contact).join(Contact, Contact.id == Handoff.contact_id)
    if status is not None:
        query = query.where(Handoff.status == status)
    if owner:
        query = query.where(func.lower(Handoff.owner) == owner.strip().lower())
    is_open = Handoff.status == HandoffStatus.OPEN
    due = case((is_open, Handoff.sla_due_at), else_=None)
    decided = func.coalesce(Handoff.accepted_at, Handoff.rejected_at, Handoff.created_at)
    query = query.order_by(
        case((is_open, 0), else_=1), due.is_(None), due, decided.desc(), Handoff.id.desc()
    )
    return [(handoff, contact) for handoff, contact in session.execute(query.limit(limit))]


def count_by_status(session: Session, now: datetime, owner: str | None = None) -> dict[str, int]:
    """How many handoffs per status, and under "overdue" how many open ones are past
    their SLA."""
    query = select(Handoff.status, func.count()).group_by(Handoff.status)
    overdue = select(func.count()).where(
        Handoff.status == HandoffStatus.OPEN,
        Handoff.sla_due_at.is_not(None),
        Handoff.sla_due_at <= now,
    )
    if owner:
        query = query.where(func.lower(Handoff.owner) == owner.strip().lower())
        overdue = overdue.where(func.lower(Handoff.owner) == owner.strip().lower())
    found = {str(status): int(number) for status, number in session.execute(query).all()}
    found["overdue"] = int(session.scalar(overdue.select_from(Handoff)) or 0)
    return found


def owners(session: Session) -> list[str]:
    """Every owner with a handoff, in order."""
    found = session.scalars(
        select(Handoff.owner).where(Handoff.owner.is_not(None)).distinct().order_by(Handoff.owner)
    ).all()
    return [o for o in found if o]


def lock_handoff(session: Session, handoff_id: int) -> None:
    """Lock the handoff's row for the rest of the transaction (a no-op on SQLite): two
    people deciding one handoff at once, the second waits and then sees the first's."""
    session.execute(select(Handoff.id).where(Handoff.id == handoff_id).with_for_update())


def open_handoff_for(session: Session, contact_id: int) -> Handoff | None:
    """The contact's open handoff, if it has one (there is at most one)."""
    return session.scalars(
        select(Handoff).where(
            Handoff.contact_id == contact_id, Handoff.status == HandoffStatus.OPEN
        )
    ).first()


def next_sla_deadlines(session: Session) -> tuple[datetime | None, datetime | None]:
    """The earliest SLA deadline of an open handoff not yet reminded, and of one reminded
    but not yet escalated."""
    open_ = Handoff.status == HandoffStatus.OPEN
    unreminded = session.scalar(
        select(func.min(Handoff.sla_due_at)).where(open_, Handoff.reminded_at.is_(None))
    )
    unescalated = session.scalar(
        select(func.min(Handoff.sla_due_at)).where(
            open_, Handoff.reminded_at.is_not(None), Handoff.escalated_at.is_(None)
        )
    )
    return unreminded, unescalated

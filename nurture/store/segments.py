"""Segment standings: who is in which segment, since when, and when to look again.

Reads serve the upkeep (`nurture.lifecycle.segments`: the standings and the
counted events of a batch's contacts, one statement each), the executor
(`in_segment`, `wait_for: {segment: …}`), `nurture segments` (sizes) and
`explain`. Writes happen only when something changed: a new standing, an
entry or exit (guarded by the flag it was decided from, so two writers never
both announce one change), or a new re-check moment.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from nurture.events import EventView
from nurture.store.models import Contact, Event, SegmentMember
from nurture.store.sql import among, insert_ignore

_members = cast(Table, SegmentMember.__table__)


@dataclass(frozen=True)
class Standing:
    """One contact's row for one segment, as read."""

    id: int
    contact_id: int
    segment: str
    member: bool
    entered_at: datetime | None
    left_at: datetime | None
    recheck_at: datetime | None


def _standing(row: Any) -> Standing:
    return Standing(
        row.id,
        row.contact_id,
        row.segment,
        bool(row.member),
        row.entered_at,
        row.left_at,
        row.recheck_at,
    )


_COLUMNS = (
    SegmentMember.id,
    SegmentMember.contact_id,
    SegmentMember.segment,
    SegmentMember.member,
    SegmentMember.entered_at,
    SegmentMember.left_at,
    SegmentMember.recheck_at,
)


def standings(session: Session, contact_ids: Collection[int]) -> dict[tuple[int, str], Standing]:
    """The rows of these contacts, by (contact, segment)."""
    if not contact_ids:
        return {}
    rows = session.execute(
        select(*_COLUMNS).where(among(session, SegmentMember.contact_id, contact_ids))
    )
    return {(row.contact_id, row.segment): _standing(row) for row in rows}


def standings_of(session: Session, contact_id: int) -> list[Standing]:
    """One contact's rows, by segment name (`explain`)."""
    rows = session.execute(
        select(*_COLUMNS)
        .where(SegmentMember.contact_id == contact_id)
        .order_by(SegmentMember.segment)
    )
    return [_standing(row) for row in rows]


def counted_events(
    session: Session, contact_ids: Collection[int], types: Collection[str], since: datetime | None
) -> dict[int, list[EventView]]:
    """These contacts' events of these types after `since` (None: ever), oldest first:
    what the segments' `events:` count."""
    if not contact_ids or not types:
        return {}
    query = select(
        Event.contact_id, Event.event_id, Event.type, Event.at, Event.properties, Event.traffic
    ).where(among(session, Event.contact_id, contact_ids), Event.type.in_(sorted(types)))
    if since is not None:
        query = query.where(Event.at > since)
    found: dict[int, list[EventView]] = {}
    for row in session.execute(query.order_by(Event.at, Event.id)):
        found.setdefault(row.contact_id, []).append(
            EventView(row.event_id, row.type, row.at, row.properties or {}, row.traffic)
        )
    return found


def insert_standings(session: Session, rows: Sequence[Mapping[str, Any]]) -> set[tuple[int, str]]:
    """Insert standings not yet stored; the (contact, segment) pairs actually inserted
    (another writer may have stored one first: it announced the change)."""
    if not rows:
        return set()
    statement = insert_ignore(session, _members, None, ["contact_id", "segment"]).returning(
        _members.c.contact_id, _members.c.segment
    )
    result = session.execute(statement, [dict(row) for row in rows])
    return {(row.contact_id, row.segment) for row in result}


def change_membership(
    session: Session, standing: Standing, member: bool, now: datetime, recheck_at: datetime | None
) -> bool:
    """Enter or leave, if the row still says what the decision was made from."""
    values: dict[str, Any] = {"member": member, "recheck_at": recheck_at}
    values["entered_at" if member else "left_at"] = now
    if member:
        values["left_at"] = None
    changed = session.execute(
        update(SegmentMember)
        .where(SegmentMember.id == standing.id, SegmentMember.member == standing.member)
        .values(**values)
        .returning(SegmentMember.id)
        .execution_options(synchronize_session=False)
    ).first()
    return changed is not None


def set_rechecks(session: Session, rechecks: Mapping[int, datetime | None]) -> None:
    """New re-check moments, by row id."""
    if rechecks:
        statement = (
            update(_members)
            .where(_members.c.id == bindparam("row_id"))
            .values(recheck_at=bindparam("moment"))
        )
        session.execute(
            statement,
            [{"row_id": row_id, "moment": moment} for row_id, moment in rechecks.items()],
        )


def claim_rechecks(session: Session, now: datetime, limit: int) -> list[int]:
    """The contacts of up to `limit` rows whose re-check is due, the moments cleared in
    this transaction (other schedulers skip the rows it holds: ``SKIP LOCKED``)."""
    due = (
        select(SegmentMember.id)
        .where(SegmentMember.recheck_at <= now)
        .order_by(SegmentMember.recheck_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    statement = (
        update(SegmentMember)
        .where(SegmentMember.id.in_(due.scalar_subquery()))
        .values(recheck_at=None)
        .returning(SegmentMember.contact_id)
        .execution_options(synchronize_session=False)
    )
    return sorted(set(session.scalars(statement)))


def next_recheck_at(session: Session) -> datetime | None:
    """The earliest re-check due (`simulate` stops its clock there)."""
    return session.scalar(
        select(SegmentMember.recheck_at)
        .where(SegmentMember.recheck_at.is_not(None))
        .order_by(SegmentMember.recheck_at)
        .limit(1)
    )


def segments_of(session: Session, contact_ids: Iterable[int]) -> dict[int, frozenset[str]]:
    """The segments each of these contacts is in now (contacts in none are left out)."""
    wanted = set(contact_ids)
    if not wanted:
        return {}
    found: dict[int, set[str]] = {}
    rows = session.execute(
        select(SegmentMember.contact_id, SegmentMember.segment).where(
            among(session, SegmentMember.contact_id, wanted), SegmentMember.member.is_(True)
        )
    )
    for contact_id, segment in rows:
        found.setdefault(contact_id, set()).add(segment)
    return {contact_id: frozenset(names) for contact_id, names in found.items()}


def sizes(session: Session) -> dict[str, int]:
    """How many contacts each segment holds now."""
    rows = session.execute(
        select(SegmentMember.segment, func.count())
        .where(SegmentMember.member.is_(True))
        .group_by(SegmentMember.segment)
    )
    return {segment: int(number) for segment, number in rows}


def contact_ids_after(session: Session, after: int, limit: int) -> list[int]:
    """Contact ids above `after`, in order: `nurture segments refresh` walks them in batches."""
    return list(
        session.scalars(
            select(Contact.id).where(Contact.id > after).order_by(Contact.id).limit(limit)
        )
    )


def forget_standings(session: Session, contact_id: int) -> int:
    """An erased contact leaves every segment without a trace (no exit announced)."""
    result = session.execute(delete(SegmentMember).where(SegmentMember.contact_id == contact_id))
    return int(cast(Any, result).rowcount)

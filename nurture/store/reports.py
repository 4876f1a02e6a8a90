"""The report's and `simulate`'s counts: GROUP BY in the database, rows for the medians.

`nurture.tools.reports` turns these into rates, medians and bands; nothing here
knows what a report shows, only what the tables hold for a period.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session, aliased

import nurture.clock as clock
from nurture.store.models import Contact, Enrollment, Event, Handoff, Send, StageHistory
from nurture.store.statuses import HandoffStatus, SendStatus


def contacts_per_stage(session: Session, first_stage: str) -> dict[str, int]:
    """Contacts now in each stage (NULL is the first stage; erased ones still count)."""
    stage = func.coalesce(Contact.stage, first_stage)
    return {
        name: int(n) for name, n in session.execute(select(stage, func.count()).group_by(stage))
    }


def stage_entries(session: Session, since: datetime, until: datetime) -> dict[str, int]:
    """Distinct contacts who entered each stage during [since, until)."""
    query = (
        select(StageHistory.to_stage, func.count(func.distinct(StageHistory.contact_id)))
        .where(StageHistory.at >= since, StageHistory.at < until)
        .group_by(StageHistory.to_stage)
    )
    return {name: int(n) for name, n in session.execute(query)}


def cohort(
    session: Session, stage: str, above: Sequence[str], since: datetime, until: datetime
) -> tuple[int, int]:
    """(entered, went on): distinct contacts who entered `stage` in the period, and how
    many of them later (up to now) entered one of the stages `above`."""
    entered = aliased(StageHistory)
    later = aliased(StageHistory)
    in_cohort = and_(entered.to_stage == stage, entered.at >= since, entered.at < until)
    went_on = exists().where(
        later.contact_id == entered.contact_id,
        later.to_stage.in_(list(above)),
        later.at >= entered.at,
        later.id != entered.id,
    )
    total = session.scalar(select(func.count(func.distinct(entered.contact_id))).where(in_cohort))
    converted = session.scalar(
        select(func.count(func.distinct(entered.contact_id))).where(in_cohort, went_on)
    )
    return int(total or 0), int(converted or 0)


def stays(
    session: Session, since: datetime, until: datetime
) -> list[tuple[str, datetime, datetime | None]]:
    """(stage, entered at, left at or None) of each stay in a stage that began in the
    period: it lasts until the contact's next move."""
    following = (
        func.lead(StageHistory.at)
        .over(partition_by=StageHistory.contact_id, order_by=(StageHistory.at, StageHistory.id))
        .label("left_at")
    )
    moves = select(
        StageHistory.to_stage.label("stage"), StageHistory.at.label("at"), following
    ).subquery()
    query = select(moves.c.stage, moves.c.at, moves.c.left_at).where(
        moves.c.at >= since, moves.c.at < until
    )
    return [
        (stage, _moment(at), _moment(left_at) if left_at is not None else None)
        for stage, at, left_at in session.execute(query)
    ]


def _moment(value: datetime | str) -> datetime:
    """Window functions bypass the column type: SQLite hands their results back as text."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return clock.as_utc(value)


def handoffs_by_status(session: Session, since: datetime, until: datetime) -> dict[str, int]:
    """Handoffs opened in the period, by status."""
    query = (
        select(Handoff.status, func.count())
        .where(Handoff.created_at >= since, Handoff.created_at < until)
        .group_by(Handoff.status)
    )
    return {status: int(n) for status, n in session.execute(query)}


def acceptance_waits(session: Session, since: datetime, until: datetime) -> list[float]:
    """Seconds from opening to acceptance of the accepted handoffs opened in the period."""
    rows = session.execute(
        select(Handoff.created_at, Handoff.accepted_at).where(
            Handoff.created_at >= since,
            Handoff.created_at < until,
            Handoff.status == HandoffStatus.ACCEPTED,
            Handoff.accepted_at.is_not(None),
        )
    ).all()
    return [(accepted - created).total_seconds() for created, accepted in rows if accepted]


def decided_scores(
    session: Session, since: datetime, until: datetime
) -> list[tuple[str, float | None]]:
    """(status, score at handoff from the snapshot) of the decided handoffs of the period."""
    query = select(Handoff.status, Handoff.snapshot[("score", "total")].as_float()).where(
        Handoff.created_at >= since,
        Handoff.created_at < until,
        Handoff.status.in_((HandoffStatus.ACCEPTED, HandoffStatus.REJECTED)),
    )
    return [
        (status, None if score is None else float(score))
        for status, score in session.execute(query)
    ]


def sent_per_email(
    session: Session, since: datetime, until: datetime, kinds: Sequence[str]
) -> tuple[list[tuple[str | None, str, int]], list[tuple[str | None, str, str, str, int]]]:
    """Per (workflow, template): the sends sent in the period, and per event kind among
    `kinds` and traffic class (human, machine, repeat) the sends that had one (any time;
    matched by `properties.send_id`)."""
    in_period = and_(Send.sent_at >= since, Send.sent_at < until, Send.status == SendStatus.SENT)
    key = (Send.workflow, Send.template)
    sent = select(*key, func.count()).where(in_period).group_by(*key)
    send_id = Event.properties["send_id"].as_integer()
    reacted = (
        select(*key, Event.type, Event.traffic, func.count(func.distinct(Send.id)))
        .join(Event, send_id == Send.id)
        .where(in_period, Event.type.in_(list(kinds)))
        .group_by(*key, Event.type, Event.traffic)
    )
    return (
        [(w, t, int(n)) for w, t, n in session.execute(sent)],
        [(w, t, k, c, int(n)) for w, t, k, c, n in session.execute(reacted)],
    )


def events_by_template(
    session: Session, since: datetime, until: datetime, kinds: Sequence[str]
) -> list[tuple[str | None, str, str, str, int]]:
    """Events of the period that name their email only by template (no send id: some
    ESP imports, simulations): (workflow, template, kind, traffic class, distinct contacts)."""
    send_id = Event.properties["send_id"].as_integer()
    template = Event.properties["template"].as_string()
    workflow = Event.properties["workflow"].as_string()
    query = (
        select(
            workflow,
            template,
            Event.type,
            Event.traffic,
            func.count(func.distinct(Event.contact_id)),
        )
        .where(
            send_id.is_(None),
            template.is_not(None),
            Event.at >= since,
            Event.at < until,
            Event.type.in_(list(kinds)),
        )
        .group_by(workflow, template, Event.type, Event.traffic)
    )
    return [(w, t, k, c, int(n)) for w, t, k, c, n in session.execute(query)]


# --- a simulation's outcome ---------------------------------------------------------------


def enrollment_outcomes(session: Session) -> list[tuple[str, str, str | None, int]]:
    """(workflow, status, exit reason, count) of every enrollment."""
    query = select(
        Enrollment.workflow, Enrollment.status, Enrollment.exit_reason, func.count()
    ).group_by(Enrollment.workflow, Enrollment.status, Enrollment.exit_reason)
    return [(w, s, r, int(n)) for w, s, r, n in session.execute(query)]


def events_by_traffic(session: Session, kinds: Sequence[str]) -> list[tuple[str, str, int]]:
    """(kind, traffic class, count) of every event of these kinds (opens and clicks)."""
    query = (
        select(Event.type, Event.traffic, func.count())
        .where(Event.type.in_(list(kinds)))
        .group_by(Event.type, Event.traffic)
    )
    return [(kind, traffic, int(n)) for kind, traffic, n in session.execute(query)]


def sent_per_template(session: Session) -> dict[str, int]:
    query = (
        select(Send.template, func.count())
        .where(Send.status == SendStatus.SENT)
        .group_by(Send.template)
    )
    return {template: int(n) for template, n in session.execute(query)}


def handoffs_per_owner(session: Session) -> dict[str | None, int]:
    query = select(Handoff.owner, func.count()).group_by(Handoff.owner)
    return {owner: int(n) for owner, n in session.execute(query)}

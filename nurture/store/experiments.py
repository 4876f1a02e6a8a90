"""Experiments in the database: groups drawn, a variant test's sends and what they
earned, winners decided.

The engine (`nurture.engine.winners`) and the report (`nurture.tools.experiments`)
read the same figures from here: a send counts once per kind of reaction, the
way the report's email figures do (matched by the event's `send_id`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, select
from sqlalchemy.orm import Session

from nurture.events import Traffic
from nurture.store.models import (
    Event,
    ExperimentArm,
    ExperimentWinner,
    Send,
    StageHistory,
)
from nurture.store.sql import among, insert_ignore
from nurture.store.statuses import SendStatus

_arms = cast(Table, ExperimentArm.__table__)
_winners = cast(Table, ExperimentWinner.__table__)


def assign_arms(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Keep the groups enrollments drew; a group already kept (a retried advance) stays."""
    if rows:
        statement = insert_ignore(session, _arms, None, ["enrollment_id", "experiment"])
        session.execute(statement, [dict(row) for row in rows])


@dataclass(frozen=True)
class VariantSend:
    """One email of a variant test that left."""

    id: int
    variant: str
    contact_id: int
    sent_at: datetime


def variant_sends(
    session: Session,
    workflow: str,
    step: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[VariantSend]:
    """The sent emails of the variant test at (workflow, step), those of [since, until) if given."""
    query = select(Send.id, Send.variant, Send.contact_id, Send.sent_at).where(
        Send.workflow == workflow,
        Send.step == step,
        Send.variant.is_not(None),
        Send.status == SendStatus.SENT,
    )
    if since is not None:
        query = query.where(Send.sent_at >= since)
    if until is not None:
        query = query.where(Send.sent_at < until)
    return [VariantSend(i, v, c, s) for i, v, c, s in session.execute(query) if v and s is not None]


def sends_with(
    session: Session, workflow: str, step: str, kinds: Sequence[str]
) -> dict[str, set[int]]:
    """Per event kind: the test's sends that had one. Opens and clicks count a person's
    only (`Traffic.HUMAN`): a scanner's click proves nothing about the email."""
    send_id = Event.properties["send_id"].as_integer()
    query = (
        select(Send.id, Event.type, Event.traffic)
        .join(Event, and_(Event.contact_id == Send.contact_id, send_id == Send.id))
        .where(
            Send.workflow == workflow,
            Send.step == step,
            Send.variant.is_not(None),
            Send.status == SendStatus.SENT,
            Event.type.in_(list(kinds)),
        )
    )
    found: dict[str, set[int]] = {kind: set() for kind in kinds}
    for send, kind, traffic in session.execute(query):
        if traffic == Traffic.HUMAN or kind not in _SIGNALS:
            found[kind].add(send)
    return found


_SIGNALS = frozenset({"email.opened", "email.clicked"})


def stage_entries(
    session: Session, contact_ids: Iterable[int], stages: Sequence[str], since: datetime
) -> dict[int, list[tuple[datetime, str]]]:
    """When each of these contacts entered one of `stages` (and which), from `since` on."""
    wanted = set(contact_ids)
    if not wanted or not stages:
        return {}
    query = select(StageHistory.contact_id, StageHistory.at, StageHistory.to_stage).where(
        among(session, StageHistory.contact_id, wanted),
        StageHistory.to_stage.in_(list(stages)),
        StageHistory.at >= since,
    )
    found: dict[int, list[tuple[datetime, str]]] = {}
    for contact_id, at, stage in session.execute(query):
        found.setdefault(contact_id, []).append((at, stage))
    return found


@dataclass(frozen=True)
class Drawn:
    """One enrollment's group in a split or a holdout, and the contact's stage then."""

    contact_id: int
    arm: str
    stage: str | None
    at: datetime


def drawn(
    session: Session, workflow: str, experiment: str, since: datetime, until: datetime
) -> list[Drawn]:
    """The groups drawn in [since, until) for one experiment of a workflow."""
    query = select(
        ExperimentArm.contact_id, ExperimentArm.arm, ExperimentArm.stage, ExperimentArm.at
    ).where(
        ExperimentArm.workflow == workflow,
        ExperimentArm.experiment == experiment,
        ExperimentArm.at >= since,
        ExperimentArm.at < until,
    )
    return [Drawn(*row) for row in session.execute(query)]


def winners(session: Session) -> dict[tuple[str, str, str], ExperimentWinner]:
    """Every variant test decided: (workflow, step, test) → its winner."""
    return {(w.workflow, w.step, w.test): w for w in session.scalars(select(ExperimentWinner))}


def keep_winner(
    session: Session,
    workflow: str,
    step: str,
    test: str,
    variant: str,
    metric: str,
    at: datetime,
    details: Mapping[str, Any],
) -> tuple[ExperimentWinner, bool]:
    """Store a winner unless one is already stored: the one stored (the first wins), and
    whether this call stored it."""
    inserted = session.execute(
        insert_ignore(
            session,
            _winners,
            {
                "workflow": workflow,
                "step": step,
                "test": test,
                "variant": variant,
                "metric": metric,
                "decided_at": at,
                "details": dict(details),
            },
            ["workflow", "step", "test"],
        ).returning(_winners.c.id)
    ).scalar_one_or_none()
    stored = session.scalars(
        select(ExperimentWinner).where(
            ExperimentWinner.workflow == workflow,
            ExperimentWinner.step == step,
            ExperimentWinner.test == test,
        )
    ).one()
    return stored, inserted is not None

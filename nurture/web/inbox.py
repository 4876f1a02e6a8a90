"""Handoffs as the API and the sales inbox show them, and the sales actions on them.

Both surfaces go through here, so they list the same handoffs in the same
order with the same fields: open ones by SLA due date (the most urgent
first), decided ones latest first; each with its overdue flag (open and past
`sla_due_at`) and its age. Score and temperature are the ones sales was
handed (the snapshot); the detail adds the contact as it is now (stage,
score, workflows, stage history with who and why).

An action runs in one transaction, the handoff's row locked first (``SELECT
… FOR UPDATE`` on PostgreSQL; SQLite has one writer anyway), so two people
deciding the same handoff at once can't both succeed: the second gets the
`HandoffConflict` the service raises for a handoff no longer open.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

import nurture.clock as clock
from nurture.contacts.standing import view_of
from nurture.engine.service import Engine
from nurture.store.enrollments import enrollments_of
from nurture.store.models import Contact, Handoff
from nurture.store.stages import stage_history_of

Status = Literal["open", "accepted", "rejected"]
Action = Literal["accept", "reject", "reopen"]
STATUSES: tuple[Status, ...] = ("open", "accepted", "rejected")
ACTIONS: tuple[Action, ...] = ("accept", "reject", "reopen")
#: Largest id a path may name (ids are 64-bit): anything above is simply unknown.
MAX_ID = 2**63 - 1
#: Longest `by` and `reason` accepted (characters).
MAX_BY = 200
MAX_REASON = 2000


def as_status(value: str | None) -> Status | None:
    for status in STATUSES:
        if value == status:
            return status
    return None


def as_action(value: str | None) -> Action | None:
    for action in ACTIONS:
        if value == action:
            return action
    return None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def is_overdue(handoff: Handoff, now: datetime) -> bool:
    return handoff.status == "open" and handoff.sla_due_at is not None and handoff.sla_due_at <= now


def _name(contact: Contact) -> str | None:
    return " ".join(p for p in (contact.first_name, contact.last_name) if p) or None


def decided_at(handoff: Handoff) -> datetime | None:
    return handoff.accepted_at if handoff.status == "accepted" else handoff.rejected_at


def summary(handoff: Handoff, contact: Contact, now: datetime) -> dict[str, Any]:
    """One line of a list: JSON-ready."""
    snapshot = handoff.snapshot or {}
    score = snapshot.get("score") or {}
    due = handoff.sla_due_at
    return {
        "id": handoff.id,
        "status": handoff.status,
        "owner": handoff.owner,
        "contact": {
            "id": contact.id,
            "email": contact.email,
            "name": _name(contact),
            "company": contact.company,
            "stage": contact.stage,
        },
        "score": score.get("total"),
        "temperature": snapshot.get("temperature"),
        "created_at": handoff.created_at.isoformat(),
        "sla_due_at": _iso(due),
        "overdue": is_overdue(handoff, now),
        "age_seconds": int((now - handoff.created_at).total_seconds()),
        "due_in_seconds": int((due - now).total_seconds()) if due is not None else None,
        "decided_by": handoff.decided_by,
        "decided_at": _iso(decided_at(handoff)),
        "reason": handoff.reason,
    }


def list_handoffs(
    session: Session,
    now: datetime,
    status: Status | None = None,
    owner: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    query = select(Handoff, Contact).join(Contact, Contact.id == Handoff.contact_id)
    if status is not None:
        query = query.where(Handoff.status == status)
    if owner:
        query = query.where(func.lower(Handoff.owner) == owner.strip().lower())
    # Open ones first, the most urgent first (no SLA last); then the latest decisions.
    is_open = Handoff.status == "open"
    due = case((is_open, Handoff.sla_due_at), else_=None)
    decided = func.coalesce(Handoff.accepted_at, Handoff.rejected_at, Handoff.created_at)
    query = query.order_by(
        case((is_open, 0), else_=1), due.is_(None), due, decided.desc(), Handoff.id.desc()
    )
    rows = session.execute(query.limit(limit)).all()
    return [summary(handoff, contact, now) for handoff, contact in rows]


def counts(session: Session, now: datetime, owner: str | None = None) -> dict[str, int]:
    """How many handoffs per status, and how many open ones are overdue."""
    query = select(Handoff.status, func.count()).group_by(Handoff.status)
    overdue = select(func.count()).where(
        Handoff.status == "open", Handoff.sla_due_at.is_not(None), Handoff.sla_due_at <= now
    )
    if owner:
        query = query.where(func.lower(Handoff.owner) == owner.strip().lower())
        overdue = overdue.where(func.lower(Handoff.owner) == owner.strip().lower())
    found: dict[str, int] = {status: 0 for status in STATUSES}
    for status, number in session.execute(query).all():
        found[status] = int(number)
    found["overdue"] = int(session.scalar(overdue.select_from(Handoff)) or 0)
    return found


def detail(session: Session, engine: Engine, handoff: Handoff, now: datetime) -> dict[str, Any]:
    """Everything about one handoff: the snapshot, the action log, the contact now."""
    contact = session.get(Contact, handoff.contact_id)
    assert contact is not None  # a handoff goes with its contact (ON DELETE CASCADE)
    view = view_of(contact, engine.project.config, now)
    history = stage_history_of(session, contact.id)
    enrollments = enrollments_of(session, contact.id)
    return {
        **summary(handoff, contact, now),
        "accepted_at": _iso(handoff.accepted_at),
        "rejected_at": _iso(handoff.rejected_at),
        "reminded_at": _iso(handoff.reminded_at),
        "escalated_at": _iso(handoff.escalated_at),
        "snapshot": handoff.snapshot or {},
        "actions": list(handoff.actions or []),
        "now": {
            "stage": view.stage,
            "score": view.score,
            "temperature": view.temperature,
            "owner": contact.owner,
            "stage_history": [
                {
                    "at": h.at.isoformat(),
                    "from": h.from_stage,
                    "to": h.to_stage,
                    "cause": h.cause,
                    "by": (h.details or {}).get("by"),
                    "reason": (h.details or {}).get("reason"),
                }
                for h in history
            ],
            "workflows": [
                {
                    "workflow": e.workflow,
                    "status": e.status,
                    "started_at": _iso(e.started_at),
                    "exit_reason": e.exit_reason,
                }
                for e in enrollments
            ],
        },
    }


def lock(session: Session, handoff_id: int) -> None:
    """Lock the handoff's row for the rest of the transaction (a no-op on SQLite)."""
    session.execute(select(Handoff.id).where(Handoff.id == handoff_id).with_for_update())


def act(
    engine: Engine,
    handoff_id: int,
    action: Action,
    by: str,
    reason: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Accept, reject or reopen in one transaction; the handoff's detail afterwards.

    Raises `HandoffNotFound` and `HandoffConflict` (nothing is then written).
    """
    moment = now or clock.now()
    service = engine.handoffs
    with engine.sessions.begin() as session:
        lock(session, handoff_id)
        if action == "accept":
            handoff = service.accept(session, handoff_id, by, moment)
        elif action == "reject":
            handoff = service.reject(session, handoff_id, by, reason or "", moment)
        else:
            handoff = service.reopen(session, handoff_id, by, moment)
        session.flush()
        return detail(session, engine, handoff, moment)


def load(engine: Engine, handoff_id: int, now: datetime) -> dict[str, Any]:
    """One handoff's detail (`HandoffNotFound` if there is none)."""
    with engine.sessions() as session:
        return detail(session, engine, engine.handoffs.get(session, handoff_id), now)


def owners(session: Session) -> Sequence[str]:
    """Every owner with a handoff, for the inbox's filter."""
    found = session.scalars(
        select(Handoff.owner).where(Handoff.owner.is_not(None)).distinct().order_by(Handoff.owner)
    ).all()
    return [o for o in found if o]

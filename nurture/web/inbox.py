"""Handoffs for the API and the sales inbox: lists, counts, and the sales actions.

Both surfaces go through here, and show handoffs through the one serializer
(`nurture.lifecycle.handoff.views`), so they list the same handoffs in the
same order with the same fields.

An action runs in one transaction, the handoff's row locked first (``SELECT
… FOR UPDATE`` on PostgreSQL; SQLite has one writer anyway), so two people
deciding the same handoff at once can't both succeed: the second gets the
`HandoffConflict` the service raises for a handoff no longer open.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy.orm import Session

import nurture.clock as clock
from nurture.engine.service import Engine
from nurture.errors import NurtureError
from nurture.lifecycle.handoff import views
from nurture.store.handoffs import (
    count_by_status,
    handoff_by_id,
    handoffs_with_contacts,
    lock_handoff,
)

Status = Literal["open", "accepted", "rejected"]
Action = Literal["accept", "reject", "reopen", "reassign", "request"]
STATUSES: tuple[Status, ...] = ("open", "accepted", "rejected")
ACTIONS: tuple[Action, ...] = ("accept", "reject", "reopen", "reassign", "request")
#: Largest id a path may name (ids are 64-bit): anything above is simply unknown.
MAX_ID = 2**63 - 1
#: Longest `by` and `reason` accepted (characters).
MAX_BY = 200
MAX_REASON = 2000


class NotYours(NurtureError):
    """The handoff is someone else's, and this account acts on its own only."""


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


def list_handoffs(
    session: Session,
    now: datetime,
    status: Status | None = None,
    owner: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    return [
        views.summary(handoff, contact, now)
        for handoff, contact in handoffs_with_contacts(session, status, owner, limit)
    ]


def counts(session: Session, now: datetime, owner: str | None = None) -> dict[str, int]:
    """How many handoffs per status (every status, even at 0), and how many are overdue."""
    found = count_by_status(session, now, owner)
    return {**{status: found.get(status, 0) for status in STATUSES}, "overdue": found["overdue"]}


def act(
    engine: Engine,
    handoff_id: int,
    action: Action,
    by: str,
    reason: str | None = None,
    now: datetime | None = None,
    *,
    only_owner: str | None = None,
    to: str | None = None,
) -> dict[str, Any]:
    """Accept, reject, reopen, reassign (to `to`) or ask for a reassignment, in one
    transaction; the handoff's detail afterwards.

    `only_owner`: the handoff must be this address's (checked once the row is locked,
    so a reassignment at the same moment cannot slip through). Raises
    `HandoffNotFound`, `HandoffConflict` and `NotYours` (nothing is then written).
    """
    moment = now or clock.now()
    service = engine.handoffs
    with engine.sessions.begin() as session:
        lock_handoff(session, handoff_id)
        if only_owner is not None:
            found = handoff_by_id(session, handoff_id)
            if found is not None and (found.owner or "").lower() != only_owner.lower():
                raise NotYours(f"handoff #{handoff_id} is not {only_owner}'s")
        if action == "accept":
            handoff = service.accept(session, handoff_id, by, moment)
        elif action == "reject":
            handoff = service.reject(session, handoff_id, by, reason or "", moment)
        elif action == "reassign":
            handoff = service.reassign(session, handoff_id, to or "", by, moment)
        elif action == "request":
            handoff = service.request_reassignment(session, handoff_id, by, reason or "", moment)
        else:
            handoff = service.reopen(session, handoff_id, by, moment)
        session.flush()
        return views.detail(session, engine.project.config, handoff, moment)


def load(engine: Engine, handoff_id: int, now: datetime) -> dict[str, Any]:
    """One handoff's detail (`HandoffNotFound` if there is none)."""
    with engine.sessions() as session:
        return views.detail(
            session, engine.project.config, engine.handoffs.get(session, handoff_id), now
        )

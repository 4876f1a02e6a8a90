"""Handoffs as the outside world sees them: one serializer for every surface.

The webhooks and sales emails (`payload`), the lists of the API, the inbox and
`nurture handoffs list` (`summary`), and one handoff in full for the API, the
inbox and `nurture handoffs show` (`detail`) are all built here, from one
`fields` function, so a field never reads differently from one door to the
next. Lists come open first, the most urgent first, then the latest
decisions (`nurture.store.handoffs.handoffs_with_contacts`). Score and
temperature are the ones sales was handed (the snapshot); `detail` adds the
contact as it is now (stage, score, workflows, stage history with who and why).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from nurture.contacts.standing import view_of
from nurture.definitions import model as m
from nurture.store.contacts import contact_by_id
from nurture.store.enrollments import enrollments_of
from nurture.store.models import Contact, Handoff
from nurture.store.stages import stage_history_of
from nurture.store.statuses import HandoffStatus


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def fields(
    *,
    handoff_id: int,
    status: str,
    owner: str | None,
    created_at: datetime,
    sla_due_at: datetime | None,
    reason: str | None,
) -> dict[str, Any]:
    """The handoff's own fields, JSON-ready: the core of every shape below."""
    return {
        "id": handoff_id,
        "status": status,
        "owner": owner,
        "created_at": created_at.isoformat(),
        "sla_due_at": _iso(sla_due_at),
        "reason": reason,
    }


def fields_of(handoff: Handoff) -> dict[str, Any]:
    return fields(
        handoff_id=handoff.id,
        status=handoff.status,
        owner=handoff.owner,
        created_at=handoff.created_at,
        sla_due_at=handoff.sla_due_at,
        reason=handoff.reason,
    )


def payload(
    handoff: Mapping[str, Any], contact: Contact, snapshot: Mapping[str, Any] | None
) -> dict[str, Any]:
    """What a webhook posts and a sales email renders: the handoff (`fields`), who, and
    the frozen snapshot."""
    return {
        "handoff": dict(handoff),
        "contact": {"id": contact.id, "email": contact.email},
        "snapshot": snapshot,
    }


def is_overdue(handoff: Handoff, now: datetime) -> bool:
    return (
        handoff.status == HandoffStatus.OPEN
        and handoff.sla_due_at is not None
        and handoff.sla_due_at <= now
    )


def decided_at(handoff: Handoff) -> datetime | None:
    return handoff.accepted_at if handoff.status == HandoffStatus.ACCEPTED else handoff.rejected_at


def summary(handoff: Handoff, contact: Contact, now: datetime) -> dict[str, Any]:
    """One line of a list: JSON-ready."""
    snapshot = handoff.snapshot or {}
    score = snapshot.get("score") or {}
    due = handoff.sla_due_at
    return {
        **fields_of(handoff),
        "contact": {
            "id": contact.id,
            "email": contact.email,
            "name": " ".join(p for p in (contact.first_name, contact.last_name) if p) or None,
            "company": contact.company,
            "stage": contact.stage,
        },
        "score": score.get("total"),
        "temperature": snapshot.get("temperature"),
        "overdue": is_overdue(handoff, now),
        "age_seconds": int((now - handoff.created_at).total_seconds()),
        "due_in_seconds": int((due - now).total_seconds()) if due is not None else None,
        "decided_by": handoff.decided_by,
        "decided_at": _iso(decided_at(handoff)),
    }


def detail(
    session: Session, config: m.ProjectConfig, handoff: Handoff, now: datetime
) -> dict[str, Any]:
    """Everything about one handoff: the snapshot, the action log, the contact now."""
    contact = contact_by_id(session, handoff.contact_id)
    assert contact is not None  # a handoff goes with its contact (ON DELETE CASCADE)
    view = view_of(contact, config, now)
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

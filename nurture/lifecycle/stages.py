"""Stage moves and the events nurture emits about them.

Whatever moves a contact (a score crossing a threshold, a fit change, sales
accepting or recycling, an import), what follows is the same and happens in
the mover's transaction, one statement per kind for all the batch's moves:
stage history, every nurture enrollment ended at the prospect stage, the
handoff opened, the new stage's workflows entered, `stage.changed` events and
webhooks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, update
from sqlalchemy.orm import Session

from nurture.definitions.ladder import at_or_beyond
from nurture.engine.enrollment import Trigger
from nurture.engine.executor import EventView
from nurture.lifecycle.handoff.actions import crosses
from nurture.lifecycle.notifications import notification, queue_many
from nurture.records import Record
from nurture.store import enrollments as work
from nurture.store import ingest_queries
from nurture.store.models import Contact, Enrollment

if TYPE_CHECKING:
    from nurture.engine.service import Engine

_enrollments = cast(Table, Enrollment.__table__)


@dataclass(frozen=True)
class StageMove:
    contact_id: int
    from_stage: str | None
    to_stage: str
    cause: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SystemEvent:
    """An event nurture emits itself (stage.changed, handoff.*), waiting to be recorded."""

    contact: Contact
    event_id: str
    kind: str
    properties: Mapping[str, Any]


class Moves:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.config = engine.project.config

    def move(
        self,
        session: Session,
        contact: Contact,
        stage: str,
        cause: str,
        now: datetime,
        *,
        details: Mapping[str, Any] | None = None,
        open_handoff: bool = True,
    ) -> StageMove | None:
        """An explicit stage change (sales, API, recycling): may go down as well as up."""
        current = contact.stage or self.config.stages[0]
        if stage == current:
            return None
        contact.stage = stage
        move = StageMove(contact.id, current, stage, cause, dict(details or {}))
        self.after_moves(session, {contact.id: contact}, [move], now, open_handoff=open_handoff)
        return move

    def system_event(
        self,
        session: Session,
        contact: Contact,
        event_id: str,
        kind: str,
        properties: Mapping[str, Any],
        now: datetime,
    ) -> None:
        """An event nurture itself emits (stage.changed, handoff.*): logged, and workflows
        that `enroll: {event: ...}` on it start; it earns no points."""
        self.system_events(session, [SystemEvent(contact, event_id, kind, properties)], now)

    def system_events(self, session: Session, events: Sequence[SystemEvent], now: datetime) -> None:
        """`system_event` for many: one insert, one enrollment pass."""
        if not events:
            return
        rows = [
            {
                "event_id": event.event_id,
                "type": event.kind,
                "at": now,
                "contact_id": event.contact.id,
                "properties": dict(event.properties),
                "raw": None,
                "source": "nurture",
                "received_at": now,
            }
            for event in events
        ]
        new = work.record_events(session, rows)
        # Only a workflow that `enroll: {event: ...}` on a kind can take its events.
        workflows = self.engine.project.workflows.values()
        wanted = {w.enroll.event for w in workflows if w.enroll.event is not None}
        triggers: dict[int, list[Trigger]] = {}
        contacts: dict[int, Contact] = {}
        for event in events:
            if event.event_id not in new:
                continue
            new.discard(event.event_id)  # a second copy is a duplicate
            if event.kind not in wanted:
                continue
            view = EventView(event.event_id, event.kind, now, dict(event.properties))
            triggers.setdefault(event.contact.id, []).append(Trigger(event=view))
            contacts[event.contact.id] = event.contact
        if triggers:
            self.engine.enroller.enroll(session, triggers, contacts, now)

    def after_moves(
        self,
        session: Session,
        contacts: Mapping[int, Contact],
        moves: Sequence[StageMove],
        now: datetime,
        *,
        open_handoff: bool = True,
    ) -> None:
        """History, exits at the prospect stage, handoff to sales, enrollment into the new
        stage's workflows, stage.changed events and webhooks: each one statement for all
        the moves."""
        if not moves:
            return
        ingest_queries.insert_history(
            session,
            [
                {
                    "contact_id": mv.contact_id,
                    "from_stage": mv.from_stage,
                    "to_stage": mv.to_stage,
                    "at": now,
                    "cause": mv.cause,
                    "details": {"score": contacts[mv.contact_id].score, **mv.details},
                }
                for mv in moves
            ],
        )
        config = self.config
        prospects = [
            mv.contact_id
            for mv in moves
            if at_or_beyond(mv.to_stage, config.prospect_stage, config.stages)
        ]
        if prospects:
            end_nurture(session, prospects, "prospect", now)
        events: list[SystemEvent] = []
        if config.handoff is not None and open_handoff:
            at = config.handoff.at
            opening = [
                (contacts[mv.contact_id], mv.cause)
                for mv in moves
                if crosses(mv.from_stage, mv.to_stage, at, config.stages)
            ]
            events += self.engine.handoffs.open_many(session, opening, now)
        triggers = {mv.contact_id: [Trigger(stage=mv.to_stage, changed=True)] for mv in moves}
        self.engine.enroller.enroll(session, triggers, contacts, now)
        hooks = [
            (number, hook)
            for number, hook in enumerate(config.webhooks)
            if "stage.changed" in hook.events
        ]
        notifications = []
        for number, mv in enumerate(moves):
            contact = contacts[mv.contact_id]
            change = {
                "from": mv.from_stage,
                "to": mv.to_stage,
                "cause": mv.cause,
                "score": contact.score,
            }
            stamp = f"{contact.id}:{now.isoformat()}:{number}:{mv.to_stage}"
            events.append(SystemEvent(contact, f"stage:{stamp}", "stage.changed", change))
            for hook_number, hook in hooks:
                notifications.append(
                    notification(
                        f"stage.changed:{stamp}:{hook_number}",
                        "webhook",
                        "stage.changed",
                        hook.url,
                        {"contact": {"id": contact.id, "email": contact.email}, **change},
                        now,
                        contact_id=contact.id,
                        plain=True,
                    )
                )
            self.engine.record(Record(now, "stage", contact.id, contact.email, details=change))
        self.system_events(session, events, now)
        queue_many(session, notifications)


def end_nurture(session: Session, contact_ids: Sequence[int], reason: str, now: datetime) -> int:
    """End every running enrollment of these contacts at once (prospect, suppression)."""
    result = session.execute(
        update(Enrollment)
        .where(
            work.among(session, _enrollments.c.contact_id, contact_ids),
            Enrollment.status.in_(("active", "waiting")),
        )
        .values(
            status="exited",
            exit_reason=reason,
            ended_at=now,
            next_run_at=None,
            lease_until=None,
            waiting_for=None,
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)

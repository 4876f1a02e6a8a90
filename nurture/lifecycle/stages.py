"""The one stage-move path, and the events nurture emits about moves.

Whatever moves a contact (a score crossing a threshold, a fit change, a
contacts import or `POST /v1/contacts`, sales accepting, rejecting or
reopening, `nurture contacts move`), the move goes through `Stages.apply`, in
the mover's transaction, one statement per kind for all the batch's moves:

1. the stage history row, with the cause and the score at that moment;
2. every running nurture enrollment ended when the contact reaches the
   prospect stage (nurture email stops in the same commit);
3. the handoff opened when the move reaches `handoff.at` from below (owner,
   snapshot, notifications; `nurture.lifecycle.handoff.opening`);
4. the listeners told (the engine enrolls the contact in the new stage's
   workflows);
5. `stage.changed` recorded as an event (workflows may enroll on it) and
   posted to the webhooks that asked for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from nurture.definitions import model as m
from nurture.definitions.ladder import at_or_beyond, crosses
from nurture.events import EventType, EventView
from nurture.lifecycle.facts import StageMove, SystemEvent
from nurture.lifecycle.handoff.opening import open_handoffs
from nurture.lifecycle.listeners import Listener
from nurture.lifecycle.notifications import notification, queue_many
from nurture.records import Record, Recorder
from nurture.store import enrollments, events, stages
from nurture.store.models import Contact


class Stages:
    """Moves contacts between stages (`apply`), and records nurture's own events."""

    def __init__(self, config: m.ProjectConfig, listener: Listener, record: Recorder) -> None:
        self.config = config
        self.listener = listener
        self.record = record

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
        """An explicit move to `stage` (sales, a command, recycling): down as well as up.

        None when the contact is already there: a move to where one stands
        changes nothing and records nothing.
        """
        current = contact.stage or self.config.stages[0]
        if stage == current:
            return None
        contact.stage = stage
        move = StageMove(contact.id, current, stage, cause, dict(details or {}))
        self.apply(session, {contact.id: contact}, [move], now, open_handoff=open_handoff)
        return move

    def apply(
        self,
        session: Session,
        contacts: Mapping[int, Contact],
        moves: Sequence[StageMove],
        now: datetime,
        *,
        open_handoff: bool = True,
    ) -> None:
        """Everything a move sets off (see the module docstring), for moves already made
        on the contacts (`contact.stage` set). `open_handoff` False: a reopened handoff
        moves its contact back without opening a second one."""
        if not moves:
            return
        config = self.config
        stages.insert_history(
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
        prospects = [
            mv.contact_id
            for mv in moves
            if at_or_beyond(mv.to_stage, config.prospect_stage, config.stages)
        ]
        if prospects:
            enrollments.end_nurture(session, prospects, "prospect", now)
        emitted: list[SystemEvent] = []
        if config.handoff is not None and open_handoff:
            at = config.handoff.at
            opening = [
                (contacts[mv.contact_id], mv.cause)
                for mv in moves
                if crosses(mv.from_stage, mv.to_stage, at, config.stages)
            ]
            emitted += open_handoffs(config, self.record, session, opening, now)
        self.listener.after_stage_moves(session, contacts, moves, now)
        emitted += self._announce(contacts, moves, session, now)
        self.emit(session, emitted, now)

    def _announce(
        self,
        contacts: Mapping[int, Contact],
        moves: Sequence[StageMove],
        session: Session,
        now: datetime,
    ) -> list[SystemEvent]:
        """`stage.changed`: the events to record, the webhooks queued, the records kept."""
        hooks = [
            (number, hook)
            for number, hook in enumerate(self.config.webhooks)
            if EventType.STAGE_CHANGED in hook.events
        ]
        emitted = []
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
            emitted.append(SystemEvent(contact, f"stage:{stamp}", EventType.STAGE_CHANGED, change))
            for hook_number, hook in hooks:
                notifications.append(
                    notification(
                        f"stage.changed:{stamp}:{hook_number}",
                        "webhook",
                        EventType.STAGE_CHANGED,
                        hook.url,
                        {"contact": {"id": contact.id, "email": contact.email}, **change},
                        now,
                        contact_id=contact.id,
                        plain=True,
                    )
                )
            self.record(Record(now, "stage", contact.id, contact.email, details=change))
        queue_many(session, notifications)
        return emitted

    def emit(self, session: Session, emitted: Sequence[SystemEvent], now: datetime) -> None:
        """Record events nurture itself emits (stage.changed, handoff.*) and tell the
        listeners, so workflows that `enroll: {event: ...}` on them start. They earn no
        points. One insert for all; a second copy of an id is a duplicate."""
        if not emitted:
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
            for event in emitted
        ]
        new = events.record_events(session, rows)
        views: dict[int, list[EventView]] = {}
        contacts: dict[int, Contact] = {}
        for event in emitted:
            if event.event_id not in new:
                continue
            new.discard(event.event_id)
            views.setdefault(event.contact.id, []).append(
                EventView(event.event_id, event.kind, now, dict(event.properties))
            )
            contacts[event.contact.id] = event.contact
        if views:
            self.listener.after_events(session, contacts, views, now)

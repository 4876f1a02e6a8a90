"""The marketing → sales handoff: structured, traceable, reversible (DOMAIN.md).

When a contact reaches `handoff.at`, a handoff is opened in the same
transaction: an owner is assigned (the contact's own, a matching rule, or the
next in a round-robin whose position lives in the database), a snapshot of
everything sales needs is frozen (score and its breakdown, temperature, stage
history, engagement timeline, last content consumed, emails received,
profile), and the notifications are queued in the outbox — each exactly once.
Sales accepts it, or sends it back to nurturing with a reason, which recycles
the contact as `on_reject` says; a rejected handoff can be reopened. Every
action lands in the handoff's action log and the contact's stage history.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from nurture.definitions import model as m
from nurture.errors import NurtureError
from nurture.events import EventType
from nurture.lifecycle.facts import SystemEvent
from nurture.lifecycle.handoff import views
from nurture.lifecycle.handoff.opening import next_turns, open_handoffs, snapshots
from nurture.lifecycle.listeners import Listener
from nurture.lifecycle.notifications import queue
from nurture.lifecycle.scoring import Scoring
from nurture.lifecycle.stages import Stages
from nurture.records import Record, Recorder
from nurture.store.contacts import contact_by_id
from nurture.store.handoffs import handoff_by_id, handoffs_created_between, overdue_handoffs
from nurture.store.models import Contact, Handoff
from nurture.store.notifications import any_queued
from nurture.store.statuses import HandoffStatus

DIGEST_TEMPLATE = "sales/digest"


class HandoffNotFound(NurtureError):
    """No handoff with that id."""


class HandoffConflict(NurtureError):
    """The handoff is not in a state that allows this action."""


class Handoffs:
    """Opens handoffs, carries out sales' actions on them, and keeps their SLA."""

    def __init__(
        self,
        config: m.ProjectConfig,
        stages: Stages,
        scoring: Scoring,
        listener: Listener,
        record: Recorder,
    ) -> None:
        self.config = config
        self.stages = stages
        self.scoring = scoring
        self.listener = listener
        self.record = record

    # -- opening -------------------------------------------------------------------------

    def open(self, session: Session, contact: Contact, now: datetime, cause: str) -> Handoff | None:
        """Open a handoff for `contact` unless one is already open."""
        opened = self.open_many(session, [(contact, cause)], now)
        self.stages.emit(session, opened, now)
        if not opened:
            return None
        return self.get(session, opened[0].properties["handoff"])

    def open_many(
        self, session: Session, opening: Sequence[tuple[Contact, str]], now: datetime
    ) -> list[SystemEvent]:
        """Open a handoff for each (contact, cause) unless one is open: owner, snapshot,
        notifications. Returns the `handoff.created` events, for the caller to record."""
        return open_handoffs(self.config, self.record, session, opening, now)

    def snapshot(self, session: Session, contact: Contact, now: datetime) -> dict[str, Any]:
        """What sales sees, frozen at handoff time."""
        return snapshots(self.config, session, {contact.id: contact}, now)[contact.id]

    # -- sales actions -----------------------------------------------------------------------

    def get(self, session: Session, handoff_id: int, *, lock: bool = False) -> Handoff:
        """`lock` holds the row until commit: two people deciding at once → one wins, one 409."""
        handoff = handoff_by_id(session, handoff_id, lock=lock)
        if handoff is None:
            raise HandoffNotFound(f"no handoff #{handoff_id}")
        return handoff

    def accept(self, session: Session, handoff_id: int, by: str, now: datetime) -> Handoff:
        handoff = self.get(session, handoff_id, lock=True)
        if handoff.status != HandoffStatus.OPEN:
            raise HandoffConflict(f"handoff #{handoff_id} is {handoff.status}, not open")
        handoff.status, handoff.accepted_at, handoff.decided_by = HandoffStatus.ACCEPTED, now, by
        self._log(handoff, now, "accepted", by, None)
        contact = contact_by_id(session, handoff.contact_id)
        assert contact is not None and self.config.handoff is not None
        target = self.config.handoff.on_accept.stage
        if target:
            self.stages.move(
                session,
                contact,
                target,
                EventType.HANDOFF_ACCEPTED,
                now,
                details={"by": by, "handoff": handoff.id},
            )
        self._emit(session, contact, handoff, EventType.HANDOFF_ACCEPTED, now)
        return handoff

    def reject(
        self, session: Session, handoff_id: int, by: str, reason: str, now: datetime
    ) -> Handoff:
        """Back to nurturing: stage, score and workflow as `on_reject` says."""
        if not reason.strip():
            raise HandoffConflict("a reason is required to send a lead back to nurturing")
        handoff = self.get(session, handoff_id, lock=True)
        if handoff.status != HandoffStatus.OPEN:
            raise HandoffConflict(f"handoff #{handoff_id} is {handoff.status}, not open")
        handoff.status, handoff.rejected_at = HandoffStatus.REJECTED, now
        handoff.decided_by, handoff.reason = by, reason.strip()
        self._log(handoff, now, "rejected", by, handoff.reason)
        contact = contact_by_id(session, handoff.contact_id)
        assert contact is not None and self.config.handoff is not None
        rules = self.config.handoff.on_reject
        if rules.score != "keep":
            self.scoring.adjust_for_rejection(session, contact, rules.score, handoff.id, now)
        details = {"by": by, "reason": handoff.reason, "handoff": handoff.id}
        if rules.stage:
            self.stages.move(
                session, contact, rules.stage, EventType.HANDOFF_REJECTED, now, details=details
            )
        self._emit(session, contact, handoff, EventType.HANDOFF_REJECTED, now)
        if rules.workflow:
            self.listener.after_recycle(session, contact, rules.workflow, now)
        return handoff

    def reopen(self, session: Session, handoff_id: int, by: str, now: datetime) -> Handoff:
        """A lead sent back too soon: open again, back on the handoff stage."""
        handoff = self.get(session, handoff_id, lock=True)
        if handoff.status != HandoffStatus.REJECTED:
            raise HandoffConflict(
                f"handoff #{handoff_id} is {handoff.status}: only a rejected one reopens"
            )
        handoff.status, handoff.rejected_at, handoff.decided_by = HandoffStatus.OPEN, None, None
        rules = self.config.handoff
        assert rules is not None
        handoff.sla_due_at = now + rules.sla.accept_within if rules.sla.accept_within else None
        handoff.reminded_at = handoff.escalated_at = None
        self._log(handoff, now, "reopened", by, None)
        contact = contact_by_id(session, handoff.contact_id)
        assert contact is not None
        self.stages.move(
            session,
            contact,
            rules.at,
            EventType.HANDOFF_REOPENED,
            now,
            details={"by": by, "handoff": handoff.id},
            open_handoff=False,
        )
        self._emit(session, contact, handoff, EventType.HANDOFF_REOPENED, now)
        return handoff

    # -- ownership -------------------------------------------------------------------------

    def reassign(
        self, session: Session, handoff_id: int, to: str, by: str, now: datetime
    ) -> Handoff:
        """Give an open handoff to `to` (the contact's owner too); `to` gets the handoff
        email the `notify` rules send an owner."""
        handoff = self.get(session, handoff_id, lock=True)
        if handoff.status != HandoffStatus.OPEN:
            raise HandoffConflict(f"handoff #{handoff_id} is {handoff.status}, not open")
        if (handoff.owner or "").lower() == to.lower():
            raise HandoffConflict(f"handoff #{handoff_id} is already {to}'s")
        previous, handoff.owner = handoff.owner, to
        self._log(handoff, now, "reassigned", by, None, previous=previous, to=to)
        contact = contact_by_id(session, handoff.contact_id)
        assert contact is not None and self.config.handoff is not None
        contact.owner = to
        step = len(handoff.actions or [])
        for number, notify in enumerate(self.config.handoff.notify):
            if notify.kind == "email" and notify.target == "owner":
                queue(
                    session,
                    f"handoff:{handoff.id}:reassigned:{step}:email:{number}",
                    "email",
                    "handoff.reassigned",
                    to,
                    self._payload(handoff, contact),
                    now,
                    template=notify.template or "sales/handoff",
                    handoff_id=handoff.id,
                    contact_id=contact.id,
                )
        return handoff

    def request_reassignment(
        self, session: Session, handoff_id: int, by: str, reason: str, now: datetime
    ) -> Handoff:
        """An owner asks for an open handoff to go to someone else (a lead decides)."""
        if not reason.strip():
            raise HandoffConflict("say why the handoff should go to someone else")
        handoff = self.get(session, handoff_id, lock=True)
        if handoff.status != HandoffStatus.OPEN:
            raise HandoffConflict(f"handoff #{handoff_id} is {handoff.status}, not open")
        self._log(handoff, now, "reassignment_requested", by, reason.strip())
        return handoff

    # -- the SLA ---------------------------------------------------------------------------------

    def check_sla(self, session: Session, now: datetime) -> int:
        """Remind owners of overdue handoffs, then escalate; each once. Returns actions taken."""
        rules = self.config.handoff
        if rules is None or rules.sla.accept_within is None:
            return 0
        done = 0
        overdue = overdue_handoffs(session, now)
        for handoff in overdue:
            contact = contact_by_id(session, handoff.contact_id)
            assert contact is not None and handoff.sla_due_at is not None
            if handoff.reminded_at is None:
                handoff.reminded_at = now
                self._log(handoff, now, "reminded", "nurture", None)
                if handoff.owner:
                    queue(
                        session,
                        f"handoff:{handoff.id}:reminder:{handoff.sla_due_at.isoformat()}",
                        "email",
                        "handoff.reminder",
                        handoff.owner,
                        self._payload(handoff, contact),
                        now,
                        template="sales/reminder",
                        handoff_id=handoff.id,
                        contact_id=contact.id,
                    )
                done += 1
            delay = rules.sla.escalation_delay
            if (
                handoff.escalated_at is None
                and delay is not None
                and rules.sla.escalate_to
                and now >= handoff.sla_due_at + delay
            ):
                handoff.escalated_at = now
                self._log(handoff, now, "escalated", "nurture", rules.sla.escalate_to)
                queue(
                    session,
                    f"handoff:{handoff.id}:escalation:{handoff.sla_due_at.isoformat()}",
                    "email",
                    "handoff.escalated",
                    rules.sla.escalate_to,
                    self._payload(handoff, contact),
                    now,
                    template="sales/escalation",
                    handoff_id=handoff.id,
                    contact_id=contact.id,
                )
                done += 1
        return done

    # -- the weekly digest ----------------------------------------------------------------------

    def digest(
        self, session: Session, since: datetime, until: datetime
    ) -> dict[str, list[dict[str, Any]]]:
        """Per owner, the leads handed over in [since, until): score, status, history, last content."""
        handoffs = handoffs_created_between(session, since, until)
        report: dict[str, list[dict[str, Any]]] = {}
        for handoff in handoffs:
            snapshot = handoff.snapshot or {}
            contact = snapshot.get("contact", {})
            last = snapshot.get("last_content") or {}
            history = snapshot.get("stage_history", [])
            report.setdefault(handoff.owner or "(unassigned)", []).append(
                {
                    "handoff": handoff.id,
                    "created_at": handoff.created_at.isoformat(),
                    "status": handoff.status,
                    "overdue": views.is_overdue(handoff, until),
                    "email": contact.get("email"),
                    "name": contact.get("name"),
                    "company": contact.get("company"),
                    "score": snapshot.get("score", {}).get("total"),
                    "temperature": snapshot.get("temperature"),
                    "history": " → ".join(
                        [h["from"] or "·" for h in history[:1]] + [h["to"] for h in history]
                    ),
                    "last_content": last.get("title") or last.get("url"),
                }
            )
        return report

    def queue_digests(self, session: Session, now: datetime, days: int = 7) -> int:
        """One digest email per owner for the past `days`; once per ISO week and owner."""
        week = now.isocalendar()
        report = self.digest(session, now - timedelta(days=days), now)
        for owner, leads in report.items():
            if "@" not in owner:
                continue
            queue(
                session,
                f"digest:{owner}:{week.year}-W{week.week:02d}",
                "email",
                "digest",
                owner,
                {
                    "digest": {
                        "owner": owner,
                        "since": (now - timedelta(days=days)).isoformat(),
                        "until": now.isoformat(),
                        "leads": leads,
                    }
                },
                now,
                template=DIGEST_TEMPLATE,
            )
        return len(report)

    def weekly_digest_due(self, session: Session, now: datetime) -> bool:
        """Monday from 08:00 in the sending timezone, until this week's digest is queued."""
        local = now.astimezone(ZoneInfo(self.config.sending.default_timezone))
        if local.weekday() != 0 or local.hour < 8:
            return False
        week = now.isocalendar()
        return not any_queued(session, f"digest:%:{week.year}-W{week.week:02d}")

    # -- helpers -----------------------------------------------------------------------------------

    @staticmethod
    def _payload(handoff: Handoff, contact: Contact) -> dict[str, Any]:
        return views.payload(views.fields_of(handoff), contact, handoff.snapshot)

    def _emit(
        self, session: Session, contact: Contact, handoff: Handoff, topic: str, now: datetime
    ) -> None:
        """Tell CRMs (outbound webhooks) and workflows (a system event) what happened."""
        payload = self._payload(handoff, contact)
        for number, hook in enumerate(self.config.webhooks):
            if topic in hook.events:
                queue(
                    session,
                    f"{topic}:{handoff.id}:{len(handoff.actions or [])}:{number}",
                    "webhook",
                    topic,
                    hook.url,
                    payload,
                    now,
                    handoff_id=handoff.id,
                    contact_id=contact.id,
                )
        event = SystemEvent(
            contact,
            f"{topic}:{handoff.id}:{len(handoff.actions or [])}",
            topic,
            {"handoff": handoff.id, "owner": handoff.owner, "reason": handoff.reason},
        )
        self.stages.emit(session, [event], now)
        self.record(
            Record(
                now,
                "handoff",
                contact.id,
                contact.email,
                details={"event": topic, "owner": handoff.owner, "handoff": handoff.id},
            )
        )

    @staticmethod
    def _log(
        handoff: Handoff,
        now: datetime,
        action: str,
        by: str,
        reason: str | None,
        **more: str | None,
    ) -> None:
        handoff.actions = [
            *(handoff.actions or []),
            {"at": now.isoformat(), "action": action, "by": by, "reason": reason, **more},
        ]


def next_turn(session: Session, name: str, size: int) -> int:
    """The next position of a round-robin, advanced atomically (safe across workers)."""
    return next_turns(session, name, size, 1)[0]

"""Events in: record once, score, wake whoever waits for them.

Whatever door an event came in by (file, API, tracking link, ESP webhook), it
arrives as an `IncomingEvent` (`nurture.lifecycle.incoming`), through one
entry, `Ingestor.ingest`, and is recorded idempotently by its id. Recording
scores it (perhaps moving the contact up the ladder), wakes the contact's
waiting enrollments (a `wait_for` need not wait for the next poll), tells the
listeners (workflows that start on this event), and applies the consent
consequences of email feedback: an unsubscribe, a complaint or a hard bounce
stops all email at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
import nurture.delivery.consent as consent
import nurture.delivery.suppression as suppression
from nurture.contacts.values import moment_problem, value_problem
from nurture.definitions import model as m
from nurture.errors import Conflict, DatabaseUnavailable, ValueRefused
from nurture.events import EMAIL_EVENT_TYPES, EventType, EventView, Traffic
from nurture.lifecycle.facts import StageMove
from nurture.lifecycle.incoming import IncomingEvent, InvalidEvent
from nurture.lifecycle.judging import judge
from nurture.lifecycle.listeners import Listener
from nurture.lifecycle.scoring import Scoring
from nurture.lifecycle.stages import Stages
from nurture.lifecycle.traffic import BURST_REASON
from nurture.records import Record, Recorder, discard
from nurture.store.contacts import add_contacts, loose_contacts, save_contacts
from nurture.store.enrollments import end_nurture, wake_contacts
from nurture.store.events import reclassify, record_events
from nurture.store.models import Contact

#: Attempts of a transaction that lost an insert race (two first events at once).
ATTEMPTS = 3


@dataclass(frozen=True)
class Outcome:
    """What happened to one event of a batch."""

    status: str  # recorded / duplicate / rejected
    reason: str | None = None
    contact_id: int | None = None
    #: Who made a recorded event (`nurture.events.Traffic`).
    traffic: str = Traffic.HUMAN

    @property
    def recorded(self) -> bool:
        return self.status == "recorded"


class Ingestor:
    """Records events for their contacts and sets off what follows (see the module docstring)."""

    def __init__(
        self,
        config: m.ProjectConfig,
        scoring: Scoring,
        stages: Stages,
        listener: Listener,
        record: Recorder,
    ) -> None:
        self.config = config
        self.scoring = scoring
        self.stages = stages
        self.listener = listener
        self.record = record

    def ingest(
        self,
        sessions: sessionmaker[Session],
        events: Sequence[IncomingEvent] | Callable[[Session], Sequence[IncomingEvent]],
        source: str,
    ) -> list[Outcome]:
        """The entry every door uses (API, webhooks, tracking, the CLI): `events` recorded
        in a transaction of their own, one outcome each, in order.

        A transaction that loses a race (two first events of one new contact,
        in two processes) is retried, up to `ATTEMPTS` times; one that loses
        its database connection is retried once, then `DatabaseUnavailable`
        reaches the caller. `events` may be
        a function of the transaction's session (a tracking hit looks up its
        send there): it is called again on every attempt.
        """
        lost_connection = False
        for attempt in range(ATTEMPTS):
            try:
                with sessions.begin() as session:
                    batch = events(session) if callable(events) else events
                    return self.ingest_batch(session, batch, source) if batch else []
            except Conflict:
                if attempt == ATTEMPTS - 1:
                    raise
            except ValueRefused as refused:
                # What the checks at the edge let through and the database did not take:
                # each event alone, so only the one it is about is refused.
                if callable(events) or len(events) < 2:
                    if callable(events):
                        raise
                    return [Outcome("rejected", str(refused))]
                return [o for e in events for o in self.ingest(sessions, [e], source)]
            except DatabaseUnavailable:
                # The transaction died with its connection (nothing of it stayed):
                # once more on a fresh one, then the caller hears it (a 503).
                if lost_connection:
                    raise
                lost_connection = True
        raise AssertionError("unreachable")

    def ingest_one(self, session: Session, event: IncomingEvent, source: str) -> Outcome:
        """One event in the caller's transaction; a refusal raises `InvalidEvent`
        (nothing of it was applied)."""
        [outcome] = self.ingest_batch(session, [event], source)
        if outcome.status == "rejected":
            raise InvalidEvent(outcome.reason)
        return outcome

    def ingest_batch(
        self, session: Session, events: Sequence[IncomingEvent], source: str
    ) -> list[Outcome]:
        """Record valid events in the caller's transaction; one outcome per event, in order.

        Every check that could refuse an event happens before anything is
        written, so a refused event leaves no trace while its neighbours go in.

        The batch's contacts change in memory and are written together at the
        end (`save_contacts`): no autoflush writes them one by one on the way.
        """
        now = clock.now()
        # Whatever door built them, an event the database cannot hold is refused alone.
        refused = {index: problem for index, e in enumerate(events) if (problem := _problem(e))}
        storable = [e for index, e in enumerate(events) if index not in refused]
        with session.no_autoflush:
            contacts, outcomes = self._ingest(session, storable, source, now)
            save_contacts(session, contacts.values(), now)
        done = iter(outcomes)
        return [
            Outcome("rejected", refused[index])
            if index in refused
            else next(done) or Outcome("rejected", "not processed")
            for index in range(len(events))
        ]

    def _ingest(
        self, session: Session, events: Sequence[IncomingEvent], source: str, now: datetime
    ) -> tuple[dict[str, Contact], list[Outcome | None]]:
        contacts, outcomes = self._resolve(session, events, source, now)
        pending = [index for index, outcome in enumerate(outcomes) if outcome is None]
        judgement = judge(
            session,
            events,
            pending,
            {index: contacts[_key(events[index])].id for index in pending},
            self.config.tracking,
        )
        seen: set[str] = set()
        rows = []
        for index, event in enumerate(events):
            if outcomes[index] is not None:
                continue
            if event.id in seen:
                outcomes[index] = Outcome("duplicate", "the same id appears earlier in this batch")
                continue
            seen.add(event.id)
            contact = contacts[_key(event)]
            verdict = judgement.of(index)
            rows.append(
                {
                    "event_id": event.id,
                    "type": event.type,
                    "at": event.at,
                    "contact_id": contact.id,
                    "properties": dict(event.properties),
                    "raw": event.raw,
                    "source": source,
                    "received_at": now,
                    "traffic": verdict.traffic.value,
                    "traffic_reason": verdict.reason,
                }
            )
        new_ids = record_events(session, rows)
        fresh: dict[int, list[EventView]] = {}
        by_id: dict[int, Contact] = {}
        for index, event in enumerate(events):
            if outcomes[index] is not None:
                continue
            contact = contacts[_key(event)]
            if event.id not in new_ids:
                outcomes[index] = Outcome("duplicate", "already recorded", contact.id)
                continue
            new_ids.discard(event.id)  # a later copy in this batch is a duplicate
            outcomes[index] = Outcome("recorded", None, contact.id, judgement.of(index).traffic)
            fresh.setdefault(contact.id, []).append(
                EventView(
                    event.id, event.type, event.at, event.properties, judgement.of(index).traffic
                )
            )
            by_id[contact.id] = contact
            self._consequences(session, contact, event, now)
        if fresh:
            # The events first, then what they caused (points, stages, workflows).
            reasons = {
                event.id: reason
                for index, event in enumerate(events)
                if (reason := judgement.of(index).reason) is not None
            }
            self._record(fresh, by_id, reasons)
        bursts = [
            event_id
            for index, event_id in judgement.bursts
            if (outcome := outcomes[index]) is not None and outcome.recorded
        ]
        if bursts:
            # Clicks recorded as a person's that a new one shows were a machine's:
            # marked so, their points taken back (a wait_for they ended stays ended).
            reclassify(session, bursts, Traffic.MACHINE, BURST_REASON)
            self.scoring.revoke(session, by_id, bursts)
        if fresh:
            self.scoring.apply(session, by_id, fresh, now)
            wake_contacts(session, fresh, now)
            self.listener.after_events(session, by_id, fresh, now)
        return contacts, outcomes

    def _record(
        self,
        fresh: Mapping[int, Sequence[EventView]],
        by_id: Mapping[int, Contact],
        reasons: Mapping[str, str],
    ) -> None:
        """Each event for `simulate` and the demo's timelines (nothing when nobody listens);
        a machine's or a repeat with its class and why (`traffic`, `traffic_reason`)."""
        if self.record is discard:
            return
        for contact_id, views in fresh.items():
            for view in views:
                self.record(
                    Record(
                        view.at,
                        "event",
                        contact_id,
                        by_id[contact_id].email,
                        details={
                            "event": view.type,
                            **(
                                {"traffic": view.traffic, "traffic_reason": reasons.get(view.id)}
                                if view.traffic != Traffic.HUMAN
                                else {}
                            ),
                            **{
                                k: v
                                for k, v in view.properties.items()
                                if k in ("step", "url", "template")
                            },
                        },
                    )
                )

    def _resolve(
        self, session: Session, events: Sequence[IncomingEvent], source: str, now: datetime
    ) -> tuple[dict[str, Contact], list[Outcome | None]]:
        """Find (or create) each event's contact; refusals as outcomes."""
        emails = {e.email for e in events if e.email is not None}
        ids = {e.contact_id for e in events if e.contact_id is not None}
        found: dict[str, Contact] = {}
        by_email, by_id = loose_contacts(session, emails, ids)
        for contact in by_email:
            found[f"e:{contact.email}"] = contact
        for contact in by_id:
            found[f"i:{contact.id}"] = contact
        outcomes: list[Outcome | None] = []
        created: list[Contact] = []
        config = self.config
        # An address on the suppression list (an erased person, say) may come back
        # as a new contact, but suppressed: it is never emailed.
        new_emails = {
            e.email for e in events if e.email is not None and f"e:{e.email}" not in found
        }
        listed = suppression.reasons_for(session, new_emails)
        for event in events:
            key = _key(event)
            if key in found:
                outcomes.append(None)
            elif event.contact_id is not None:
                outcomes.append(Outcome("rejected", f"no contact with id {event.contact_id}"))
            elif event.type in EMAIL_EVENT_TYPES:
                outcomes.append(
                    Outcome(
                        "rejected",
                        f"no contact with email {event.email!r} (email events never create one)",
                    )
                )
            else:
                contact = Contact(
                    email=event.email,
                    stage=config.stages[0],
                    source=f"{source}:{event.id}",
                    created_at=now,
                    updated_at=now,
                    properties={},
                    tags=[],
                    score=0.0,
                    fit_score=0.0,
                    engagement_score=0.0,
                    consent_status="unknown",
                    soft_bounces=0,
                )
                if event.email in listed:
                    contact.suppressed_at = now
                    contact.suppression_reason = listed[event.email]
                found[key] = contact
                created.append(contact)
                outcomes.append(None)
        if created:
            add_contacts(session, created)
            self.stages.apply(
                session,
                {c.id: c for c in created},
                [StageMove(c.id, None, config.stages[0], "event") for c in created],
                now,
            )
            self.scoring.refit(session, created, now)
        return found, outcomes

    def _consequences(
        self, session: Session, contact: Contact, event: IncomingEvent, now: datetime
    ) -> None:
        """What an event changes about whether the contact may be emailed.

        Unsubscribes, complaints, hard bounces and too many soft bounces stop
        all email at once; a pause defers it; a form may give or withdraw
        consent (with its proof).
        """
        source = f"event:{event.id}"
        kind = event.type
        if kind == EventType.EMAIL_UNSUBSCRIBED:
            if contact.consent_status != "withdrawn":
                contact.consent_status = "withdrawn"
                contact.consent_at = event.at
                contact.consent_source = source
            suppression.add(session, contact.email, "unsubscribed", now, source=source)
            end_nurture(session, [contact.id], "unsubscribed", now)
        elif kind == EventType.EMAIL_COMPLAINED or (
            kind == EventType.EMAIL_BOUNCED and event.properties.get("bounce") == "hard"
        ):
            reason = kind.removeprefix("email.")
            self._suppress(session, contact, reason, now, source)
        elif kind == EventType.EMAIL_BOUNCED:
            contact.soft_bounces = (contact.soft_bounces or 0) + 1
            if contact.soft_bounces >= self.config.sending.soft_bounce_limit:
                self._suppress(session, contact, "soft-bounced", now, source)
        elif kind in _MAILBOX_WORKS:
            if contact.soft_bounces:
                contact.soft_bounces = 0
        elif kind == EventType.EMAIL_PAUSED:
            until = event.at + timedelta(days=int(event.properties["days"]))
            if contact.paused_until is None or until > contact.paused_until:
                contact.paused_until = until
        elif kind == EventType.FORM_SUBMITTED:
            self._form_consent(session, contact, event, now)

    @staticmethod
    def _suppress(
        session: Session, contact: Contact, reason: str, now: datetime, source: str
    ) -> None:
        suppression.add(session, contact.email, reason, now, source=source)
        if contact.suppressed_at is None:
            contact.suppressed_at = now
            contact.suppression_reason = reason
        end_nurture(session, [contact.id], f"suppressed:{reason}", now)

    @staticmethod
    def _form_consent(
        session: Session, contact: Contact, event: IncomingEvent, now: datetime
    ) -> None:
        """A form's consent, given or withdrawn by the person: it may lift an
        unsubscribe (only the contact can), never a bounce, complaint or erasure."""
        changes = consent.form_consent(event.properties, event.id, event.at)
        if changes is None:
            return
        if contact.consent_at is not None and event.at < contact.consent_at:
            return  # an older form arriving late does not undo a newer choice
        for column, value in changes.items():
            setattr(contact, column, value)
        if changes["consent_status"] == "granted":
            suppression.lift(session, contact.email, reasons=("unsubscribed",))
        else:
            suppression.add(session, contact.email, "unsubscribed", now, source=f"event:{event.id}")
            end_nurture(session, [contact.id], "unsubscribed", now)


#: Signs that the mailbox works: they reset the soft-bounce count.
_MAILBOX_WORKS = frozenset(
    {EventType.EMAIL_DELIVERED, EventType.EMAIL_OPENED, EventType.EMAIL_CLICKED}
)


def _key(event: IncomingEvent) -> str:
    return f"e:{event.email}" if event.email is not None else f"i:{event.contact_id}"


def _problem(event: IncomingEvent) -> str | None:
    return (
        value_problem(event.id, "id")
        or value_problem(dict(event.properties), "properties")
        or value_problem(event.raw, "the raw payload")
        or moment_problem(event.at, "at")
    )

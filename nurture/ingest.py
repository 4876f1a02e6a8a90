"""Events in: normalise at the edge, record once, wake whoever waits for them.

Whatever door an event came in by (file, API, tracking link, ESP webhook), it
becomes an `IncomingEvent` here, is validated whole before anything is written
(a bad event is refused with its reason, never half-applied), and is recorded
idempotently by its id. Recording wakes the contact's waiting enrollments (a
`wait_for` need not wait for the next poll), enrolls the contact in workflows
that start on this event, and applies the consent consequences of email
feedback: an unsubscribe, a complaint or a hard bounce stops all email at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture import clock
from nurture.definitions.base import parse_duration
from nurture.engine.enrollment import Trigger
from nurture.engine.executor import EventView
from nurture.engine.records import Record
from nurture.engine.service import Engine
from nurture.errors import NurtureError
from nurture.events import EMAIL_EVENT_TYPES, EVENT_TYPES, is_known_event_type
from nurture.importer import is_valid_email
from nurture.store import work
from nurture.store.models import Contact, Event

_RELATIVE = re.compile(r"^\+\s*(.+)$")


class InvalidEvent(NurtureError):
    """The event was refused."""


@dataclass(frozen=True)
class IncomingEvent:
    id: str
    type: str
    at: datetime
    email: str | None = None
    contact_id: int | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)
    raw: Any = None


def parse_event(data: Any, *, now: datetime, start: datetime | None = None) -> IncomingEvent:
    """Validate one event object (SPEC §5); `at` may be "+3d" when `start` is given."""
    if not isinstance(data, Mapping):
        raise InvalidEvent("an event must be a JSON object")
    unknown = set(data) - {"id", "type", "at", "contact", "properties"}
    if unknown:
        raise InvalidEvent(f"unknown field(s): {', '.join(sorted(unknown))}")
    event_id = data.get("id")
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > 200:
        raise InvalidEvent("'id' is required: a string of at most 200 characters")
    kind = data.get("type")
    if not isinstance(kind, str) or not is_known_event_type(kind):
        raise InvalidEvent(
            f"unknown event type {kind!r} (expected one of {', '.join(EVENT_TYPES)} or custom.*)"
        )
    at = _moment(data.get("at"), now, start)
    contact = data.get("contact")
    if (
        not isinstance(contact, Mapping)
        or len(contact) != 1
        or not ({"email"} == set(contact) or {"id"} == set(contact))
    ):
        raise InvalidEvent('\'contact\' must be {"email": ...} or {"id": ...}')
    email = contact.get("email")
    contact_id = contact.get("id")
    if email is not None:
        if not isinstance(email, str) or not is_valid_email(email.strip().lower()):
            raise InvalidEvent(f"invalid contact email {email!r}")
        email = email.strip().lower()
    elif not isinstance(contact_id, int) or isinstance(contact_id, bool):
        raise InvalidEvent("contact id must be an integer")
    properties = data.get("properties", {})
    if not isinstance(properties, Mapping):
        raise InvalidEvent("'properties' must be an object")
    if kind == "email.bounced" and properties.get("bounce") not in ("hard", "soft"):
        raise InvalidEvent("email.bounced needs properties.bounce: hard or soft")
    return IncomingEvent(
        event_id.strip(), kind, at, email, contact_id, dict(properties), dict(data)
    )


def _moment(value: Any, now: datetime, start: datetime | None) -> datetime:
    if value is None:
        return now
    if not isinstance(value, str):
        raise InvalidEvent("'at' must be an ISO 8601 time")
    relative = _RELATIVE.match(value.strip())
    if relative:
        if start is None:
            raise InvalidEvent("a relative 'at' (+3d) is only allowed in simulations")
        delta = parse_duration(relative.group(1))
        if delta is None:
            raise InvalidEvent(f"invalid relative time {value!r} (e.g. +3d, +36h)")
        return start + delta
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidEvent(f"invalid time {value!r} (ISO 8601 expected)") from None
    if moment.tzinfo is None:
        raise InvalidEvent(f"time {value!r} needs a timezone (e.g. Z or +01:00)")
    if moment > now + timedelta(minutes=5):
        raise InvalidEvent(f"time {value!r} is in the future")
    return clock.as_utc(moment)


@dataclass(frozen=True)
class Ingested:
    recorded: bool  # False: the same id was seen before
    contact_id: int | None


class Ingestor:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def ingest(self, session: Session, event: IncomingEvent, source: str) -> Ingested:
        """Record `event` in the caller's transaction; a duplicate id changes nothing."""
        now = clock.now()
        contact = self._contact(session, event, source, now)
        row = {
            "event_id": event.id,
            "type": event.type,
            "at": event.at,
            "contact_id": contact.id,
            "properties": dict(event.properties),
            "raw": event.raw,
            "source": source,
            "received_at": now,
        }
        if not work.record_event(session, row):
            return Ingested(False, contact.id)
        self._consequences(contact, event, now)
        work.wake_contact(session, contact.id, now)
        view = EventView(event.id, event.type, event.at, event.properties)
        self._engine.enroller.enroll(
            session, {contact.id: [Trigger(event=view)]}, {contact.id: contact}, now
        )
        self._engine.record(
            Record(
                event.at,
                "event",
                contact.id,
                contact.email,
                details={
                    "event": event.type,
                    **{
                        k: v
                        for k, v in event.properties.items()
                        if k in ("step", "url", "template")
                    },
                },
            )
        )
        return Ingested(True, contact.id)

    def _contact(
        self, session: Session, event: IncomingEvent, source: str, now: datetime
    ) -> Contact:
        if event.contact_id is not None:
            found = session.get(Contact, event.contact_id)
            if found is None:
                raise InvalidEvent(f"no contact with id {event.contact_id}")
            return found
        assert event.email is not None
        found = session.scalar(select(Contact).where(Contact.email == event.email))
        if found is not None:
            return found
        if event.type in EMAIL_EVENT_TYPES:
            raise InvalidEvent(
                f"no contact with email {event.email!r} (email events never create one)"
            )
        config = self._engine.project.config
        contact = Contact(
            email=event.email,
            stage=config.stages[0],
            source=f"event:{event.id}",
            created_at=now,
            updated_at=now,
            properties={},
            tags=[],
        )
        session.add(contact)
        session.flush()
        self._engine.on_stage_changes(session, [(contact.id, None, config.stages[0])])
        return contact

    @staticmethod
    def _consequences(contact: Contact, event: IncomingEvent, now: datetime) -> None:
        if event.type == "email.unsubscribed":
            contact.consent_status = "withdrawn"
            contact.consent_at = event.at
        elif event.type == "email.complained" or (
            event.type == "email.bounced" and event.properties.get("bounce") == "hard"
        ):
            contact.suppressed_at = now
            contact.suppression_reason = event.type.removeprefix("email.")


def event_rows(session: Session, contact_id: int) -> list[Event]:
    return list(
        session.scalars(select(Event).where(Event.contact_id == contact_id).order_by(Event.at))
    )

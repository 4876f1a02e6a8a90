"""Events at the edge: one event object validated whole into an `IncomingEvent`.

Every door (the API, a file, a tracking link, an ESP webhook) hands its events
here or builds `IncomingEvent`s itself, so the ingest behind them sees one
shape, already checked: a bad event is refused with its reason before
anything is written (SPEC §5).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import nurture.clock as clock
import nurture.delivery.consent as consent
from nurture.addresses import canonical_email
from nurture.contacts.values import moment_problem, shown, value_problem
from nurture.definitions.base import did_you_mean, parse_duration
from nurture.errors import NurtureError
from nurture.events import EVENT_TYPES, EventType, is_known_event_type
from nurture.lifecycle.traffic import Hit

_RELATIVE = re.compile(r"^\+\s*(.+)$")


class InvalidEvent(NurtureError):
    """The event was refused."""


@dataclass(frozen=True)
class IncomingEvent:
    """One event in our own shape, whatever door it came in by (file, API, tracking, ESP webhook).

    Built by `parse_event` (SPEC §5) or a webhook; the `Ingestor` records it once by `id`.
    """

    id: str
    type: str
    at: datetime
    email: str | None = None
    contact_id: int | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)
    raw: Any = None
    #: The request behind an open or a click (tracking link, ESP report), for
    #: telling a person from a machine (`nurture.lifecycle.traffic`).
    hit: Hit | None = None


def parse_event(data: Any, *, now: datetime, start: datetime | None = None) -> IncomingEvent:
    """Validate one event object (SPEC §5); `at` may be "+3d" when `start` is given."""
    if not isinstance(data, Mapping):
        raise InvalidEvent("an event must be a JSON object")
    problem = value_problem(data)
    if problem is not None:
        raise InvalidEvent(problem)
    unknown = set(data) - {"id", "type", "at", "contact", "properties"}
    if unknown:
        raise InvalidEvent(f"unknown field(s): {', '.join(shown(k) for k in sorted(unknown))}")
    event_id = data.get("id")
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > 200:
        raise InvalidEvent("'id' is required: a string of at most 200 characters")
    kind = data.get("type")
    if not isinstance(kind, str) or not is_known_event_type(kind):
        hint = did_you_mean(kind, EVENT_TYPES) if isinstance(kind, str) else ""
        raise InvalidEvent(
            f"unknown event type {shown(kind)}{hint} (expected one of {', '.join(EVENT_TYPES)} "
            "or custom.*)"
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
    if isinstance(contact_id, float) and contact_id.is_integer():
        contact_id = int(contact_id)  # JSON has one number type: 42.0 is 42
    if email is not None:
        canonical = canonical_email(email) if isinstance(email, str) else None
        if canonical is None:
            raise InvalidEvent(f"invalid contact email {shown(email)}")
        email = canonical
    elif not isinstance(contact_id, int) or isinstance(contact_id, bool):
        raise InvalidEvent("contact id must be an integer")
    properties = data.get("properties", {})
    if not isinstance(properties, Mapping):
        raise InvalidEvent("'properties' must be an object")
    if kind == EventType.EMAIL_BOUNCED and properties.get("bounce") not in ("hard", "soft"):
        raise InvalidEvent("email.bounced needs properties.bounce: hard or soft")
    problem = (
        consent.check_form_consent(properties)
        if kind == EventType.FORM_SUBMITTED
        else consent.check_pause(properties)
        if kind == EventType.EMAIL_PAUSED
        else None
    )
    if problem is not None:
        raise InvalidEvent(problem)
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
            raise InvalidEvent(
                f"'at' is relative ({shown(value)}): relative times are for 'nurture simulate'; "
                "give an ISO 8601 time (e.g. 2026-03-02T09:00:00Z)"
            )
        delta = parse_duration(relative.group(1))
        if delta is None:
            raise InvalidEvent(f"invalid relative time {shown(value)} (e.g. +3d, +36h)")
        return start + delta
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidEvent(f"invalid time {shown(value)} (ISO 8601 expected)") from None
    if moment.tzinfo is None:
        raise InvalidEvent(f"time {shown(value)} needs a timezone (e.g. Z or +01:00)")
    problem = moment_problem(moment, "'at'")
    if problem is not None:
        raise InvalidEvent(problem)
    if moment > now + timedelta(minutes=5):
        raise InvalidEvent(f"time {shown(value)} is in the future")
    return clock.as_utc(moment)

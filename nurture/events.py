"""The one event vocabulary.

Every signal, whatever door it came in by (API, tracking link, ESP webhook,
import), is normalised to one of these types at the edge, so scoring rules and
`wait_for` steps are written against a closed list that `validate` can check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: Signals that come from outside: engagement, email feedback, web activity.
EXTERNAL_EVENT_TYPES: tuple[str, ...] = (
    "email.delivered",
    "email.opened",
    "email.clicked",
    "email.bounced",
    "email.complained",
    "email.unsubscribed",
    "email.paused",  # extension: the contact paused nurture email (properties.days)
    "page.visited",
    "form.submitted",
    "content.downloaded",
    "webinar.registered",
    "demo.requested",
    "meeting.booked",
)

#: Events nurture emits itself, so workflows can react to them (`enroll: {event:
#: handoff.rejected}` for a recycle program).
SYSTEM_EVENT_TYPES: tuple[str, ...] = (
    "stage.changed",
    "handoff.created",
    "handoff.accepted",
    "handoff.rejected",
)

EVENT_TYPES: tuple[str, ...] = EXTERNAL_EVENT_TYPES + SYSTEM_EVENT_TYPES

#: Email events concern a send we made: they never create a contact.
EMAIL_EVENT_TYPES = frozenset(t for t in EVENT_TYPES if t.startswith("email."))

CUSTOM_PREFIX = "custom."


def is_known_event_type(name: str) -> bool:
    return name in EVENT_TYPES or (
        name.startswith(CUSTOM_PREFIX) and len(name) > len(CUSTOM_PREFIX)
    )


#: Signals of interest: they earn "last engaged" (temperature), unlike delivery
#: notices, bounces and complaints.
ENGAGEMENT_TYPES = frozenset(
    {
        "email.opened",
        "email.clicked",
        "page.visited",
        "form.submitted",
        "content.downloaded",
        "webinar.registered",
        "demo.requested",
        "meeting.booked",
    }
)


def is_engagement(event_type: str) -> bool:
    return event_type in ENGAGEMENT_TYPES or event_type.startswith("custom.")


@dataclass(frozen=True)
class EventView:
    """An event as a `wait_for` match expression sees it (`event.type`, `event.url`…)."""

    id: str
    type: str
    at: datetime
    properties: Mapping[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self.properties[name]
        except KeyError:
            raise AttributeError(name) from None

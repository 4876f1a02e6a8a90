"""The one event vocabulary.

Every signal, whatever door it came in by (API, tracking link, ESP webhook,
import), is normalised to one of these types at the edge, so scoring rules and
`wait_for` steps are written against a closed list that `validate` can check.
"""

from __future__ import annotations

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

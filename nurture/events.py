"""The one event vocabulary, and the view of an event that expressions read.

Every signal, whatever door it came in by (API, tracking link, ESP webhook,
import), is normalised to an `EventType` at the edge, so scoring rules and
`wait_for` steps are written against a closed list that `validate` can check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    """Every event type nurture knows, one member each (``custom.*`` aside).

    Members are strings (`EventType.EMAIL_OPENED == "email.opened"`), so they
    compare with what the database and the files hold.
    """

    #: The relay or ESP accepted our email for the mailbox (a delivery report).
    EMAIL_DELIVERED = "email.delivered"
    #: The email was opened (tracking pixel, or the ESP's report).
    EMAIL_OPENED = "email.opened"
    #: A link in the email was followed (tracked link, or the ESP's report).
    EMAIL_CLICKED = "email.clicked"
    #: The email bounced; `properties.bounce` says ``hard`` or ``soft``.
    EMAIL_BOUNCED = "email.bounced"
    #: The recipient marked the email as spam: no more email, ever.
    EMAIL_COMPLAINED = "email.complained"
    #: The recipient unsubscribed (link, one-click POST, mailto, or the ESP).
    EMAIL_UNSUBSCRIBED = "email.unsubscribed"
    #: Extension: the contact paused nurture email for `properties.days`.
    EMAIL_PAUSED = "email.paused"
    #: A page of the company's site was visited (`properties.url`).
    PAGE_VISITED = "page.visited"
    #: A form was sent; `properties.consent` may give or withdraw consent.
    FORM_SUBMITTED = "form.submitted"
    #: A piece of content was downloaded (`properties.title`, `url`).
    CONTENT_DOWNLOADED = "content.downloaded"
    #: The contact registered for a webinar.
    WEBINAR_REGISTERED = "webinar.registered"
    #: The contact asked for a demo.
    DEMO_REQUESTED = "demo.requested"
    #: The contact booked a meeting.
    MEETING_BOOKED = "meeting.booked"
    #: Nurture's own: the contact moved stage (`from`, `to`, `cause`, `score`).
    STAGE_CHANGED = "stage.changed"
    #: Nurture's own: a handoff to sales was opened (`handoff`, `owner`).
    HANDOFF_CREATED = "handoff.created"
    #: Nurture's own: sales accepted the handoff.
    HANDOFF_ACCEPTED = "handoff.accepted"
    #: Nurture's own: sales sent the lead back to nurturing (`reason`).
    HANDOFF_REJECTED = "handoff.rejected"
    #: Nurture's own: a rejected handoff was opened again.
    HANDOFF_REOPENED = "handoff.reopened"
    #: Nurture's own: the contact entered a segment of nurture.yaml (`segment`, `count`).
    SEGMENT_ENTERED = "segment.entered"
    #: Nurture's own: the contact left a segment (`segment`, `count`).
    SEGMENT_EXITED = "segment.exited"


#: Events nurture emits itself, so workflows can react to them (`enroll: {event:
#: handoff.rejected}` for a recycle program) and CRMs can subscribe to them.
SYSTEM_EVENT_TYPES: tuple[EventType, ...] = (
    EventType.STAGE_CHANGED,
    EventType.HANDOFF_CREATED,
    EventType.HANDOFF_ACCEPTED,
    EventType.HANDOFF_REJECTED,
    EventType.HANDOFF_REOPENED,
    EventType.SEGMENT_ENTERED,
    EventType.SEGMENT_EXITED,
)

#: Segment entries and exits: what `wait_for: {segment: …}` and `enroll: {segment: …}`
#: react to; a segment never counts them (one segment's change would re-judge the others).
SEGMENT_EVENT_TYPES = frozenset({EventType.SEGMENT_ENTERED, EventType.SEGMENT_EXITED})

#: Signals that come from outside: engagement, email feedback, web activity.
EXTERNAL_EVENT_TYPES: tuple[EventType, ...] = tuple(
    t for t in EventType if t not in SYSTEM_EVENT_TYPES
)

EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in EventType)

#: Email events concern a send we made: they never create a contact.
EMAIL_EVENT_TYPES = frozenset(t for t in EventType if t.startswith("email."))

CUSTOM_PREFIX = "custom."


def is_known_event_type(name: str) -> bool:
    """One of `EventType`, or a custom type (``custom.<anything>``)."""
    return name in EVENT_TYPES or (
        name.startswith(CUSTOM_PREFIX) and len(name) > len(CUSTOM_PREFIX)
    )


#: Signals of interest: they earn "last engaged" (temperature), unlike delivery
#: notices, bounces and complaints.
ENGAGEMENT_TYPES = frozenset(
    {
        EventType.EMAIL_OPENED,
        EventType.EMAIL_CLICKED,
        EventType.PAGE_VISITED,
        EventType.FORM_SUBMITTED,
        EventType.CONTENT_DOWNLOADED,
        EventType.WEBINAR_REGISTERED,
        EventType.DEMO_REQUESTED,
        EventType.MEETING_BOOKED,
    }
)


def is_engagement(event_type: str) -> bool:
    """Whether the event counts as the contact engaging (temperature's "last engaged")."""
    return event_type in ENGAGEMENT_TYPES or event_type.startswith("custom.")


class Traffic(StrEnum):
    """Who made an open or a click (`nurture.lifecycle.traffic` decides).

    Mail-security gateways fetch every link of every email, image proxies open
    every email, and a forwarded link can be replayed at will: none of that is a
    person's interest. Every event keeps its class; only `HUMAN` ones score and
    end a `wait_for` unless a rule or step says `count: all`.
    """

    #: A person, as far as anything tells: the default for every event.
    HUMAN = "human"
    #: A scanner, crawler, image proxy, prefetch or HEAD request.
    MACHINE = "machine"
    #: The same email opened, or the same link clicked, again within `tracking.repeat_within`.
    REPEAT = "repeat"


#: What a scoring rule or a `wait_for` step counts: people only, or every signal.
COUNTS = ("human", "all")


@dataclass(frozen=True)
class EventView:
    """An event as a `wait_for` match expression sees it (`event.type`, `event.url`…)."""

    id: str
    type: str
    at: datetime
    properties: Mapping[str, Any] = field(default_factory=dict)
    #: A `Traffic` value: expressions may read it (`event.traffic == 'machine'`).
    traffic: str = Traffic.HUMAN

    def counts(self, count: str) -> bool:
        """Whether a rule or step that counts `count` ("human" or "all") sees this event."""
        return count == "all" or self.traffic == Traffic.HUMAN

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self.properties[name]
        except KeyError:
            raise AttributeError(name) from None

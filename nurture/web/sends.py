"""Email events about one of our sends: tracking links, unsubscribes, ESP webhooks.

Whatever door it came in by, an event about an email names a send (by the id
in a signed token, our `X-Nurture-Send-Id`, or the Message-ID we stored) and is
recorded for that send's contact with the send's workflow, step and template in
its properties, so scoring rules and `wait_for` steps (`event.step ==
'guide'`) can tell emails apart. A send that no longer exists (its contact was
erased) records nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

import nurture.clock as clock
from nurture.events import Traffic
from nurture.lifecycle.incoming import IncomingEvent
from nurture.lifecycle.ingest import Outcome
from nurture.lifecycle.sends import load_send, send_properties
from nurture.lifecycle.traffic import Hit
from nurture.store.contacts import contact_by_id
from nurture.web.context import WebContext

log = logging.getLogger("nurture.web")


def record_for_send(
    context: WebContext,
    send_id: object,
    *,
    event_type: str,
    event_id: str,
    properties: Mapping[str, Any] | None = None,
    raw: Any = None,
    source: str = "tracking",
    unless_withdrawn: bool = False,
    hit: Hit | None = None,
) -> str:
    """Record one email event for this send's contact, in its own transaction.

    Returns "recorded" (or "recorded:machine", "recorded:repeat" for a signal that
    is not a person's), "duplicate", "gone" (no such send) or "skipped" (the
    contact has already withdrawn consent and `unless_withdrawn` was asked).
    """
    status: str | None = None

    def event_of(session: Session) -> list[IncomingEvent]:
        nonlocal status
        status = None
        send = load_send(session, send_id)
        if send is None:
            status = "gone"
            return []
        if unless_withdrawn:
            contact = contact_by_id(session, send.contact_id)
            if contact is None:
                status = "gone"
                return []
            if contact.consent_status == "withdrawn":
                status = "skipped"
                return []
        return [
            IncomingEvent(
                id=event_id,
                type=event_type,
                at=clock.now(),
                contact_id=send.contact_id,
                properties={**send_properties(send), **(properties or {})},
                raw=raw,
                hit=hit,
            )
        ]

    outcomes = context.ingestor.ingest(context.engine.sessions, event_of, source)
    return status or _status(outcomes[0])


def _status(outcome: Outcome) -> str:
    if outcome.status == "rejected":
        return "gone"
    if outcome.recorded and outcome.traffic != Traffic.HUMAN:
        return f"recorded:{outcome.traffic}"
    return outcome.status

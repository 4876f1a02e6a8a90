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
from nurture.lifecycle.traffic import Hit
from nurture.store import sends as ledger
from nurture.store.contacts import contact_by_id
from nurture.store.models import Send
from nurture.web.context import WebContext

log = logging.getLogger("nurture.web")


def send_properties(send: Send) -> dict[str, Any]:
    return {
        "send_id": send.id,
        "workflow": send.workflow,
        "step": send.step,
        "template": send.template,
    }


def load_send(session: Session, send_id: object) -> Send | None:
    """The send a token or webhook names, or None (unknown, or not an id at all)."""
    if isinstance(send_id, str) and send_id.isascii() and send_id.isdigit() and len(send_id) <= 18:
        send_id = int(send_id)
    if not isinstance(send_id, int) or isinstance(send_id, bool) or not 0 < send_id < 2**63:
        return None
    found = ledger.load_sends(session, [send_id])
    return found[0] if found else None


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

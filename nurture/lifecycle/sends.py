"""Which of our sends an email event is about, and what it tells the event about it.

Every door that reports on an email (tracking links, ESP webhooks, bounces
read from a mailbox) names a send and records the event for that send's
contact with the send's workflow, step and template in its properties, so
scoring rules and `wait_for` steps (`event.step == 'guide'`) can tell emails
apart. One definition of both, here, for every door.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from nurture.store import sends as ledger
from nurture.store.models import Send


def send_properties(send: Send) -> dict[str, Any]:
    return {
        "send_id": send.id,
        "workflow": send.workflow,
        "step": send.step,
        "template": send.template,
        # An A/B test's variant: `event.variant` for scoring rules and wait_for matches.
        **({"variant": send.variant} if send.variant else {}),
    }


def load_send(session: Session, send_id: object) -> Send | None:
    """The send a token, webhook or bounce names, or None (unknown, or not an id at all)."""
    if isinstance(send_id, str) and send_id.isascii() and send_id.isdigit() and len(send_id) <= 18:
        send_id = int(send_id)
    if not isinstance(send_id, int) or isinstance(send_id, bool) or not 0 < send_id < 2**63:
        return None
    found = ledger.load_sends(session, [send_id])
    return found[0] if found else None

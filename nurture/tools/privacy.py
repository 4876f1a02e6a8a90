"""GDPR rights: export everything held about a person, or erase it.

**Export** (right of access, art. 15; portability, art. 20) gathers every
row that names the person, column by column, as JSON: nothing is
summarised away, so the answer to "what do you hold about me?" is complete
by construction.

**Erase** (right to erasure, art. 17) replaces personal data and keeps the
facts reports are made of. The contact row stays with a tombstone address
(``erased-<id>@invalid``), its stage, scores and timestamps; names, company,
timezone, properties, tags and consent proof go. Events keep their type and
time but lose their payloads; sends keep their template and status but lose
their subject; handoff snapshots and notifications lose the person's data.
So funnels, conversion rates and send counts still add up afterwards.

What must *not* be forgotten is that this person does not want our email:
the address's hash goes on the suppression list (`nurture.delivery.suppression`), so
a later import, event or API call with the same address creates a
suppressed contact that is never emailed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

import nurture.delivery.suppression as suppression
from nurture.errors import ContactNotFound
from nurture.store.contacts import contact_by_email
from nurture.store.enrollments import end_nurture
from nurture.store.models import Contact
from nurture.store.privacy import (
    as_dict,
    events_of,
    forget_sends,
    handoffs_of,
    notifications_of,
    rows_about,
)
from nurture.store.segments import forget_standings
from nurture.store.statuses import NotificationStatus
from nurture.store.visitors import forget_contact

#: Event properties that describe our own emails, not the person: kept on erasure.
KEPT_EVENT_PROPERTIES = frozenset(
    {"send_id", "workflow", "step", "template", "bounce", "method", "days", "consent"}
)


def tombstone(contact_id: int) -> str:
    """The address an erased contact keeps: unique, and never deliverable (RFC 6761)."""
    return f"erased-{contact_id}@invalid"


def export_person(session: Session, email: str, now: datetime) -> dict[str, Any]:
    """Everything held about the person with this address (raises `ContactNotFound`)."""
    address = suppression.normalise(email)
    contact = contact_by_email(session, address)
    listed = suppression.entry(session, address)
    if contact is None and listed is None:
        raise ContactNotFound(f"no contact with email {email!r}, and not on the suppression list")
    data: dict[str, Any] = {
        "exported_at": now.isoformat(),
        "email": address,
        "suppression": None
        if listed is None
        else {
            "reason": listed.reason,
            "note": listed.note,
            "source": listed.source,
            "since": listed.created_at.isoformat(),
        },
        "contact": None,
    }
    if contact is None:
        return data
    row = as_dict(contact)
    data["contact"] = row
    data["consent"] = {
        "status": contact.consent_status,
        "basis": contact.consent_basis,
        "source": contact.consent_source,
        "at": row["consent_at"],
        "proof": contact.consent_proof,
    }
    data.update(rows_about(session, contact.id))
    return data


@dataclass(frozen=True)
class Erasure:
    """What `erase_person` did (counts of rows anonymised)."""

    contact_id: int | None
    events: int = 0
    sends: int = 0
    handoffs: int = 0
    notifications: int = 0
    enrollments_ended: int = 0


def erase_person(session: Session, email: str, now: datetime) -> Erasure:
    """Erase the person's data, keep anonymised facts, suppress the address for good.

    An address with no contact is still put on the list (by hash only), so it
    is never emailed if it shows up later. In the caller's transaction.
    """
    address = suppression.normalise(email)
    suppression.add(session, address, "erased", now, source="erase", keep_address=False)
    # The entry may have existed with another reason and the address in clear.
    suppression.forget_address(session, address)
    contact = contact_by_email(session, address)
    if contact is None:
        return Erasure(None)
    ended = end_nurture(session, [contact.id], "erased", now)
    stand_in = tombstone(contact.id)
    _anonymise_contact(contact, stand_in, now)
    events = _scrub_events(session, contact.id)
    sends = forget_sends(session, contact.id)
    forget_contact(session, contact.id)  # the website no longer knows their browser
    forget_standings(session, contact.id)  # nor does any segment
    handoffs = _scrub_handoffs(session, contact.id, address, stand_in)
    notifications = _scrub_notifications(session, contact.id, address, stand_in)
    return Erasure(
        contact.id,
        events=events,
        sends=sends,
        handoffs=handoffs,
        notifications=notifications,
        enrollments_ended=ended,
    )


def _anonymise_contact(contact: Contact, stand_in: str, now: datetime) -> None:
    contact.email = stand_in
    contact.first_name = contact.last_name = contact.company = contact.timezone = None
    contact.properties = {}
    contact.tags = []
    contact.consent_status = "withdrawn"
    contact.consent_basis = contact.consent_source = None
    contact.consent_proof = None
    contact.consent_at = now
    contact.suppressed_at = now
    contact.suppression_reason = "erased"
    contact.paused_until = None
    contact.erased_at = now


def _scrub_events(session: Session, contact_id: int) -> int:
    count = 0
    for event in events_of(session, contact_id):
        event.properties = {k: v for k, v in event.properties.items() if k in KEPT_EVENT_PROPERTIES}
        event.raw = None
        count += 1
    return count


def _scrub_handoffs(session: Session, contact_id: int, address: str, stand_in: str) -> int:
    count = 0
    for handoff in handoffs_of(session, contact_id):
        snapshot = dict(handoff.snapshot or {})
        contact = dict(snapshot.get("contact") or {})
        snapshot["contact"] = {
            "email": stand_in,
            "name": None,
            "company": None,
            "stage": contact.get("stage"),
            "properties": {},
        }
        snapshot["timeline"] = [
            {k: v for k, v in item.items() if k in ("at", "type", "step", "template")}
            for item in snapshot.get("timeline") or []
        ]
        if snapshot.get("last_content"):
            snapshot["last_content"] = {
                k: v for k, v in snapshot["last_content"].items() if k in ("at", "type")
            }
        snapshot["emails"] = [{**item, "subject": None} for item in snapshot.get("emails") or []]
        handoff.snapshot = scrub(snapshot, address, stand_in)
        handoff.reason = None  # a salesperson's note about the person
        handoff.actions = [
            {k: v for k, v in action.items() if k != "reason"} for action in handoff.actions or []
        ]
        count += 1
    return count


def _scrub_notifications(session: Session, contact_id: int, address: str, stand_in: str) -> int:
    """Notifications about the person lose their payload (pending ones are not sent);
    others that mention the address (weekly digests) have it replaced."""
    count = 0
    for notification in notifications_of(session, contact_id):
        notification.payload = {"erased": True}
        notification.log = None
        notification.last_error = None
        if notification.status == NotificationStatus.PENDING:
            notification.status = NotificationStatus.FAILED
            notification.last_error = "the contact was erased"
            notification.next_attempt_at = None
        count += 1
    for notification in notifications_of(session, None):
        cleaned = scrub(notification.payload, address, stand_in)
        if cleaned != notification.payload:
            notification.payload = cleaned
            count += 1
    return count


def scrub(value: Any, address: str, stand_in: str) -> Any:
    """`value` with every occurrence of `address` in its strings replaced."""
    if isinstance(value, str):
        if address not in value.lower():
            return value
        return re.sub(re.escape(address), stand_in, value, flags=re.IGNORECASE)
    if isinstance(value, dict):
        return {k: scrub(v, address, stand_in) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, address, stand_in) for v in value]
    return value

"""The suppression list: addresses nurture must never email again.

Hard bounces, complaints, unsubscribes, repeated soft bounces, manual
entries (`nurture suppress`) and erased people all land in one table keyed
by a hash of the normalised address. The contact row mirrors it
(`suppressed_at`, `suppression_reason`) so the executor and the delivery
check read no extra table per contact; delivery checks the hashes too, so an
address suppressed without a contact (an entry made before the import that
creates it) is still never emailed.

**Why a plain SHA-256, not an HMAC with the signing key.** An erasure's
suppression must hold for ever: an HMAC keyed with `NURTURE_SECRET_KEY`
would silently stop matching the day that key is rotated (it signs links and
is meant to be rotatable), and every erased person would become emailable
again without anyone noticing. A keyed hash would protect the list only
against someone who has the database but not the key, which sit on the same
machines. A plain SHA-256 of the normalised address is stable, needs no
secret (a marketer's `nurture contacts import` can check it), and is the form
in which ESPs and suppression-list services exchange hashed addresses. What
it cannot hide is whether a *known* address is on the list; it never reveals
an address that is not already known, which is what erasure requires.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from nurture.addresses import normalise_email
from nurture.store import suppressions
from nurture.store.contacts import contact_by_email
from nurture.store.enrollments import end_nurture
from nurture.store.models import Contact, Suppression

#: Reasons an address is suppressed; the contact's `suppression_reason` uses the same words.
REASONS = ("bounced", "complained", "unsubscribed", "soft-bounced", "manual", "erased")


def normalise(email: str) -> str:
    """As contacts are stored (`nurture.contacts.parsing.canonical_email`)."""
    return normalise_email(email)


def email_hash(email: str) -> str:
    """SHA-256 hex of the normalised address (see the module docstring for why unkeyed)."""
    return _sha256(normalise(email))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hashes_of(email: str) -> set[str]:
    """Every hash the address may be listed under: its normal form's, and the one of
    its ASCII (IDNA) spelling, which entries made before addresses were normalised
    (#13) may carry; an erased person's entry, a hash alone, cannot be rewritten."""
    canonical = normalise(email)
    found = {_sha256(canonical)}
    local, _, domain = canonical.rpartition("@")
    if not domain.isascii():
        with contextlib.suppress(UnicodeError):
            found.add(_sha256(f"{local}@{domain.encode('idna').decode('ascii')}"))
    return found


@dataclass(frozen=True)
class Entry:
    """One suppression-list entry as read back, for the CLI and the GDPR export.

    `email` is None once the person was erased; the hash alone keeps the address suppressed.
    """

    email: str | None
    email_hash: str
    reason: str
    note: str | None
    source: str | None
    created_at: datetime


def add(
    session: Session,
    email: str,
    reason: str,
    now: datetime,
    *,
    note: str | None = None,
    source: str | None = None,
    keep_address: bool = True,
) -> bool:
    """Put `email` on the list (first reason wins); returns True if it was not on it.

    Only the list: `suppress` also stops the contact. `keep_address` False
    stores the hash alone (an erasure).
    """
    assert reason in REASONS, reason
    return suppressions.insert_entry(
        session,
        {
            "email_hash": email_hash(email),
            "email": normalise(email) if keep_address else None,
            "reason": reason,
            "note": note,
            "source": source,
            "created_at": now,
        },
    )


def suppress(
    session: Session,
    email: str,
    reason: str,
    now: datetime,
    *,
    note: str | None = None,
    source: str | None = None,
) -> Contact | None:
    """List the address and stop its contact, if there is one: every running
    workflow ends (reason ``suppressed:<reason>``) and claimed emails are skipped
    at send time. Returns the contact. Unsubscribes go through consent instead
    (they are listed with `add`), so a later opt-in can lift them."""
    add(session, email, reason, now, note=note, source=source)
    contact = contact_by_email(session, normalise(email))
    if contact is not None and contact.suppressed_at is None:
        contact.suppressed_at = now
        contact.suppression_reason = reason
        session.flush()
        end_nurture(session, [contact.id], f"suppressed:{reason}", now)
    return contact


def lift(session: Session, email: str, *, reasons: Collection[str] | None = None) -> bool:
    """Take the address off the list (only entries with one of `reasons`, if given);
    the contact is emailable again unless its consent says otherwise."""
    removed = False
    for digest in hashes_of(email):
        removed = suppressions.delete_entries(session, digest, reasons) or removed
    contact = contact_by_email(session, normalise(email))
    if contact is not None and contact.suppressed_at is not None and reasons is None:
        contact.suppressed_at = None
        contact.suppression_reason = None
        contact.soft_bounces = 0
        removed = True
    return removed


def reasons_for(session: Session, emails: Collection[str]) -> dict[str, str]:
    """Normalised address → suppression reason, for the ones among `emails` on the list."""
    hashes = {digest: normalise(e) for e in emails for digest in hashes_of(e)}
    if not hashes:
        return {}
    return {
        hashes[digest]: reason
        for digest, reason in suppressions.reasons_by_hash(session, hashes).items()
    }


def forget_address(session: Session, email: str) -> None:
    """Keep the entry, drop the address in clear (an erasure)."""
    suppressions.forget_address(session, email_hash(email))


def entries(session: Session, reason: str | None = None) -> Sequence[Entry]:
    return [_entry(s) for s in suppressions.list_entries(session, reason)]


def entry(session: Session, email: str) -> Entry | None:
    for digest in sorted(hashes_of(email), key=lambda d: d != email_hash(email)):
        found = suppressions.entry_by_hash(session, digest)
        if found is not None:
            return _entry(found)
    return None


def _entry(row: Suppression) -> Entry:
    return Entry(row.email, row.email_hash, row.reason, row.note, row.source, row.created_at)

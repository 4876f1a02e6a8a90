"""May this person be emailed? Consent, lawful basis, suppression and pauses.

One place for the rule, because three places ask it: the executor (an
enrollment whose contact may not be emailed exits), the delivery check just
before a claimed email leaves (whatever the transport), and `explain`.

- **Suppressed** (bounce, complaint, soft bounces, manual, erased): never.
- **Consent withdrawn** (an unsubscribe, an opt-out): never, until the
  contact itself gives consent again (a form with ``consent: granted``).
- **Basis.** ``granted`` (consent) and ``legitimate_interest`` are explicit
  lawful bases. ``unknown`` is treated as B2B legitimate interest (allowed
  in France and most of the EU for professional addresses, with an immediate
  opt-out in every email) unless `sending.require_consent` is true, in which
  case it is not emailed. A contact with status ``unknown`` and an explicit
  `consent_basis` of ``legitimate_interest`` has an explicit basis too.
- **Paused** (the unsubscribe page's "pause instead"): not a block but a
  deferral: sends wait until `paused_until`, then go out.

Also here: what a ``form.submitted`` event says about consent, and the proof
kept with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from nurture.definitions import model as m
from nurture.store.models import Contact

#: Keys of a form event's properties kept as proof of consent.
PROOF_KEYS = ("form_id", "ip", "url", "user_agent", "consent_text")

#: What `properties.consent` of a form may say.
FORM_CONSENT = {"granted": "granted", "withdrawn": "withdrawn"}

#: The subject of the List-Unsubscribe mailto: this prefix, then the signed token.
MAILTO_SUBJECT_PREFIX = "unsubscribe-"

#: Pauses the unsubscribe page offers, in days.
PAUSE_CHOICES = (30, 90)
MAX_PAUSE_DAYS = 366


def consent_block(status: str | None, basis: str | None, *, require_consent: bool) -> str | None:
    """Why consent forbids marketing email, or None."""
    if status == "withdrawn":
        return "unsubscribed"
    if status in ("granted", "legitimate_interest"):
        return None
    if require_consent and basis != "legitimate_interest":
        return "no-consent"
    return None


def contact_block(contact: Contact, sending: m.Sending | None = None) -> str | None:
    """Why this contact must get no email at all, or None (a pause is not a block)."""
    if contact.suppressed_at is not None:
        return f"suppressed:{contact.suppression_reason or 'manual'}"
    require = sending.require_consent if sending is not None else False
    return consent_block(contact.consent_status, contact.consent_basis, require_consent=require)


def paused_until(contact: Contact, now: datetime) -> datetime | None:
    """The end of the contact's pause, if it is paused at `now`."""
    until = contact.paused_until
    return until if until is not None and until > now else None


def form_consent(
    properties: Mapping[str, Any], event_id: str, at: datetime
) -> dict[str, Any] | None:
    """The contact columns a ``form.submitted`` event sets, or None if it says nothing
    about consent. Validated beforehand by `check_form_consent`."""
    wanted = properties.get("consent")
    if wanted is None:
        return None
    status = FORM_CONSENT[str(wanted).strip().lower()]
    form_id = properties.get("form_id")
    proof: dict[str, Any] = {"source": f"event:{event_id}", "at": at.isoformat()}
    proof |= {key: properties[key] for key in PROOF_KEYS if properties.get(key) is not None}
    return {
        "consent_status": status,
        "consent_basis": "consent" if status == "granted" else None,
        "consent_at": at,
        "consent_source": f"form:{form_id}" if form_id else "form",
        "consent_proof": proof,
    }


def check_form_consent(properties: Mapping[str, Any]) -> str | None:
    """Why a form event's consent properties are unusable, or None."""
    wanted = properties.get("consent")
    if wanted is None:
        return None
    if not isinstance(wanted, str) or wanted.strip().lower() not in FORM_CONSENT:
        return "form.submitted: properties.consent must be 'granted' or 'withdrawn'"
    return None


def check_pause(properties: Mapping[str, Any]) -> str | None:
    """Why an ``email.paused`` event's properties are unusable, or None."""
    days = properties.get("days")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_PAUSE_DAYS:
        return f"email.paused needs properties.days: a whole number from 1 to {MAX_PAUSE_DAYS}"
    return None


def mailto_token(subject: str) -> str | None:
    """The unsubscribe token in the subject of a mail sent to the List-Unsubscribe
    mailto, or None: what an inbound handler POSTs to ``/u/<token>``.

    Mail clients may prefix the subject (``Re:``, ``TR:``) or wrap it: the token
    is the first word starting with the prefix.
    """
    for word in subject.split():
        if word.lower().startswith(MAILTO_SUBJECT_PREFIX):
            token = word[len(MAILTO_SUBJECT_PREFIX) :]
            return token or None
    return None

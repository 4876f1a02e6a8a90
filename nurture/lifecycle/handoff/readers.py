"""Whose clock a salesperson reads: the one place that says it.

Every time shown to sales (the inbox pages, the handoff, reminder, escalation
and digest emails, the digest's CSV) is in the reader's timezone, asked here.
That is the reader's account's `timezone` (`nurture users add --timezone`),
and for an address that is no account the project's `sending.default_timezone`.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from nurture.addresses import canonical_email
from nurture.definitions import model as m
from nurture.store.accounts import account_by_email

#: The sales inbox's language (its pages are written in French).
INBOX_LANGUAGE = "fr"


def timezone_for(session: Session | None, config: m.ProjectConfig, email: str | None) -> str:
    """The IANA timezone `email` (a salesperson, a lead, a digest's owner) reads times in.

    `session` is where the account is looked up; None (no database at hand)
    and an address that is no account fall back to `sending.default_timezone`.
    """
    if session is not None and email:
        address = canonical_email(email)
        account = account_by_email(session, address) if address else None
        if account is not None:
            return account.timezone
    return config.sending.default_timezone

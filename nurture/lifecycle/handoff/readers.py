"""Whose clock a salesperson reads: the one place that says it.

Every time shown to sales (the inbox pages, the handoff, reminder, escalation
and digest emails, the digest's CSV) is in the reader's timezone, asked here.
Today that is the project's `sending.default_timezone` for everyone; when
sales accounts carry their own `timezone`, this function looks the account up
by `email` in `session` and nothing else changes.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from nurture.definitions import model as m

#: The sales inbox's language (its pages are written in French).
INBOX_LANGUAGE = "fr"


def timezone_for(session: Session | None, config: m.ProjectConfig, email: str | None) -> str:
    """The IANA timezone `email` (a salesperson, a lead, a digest's owner) reads times in.

    `session` is where accounts will be looked up; None (no database at hand)
    and an address that is no account fall back to `sending.default_timezone`.
    """
    del session, email  # no accounts yet: every reader gets the project's timezone
    return config.sending.default_timezone

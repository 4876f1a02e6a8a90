"""The filters templates use to show figures and times to people (`nurture.readable`).

``{{ contact.score | score }}`` prints ``25``, rounded as everywhere else in
nurture. ``{{ handoff.sla_due_at | local_time("fr") }}`` prints ``15 déc.
13:00`` in the reader's timezone: the render context's ``timezone`` (an email
to sales carries its recipient's), else the contact's, else UTC.
``{{ handoff.sla_due_at | from_now("fr") }}`` prints ``dans 2 jours``, from
the context's ``now``. The language is the template's own (default English):
the one it is written in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context

import nurture.readable as readable


def _timezone(context: Context) -> Any:
    zone = context.get("timezone")
    if zone:
        return zone
    contact = context.get("contact")
    return getattr(contact, "get", lambda _name: None)("timezone")


def _now(context: Context) -> datetime | None:
    now = context.get("now")
    return now if isinstance(now, datetime) else None


def score(value: Any) -> str:
    """A score as people read it: a whole number, halves away from zero."""
    if value is None or value == "":
        return readable.NO_VALUE
    return readable.score(float(value))


@pass_context
def local_time(context: Context, value: Any, language: str = "en") -> str:
    return readable.local_time(value, _timezone(context), language, _now(context))


@pass_context
def from_now(context: Context, value: Any, language: str = "en") -> str:
    now = _now(context) or datetime.now(UTC)
    return readable.relative(value, now, language)


FILTERS = {"score": score, "local_time": local_time, "from_now": from_now}

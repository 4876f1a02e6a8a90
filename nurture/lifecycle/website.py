"""The company's website as a source of signals: pages viewed, forms sent.

The pages the articles score most (pricing, return visits, downloads) are on
the company's site, so `nurture.js` (served by `nurture serve`) reports each
page view of a browser, known by the random id of a first-party cookie. A
browser becomes a contact's in two ways: it arrives through a tracked link of
one of our emails (the redirect carries an opaque link reference, `link_for`),
or it sends a form with an email field. Until then it is an anonymous visitor:
its pages wait in `site_visits` for `tracking.visitor_window` and are recorded
for the contact, at their own times, when the browser becomes known; older
ones are deleted.

Every page view of a known browser is a `page.visited` event through the one
ingest, so it scores, wakes `wait_for` steps and moves stages like any event.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from nurture.definitions.model import Tracking
from nurture.events import EventType
from nurture.lifecycle.incoming import IncomingEvent
from nurture.lifecycle.ingest import Ingestor, Outcome
from nurture.store import visitors
from nurture.store.sends import load_sends

SOURCE = "website"
#: How often a process deletes anonymous pages older than the window (on a page view).
PURGE_EVERY = timedelta(hours=1)


class Website:
    """Records what `nurture.js` reports (see the module docstring)."""

    def __init__(
        self, sessions: sessionmaker[Session], ingestor: Ingestor, settings: Tracking
    ) -> None:
        self.sessions = sessions
        self.ingestor = ingestor
        self.settings = settings
        self._purged: datetime | None = None

    def link_for(self, send_id: int, now: datetime) -> str | None:
        """A fresh reference to the send's contact for a tracked click's redirect, or
        None (no such send). Random: it says nothing about who it names."""
        link_id = secrets.token_urlsafe(18)
        with self.sessions.begin() as session:
            found = load_sends(session, [send_id])
            if not found:
                return None
            visitors.add_link(session, link_id, found[0].contact_id, now)
        return link_id

    def page_view(
        self,
        browser: str,
        page: Mapping[str, Any],
        at: datetime,
        link: str | None = None,
    ) -> str:
        """One page view: "recorded" for a known browser, "anonymous" (kept for later).

        `link` is the reference a tracked click brought (the browser becomes that
        contact's, and its anonymous pages of the window are recorded now).
        """
        status = "anonymous"

        def events(session: Session) -> list[IncomingEvent]:
            nonlocal status
            contact_id, became_known = self._identify(session, browser, link, at)
            if contact_id is None:
                status = "anonymous"
                visitors.add_visit(session, browser, at, page)
                return []
            status = "recorded"
            past = self._past_visits(session, browser, contact_id, at) if became_known else []
            return [*past, _visit(f"website:{browser}:{uuid.uuid4()}", contact_id, at, page)]

        self.ingestor.ingest(self.sessions, events, SOURCE)
        if status == "anonymous" and (self._purged is None or at - self._purged > PURGE_EVERY):
            self._purged = at
            self.forget_old(at)
        return status

    def form(
        self, browser: str, email: str, properties: Mapping[str, Any], at: datetime
    ) -> Outcome:
        """A form with an email field: `form.submitted` for that address (a new contact
        if need be, its consent as the form says), and the browser is now theirs."""
        event = IncomingEvent(
            id=f"form:{browser}:{uuid.uuid4()}",
            type=EventType.FORM_SUBMITTED,
            at=at,
            email=email,
            properties=dict(properties),
        )
        [outcome] = self.ingestor.ingest(self.sessions, [event], SOURCE)
        if outcome.contact_id is None:
            return outcome
        contact_id = outcome.contact_id

        def past(session: Session) -> list[IncomingEvent]:
            row = visitors.seen(session, browser, at)
            if row.contact_id == contact_id:
                return []
            row.contact_id = contact_id
            return self._past_visits(session, browser, contact_id, at)

        self.ingestor.ingest(self.sessions, past, SOURCE)
        return outcome

    def forget_old(self, now: datetime) -> int:
        """Anonymous pages and unused link references older than the window: deleted."""
        with self.sessions.begin() as session:
            return visitors.forget_before(session, now - self.settings.visitor_window)

    def _identify(
        self, session: Session, browser: str, link: str | None, at: datetime
    ) -> tuple[int | None, bool]:
        """The browser's contact, and whether it became known just now."""
        row = visitors.seen(session, browser, at)
        if row.kind != "browser":
            return None, False  # a link reference posing as a browser id
        named = visitors.visitor(session, link) if link else None
        if (
            named is not None
            and named.kind == "link"
            and named.contact_id is not None
            and row.contact_id != named.contact_id
        ):
            row.contact_id = named.contact_id
            return row.contact_id, True
        return row.contact_id, False

    def _past_visits(
        self, session: Session, browser: str, contact_id: int, at: datetime
    ) -> list[IncomingEvent]:
        since = at - self.settings.visitor_window
        return [
            _visit(f"website:{browser}:{visit.id}", contact_id, visit.at, visit.properties)
            for visit in visitors.take_visits(session, browser, since)
        ]


def _visit(event_id: str, contact_id: int, at: datetime, page: Mapping[str, Any]) -> IncomingEvent:
    return IncomingEvent(
        id=event_id,
        type=EventType.PAGE_VISITED,
        at=at,
        contact_id=contact_id,
        properties=dict(page),
    )

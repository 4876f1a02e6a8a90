"""What flow 2 tells the rest of nurture, through listeners handed in at construction.

The lifecycle (events, scores, stages, handoffs) never imports the engine that
runs workflows. When something happens that workflows may care about, it calls
every listener it was given, inside the caller's transaction, the way
dramatiq calls its middleware: a listener overrides the hooks it needs and
inherits no-ops for the rest. The engine's enrollment listener is one (a
stage entered enrolls the contact in that stage's workflows); tests and tools
can add their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from nurture.events import EventView
from nurture.lifecycle.facts import StageMove
from nurture.store.models import Contact


class Listener:
    """Hooks called by the lifecycle in the transaction that changed the contacts."""

    def after_stage_moves(
        self,
        session: Session,
        contacts: Mapping[int, Contact],
        moves: Sequence[StageMove],
        now: datetime,
    ) -> None:
        """Contacts entered new stages (history written, prospects' nurture ended)."""

    def after_events(
        self,
        session: Session,
        contacts: Mapping[int, Contact],
        events: Mapping[int, Sequence[EventView]],
        now: datetime,
    ) -> None:
        """Events were recorded for these contacts (scored already); by contact id."""

    def after_change(self, session: Session, contacts: Sequence[Contact], now: datetime) -> None:
        """The contacts' data or score changed (an import, the API, a `set` step, points)."""

    def after_recycle(
        self, session: Session, contact: Contact, workflow: str, now: datetime
    ) -> None:
        """Sales sent the contact back to nurturing into `workflow` (`on_reject.workflow`)."""


class Listeners(Listener):
    """Several listeners as one, called in the order given."""

    def __init__(self, listeners: Sequence[Listener] = ()) -> None:
        self._listeners = tuple(listeners)

    def prepend(self, listener: Listener) -> None:
        """`listener` hears everything first (the lifecycle's own, built after the parts
        it needs: segment upkeep judges before workflows hear of the change)."""
        self._listeners = (listener, *self._listeners)

    def after_stage_moves(
        self,
        session: Session,
        contacts: Mapping[int, Contact],
        moves: Sequence[StageMove],
        now: datetime,
    ) -> None:
        for listener in self._listeners:
            listener.after_stage_moves(session, contacts, moves, now)

    def after_events(
        self,
        session: Session,
        contacts: Mapping[int, Contact],
        events: Mapping[int, Sequence[EventView]],
        now: datetime,
    ) -> None:
        for listener in self._listeners:
            listener.after_events(session, contacts, events, now)

    def after_change(self, session: Session, contacts: Sequence[Contact], now: datetime) -> None:
        for listener in self._listeners:
            listener.after_change(session, contacts, now)

    def after_recycle(
        self, session: Session, contact: Contact, workflow: str, now: datetime
    ) -> None:
        for listener in self._listeners:
            listener.after_recycle(session, contact, workflow, now)

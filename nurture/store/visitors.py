"""The website script's browsers and the pages anonymous ones viewed."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from nurture.store.models import SiteVisit, SiteVisitor


def visitor(session: Session, visitor_id: str) -> SiteVisitor | None:
    return session.get(SiteVisitor, visitor_id)


def seen(session: Session, visitor_id: str, now: datetime) -> SiteVisitor:
    """The browser's row, created on its first visit, with `seen_at` moved to now."""
    found = session.get(SiteVisitor, visitor_id)
    if found is None:
        found = SiteVisitor(
            id=visitor_id, kind="browser", contact_id=None, created_at=now, seen_at=now
        )
        session.add(found)
        session.flush()
    else:
        found.seen_at = now
    return found


def add_link(session: Session, link_id: str, contact_id: int, now: datetime) -> None:
    """A reference a tracked click hands the script: it names the contact, nothing else."""
    session.add(
        SiteVisitor(id=link_id, kind="link", contact_id=contact_id, created_at=now, seen_at=now)
    )


def add_visit(
    session: Session, visitor_id: str, at: datetime, properties: Mapping[str, Any]
) -> None:
    session.add(SiteVisit(visitor_id=visitor_id, at=at, properties=dict(properties)))


def take_visits(session: Session, visitor_id: str, since: datetime) -> list[SiteVisit]:
    """An anonymous browser's visits from `since` on, removed from the waiting list
    (the caller records them for the contact in the same transaction)."""
    visits = list(
        session.scalars(
            select(SiteVisit)
            .where(SiteVisit.visitor_id == visitor_id, SiteVisit.at >= since)
            .order_by(SiteVisit.at, SiteVisit.id)
        )
    )
    session.execute(delete(SiteVisit).where(SiteVisit.visitor_id == visitor_id))
    return visits


def forget_before(session: Session, before: datetime) -> int:
    """Anonymous visits older than the window and unused link references: deleted."""
    result = session.execute(delete(SiteVisit).where(SiteVisit.at < before))
    gone = getattr(result, "rowcount", 0) or 0
    session.execute(
        delete(SiteVisitor).where(SiteVisitor.kind == "link", SiteVisitor.created_at < before)
    )
    return int(gone)


def forget_contact(session: Session, contact_id: int) -> None:
    """An erased person's browsers and link references: gone (a later visit of that
    browser starts over as an anonymous one)."""
    session.execute(delete(SiteVisitor).where(SiteVisitor.contact_id == contact_id))

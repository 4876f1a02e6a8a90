"""`nurture segments` and the segment part of `explain`: who is in, and why.

Sizes are read from the standings the upkeep keeps (`segment_members`), never
recomputed. `explain` judges the contact afresh with the same pure function
the upkeep uses (`segment_rules.judge`), so the reason it gives (the events
counted, whether `when` holds) is the one that decided. `refresh` is the one
full pass, for the operator to run after adding or changing a segment: the
upkeep only judges contacts something happens to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from nurture.contacts.standing import view_of
from nurture.definitions import model as m
from nurture.lifecycle.segment_rules import judge
from nurture.lifecycle.segments import Segments
from nurture.store import segments as store
from nurture.store.contacts import contacts_by_id
from nurture.store.models import Contact
from nurture.tools.graph import duration

#: Contacts judged per transaction by `refresh`.
REFRESH_BATCH = 500

#: The counted events `explain` lists per segment, the latest kept.
EVENTS_SHOWN = 20


def segment_sizes(session: Session, config: m.ProjectConfig) -> list[dict[str, Any]]:
    """Each segment of nurture.yaml, in file order, with its size and definition in words."""
    sizes = store.sizes(session)
    return [
        {"segment": name, "size": sizes.get(name, 0), "definition": definition(segment)}
        for name, segment in config.segments.items()
    ]


def definition(segment: m.Segment) -> str:
    """``contact.stage == 'lead'; page.visited matching '/pricing' in event.url >= 3 in 7d``."""
    parts = []
    if segment.when is not None:
        parts.append(segment.when.source)
    spec = segment.events
    if spec is not None:
        text = spec.type
        if spec.match is not None:
            text += f" matching {spec.match.source}"
        text += f" {spec.count_text}"
        if spec.within is not None:
            text += f" in {duration(spec.within)}"
        if spec.traffic == "all":
            text += " (machines' too)"
        parts.append(text)
    return "; ".join(parts)


def refresh(sessions: sessionmaker[Session], upkeep: Segments, now: datetime) -> tuple[int, int]:
    """Judge every contact against every segment, a batch per transaction; (contacts
    judged, entries and exits). Entries start the workflows that enroll on them."""
    after, judged, changed = 0, 0, 0
    while True:
        with sessions.begin() as session:
            ids = store.contact_ids_after(session, after, REFRESH_BATCH)
            if not ids:
                return judged, changed
            contacts = contacts_by_id(session, ids)
            changed += upkeep.update(session, [contacts[i] for i in ids if i in contacts], now)
        judged += len(ids)
        after = ids[-1]


def segments_of_contact(
    session: Session, config: m.ProjectConfig, contact: Contact, now: datetime
) -> list[dict[str, Any]]:
    """`explain`'s segments: for each one, in or not, since when, and why (the events)."""
    if not config.segments:
        return []
    rows = {s.segment: s for s in store.standings_of(session, contact.id)}
    types = {s.events.type for s in config.segments.values() if s.events is not None}
    events = store.counted_events(session, [contact.id], types, None).get(contact.id, [])
    context = {
        "contact": view_of(contact, config, now),
        "now": now,
        "stage_index": config.stage_index,
    }
    found = []
    for name, segment in config.segments.items():
        verdict = judge(segment, context, events, now)
        row = rows.get(name)
        found.append(
            {
                "segment": name,
                "member": bool(row and row.member),
                "entered_at": _iso(row.entered_at if row else None),
                "left_at": _iso(row.left_at if row else None),
                "why": verdict.reason(segment),
                "events": [
                    {"at": _iso(e.at), "type": e.type, "url": e.properties.get("url")}
                    for e in verdict.counted[-EVENTS_SHOWN:]
                ],
            }
        )
    return found


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None

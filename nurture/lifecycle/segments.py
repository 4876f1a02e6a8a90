"""Segment upkeep: membership kept current as events arrive, contacts change and time passes.

The upkeep is a lifecycle listener, so it hears what the rest of nurture
already announces, in the transaction that caused it:

- events recorded (`after_events`): the contacts whose new events are of a
  type some segment counts (or, when a segment has a `when`, any signal from
  outside: it may have changed the score) are judged again;
- contacts changed (`after_change`: an import, the API, a `set` step) and
  stages moved (`after_stage_moves`): judged again when a segment has a `when`;
- time: a counted event leaving a `within` window can change the answer with
  nothing else happening. Each judgement stores the moment that happens next
  (`recheck_at`, `segment_rules.judge`); the scheduler's tick re-judges only
  the rows due (`recheck`), never every contact.

A batch costs two reads (the contacts' standings, their counted events) and
writes only what changed. An entry or exit is recorded as a `segment.entered`
/ `segment.exited` event (workflows that `enroll: {segment: …}` start on it),
wakes the contact's waiting enrollments (a `wait_for: {segment: …}`, an
`in_segment` exit condition look again at once), and is a `segment` record in
`simulate`'s timeline. A project without segments has no upkeep at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from nurture.contacts.standing import view_of
from nurture.definitions import model as m
from nurture.events import SYSTEM_EVENT_TYPES, EventType, EventView
from nurture.lifecycle.facts import StageMove, SystemEvent
from nurture.lifecycle.listeners import Listener
from nurture.lifecycle.segment_rules import Verdict, judge
from nurture.lifecycle.stages import Stages
from nurture.records import Record, Recorder
from nurture.store import segments as store
from nurture.store.contacts import contacts_by_id
from nurture.store.enrollments import wake_contacts
from nurture.store.models import Contact

#: Re-checks one scheduler tick takes at most (it goes on at the next tick).
RECHECK_BATCH = 500


class Segments(Listener):
    """Keeps `segment_members` current for the project's segments (see the module docstring)."""

    def __init__(self, config: m.ProjectConfig, stages: Stages, record: Recorder) -> None:
        self.config = config
        self.stages = stages
        self.record = record
        self.segments = tuple(config.segments.values())
        specs = [s.events for s in self.segments if s.events is not None]
        #: The event types some segment counts: other events cost nothing.
        self.types = frozenset(spec.type for spec in specs)
        #: Some segment reads the contact (`when`): changes and stage moves matter.
        self.profile = any(s.when is not None for s in self.segments)
        windows = [spec.within for spec in specs]
        #: How far back the counted events go (None: forever, a segment has no `within`).
        self.horizon: timedelta | None = None
        if windows and all(w is not None for w in windows):
            self.horizon = max(w for w in windows if w is not None)

    # -- what the lifecycle announces ---------------------------------------------------

    def after_events(
        self,
        session: Session,
        contacts: Mapping[int, Contact],
        events: Mapping[int, Sequence[EventView]],
        now: datetime,
    ) -> None:
        wanted = [
            contacts[contact_id]
            for contact_id, views in events.items()
            if any(self._concerns(view) for view in views)
        ]
        self.update(session, wanted, now)

    def after_change(self, session: Session, contacts: Sequence[Contact], now: datetime) -> None:
        if self.profile:
            self.update(session, contacts, now)

    def after_stage_moves(
        self,
        session: Session,
        contacts: Mapping[int, Contact],
        moves: Sequence[StageMove],
        now: datetime,
    ) -> None:
        if self.profile:
            # A contact an event just created is judged with its events, right after.
            moved = dict.fromkeys(
                mv.contact_id for mv in moves if not (mv.from_stage is None and mv.cause == "event")
            )
            self.update(session, [contacts[contact_id] for contact_id in moved], now)

    def _concerns(self, event: EventView) -> bool:
        if event.type in self.types:
            return True
        # Nurture's own events follow a change already judged (a stage move, a segment).
        return self.profile and event.type not in SYSTEM_EVENT_TYPES

    # -- time ------------------------------------------------------------------------------

    def recheck(self, session: Session, now: datetime, limit: int = RECHECK_BATCH) -> int:
        """Re-judge the contacts whose `recheck_at` is due; how many."""
        ids = store.claim_rechecks(session, now, limit)
        if ids:
            self.update(session, list(contacts_by_id(session, ids).values()), now)
        return len(ids)

    # -- judging ---------------------------------------------------------------------------

    def update(self, session: Session, contacts: Sequence[Contact], now: datetime) -> int:
        """Judge these contacts against every segment and store what changed; the number
        of entries and exits."""
        contacts = [c for c in contacts if c.erased_at is None]
        if not contacts or not self.segments:
            return 0
        ids = [c.id for c in contacts]
        rows = store.standings(session, ids)
        since = now - self.horizon if self.horizon is not None else None
        events = store.counted_events(session, ids, self.types, since)
        inserts: list[dict[str, Any]] = []
        rechecks: dict[int, datetime | None] = {}
        changes: list[tuple[Contact, m.Segment, Verdict]] = []
        new_members: list[tuple[Contact, m.Segment, Verdict]] = []
        for contact in contacts:
            context = {
                "contact": view_of(contact, self.config, now),
                "now": now,
                "stage_index": self.config.stage_index,
            }
            for segment in self.segments:
                verdict = judge(segment, context, events.get(contact.id, ()), now)
                row = rows.get((contact.id, segment.name))
                if row is None:
                    if verdict.member or verdict.recheck_at is not None:
                        inserts.append(_new_row(contact.id, segment.name, verdict, now))
                        if verdict.member:
                            new_members.append((contact, segment, verdict))
                elif row.member != verdict.member:
                    if store.change_membership(
                        session, row, verdict.member, now, verdict.recheck_at
                    ):
                        changes.append((contact, segment, verdict))
                elif row.recheck_at != verdict.recheck_at:
                    rechecks[row.id] = verdict.recheck_at
        inserted = store.insert_standings(session, inserts)
        store.set_rechecks(session, rechecks)
        # A row another writer stored first: that writer announced the entry.
        changes += [c for c in new_members if (c[0].id, c[1].name) in inserted]
        self._announce(session, changes, now)
        return len(changes)

    def _announce(
        self,
        session: Session,
        changes: Sequence[tuple[Contact, m.Segment, Verdict]],
        now: datetime,
    ) -> None:
        if not changes:
            return
        emitted = []
        for contact, segment, verdict in changes:
            kind = EventType.SEGMENT_ENTERED if verdict.member else EventType.SEGMENT_EXITED
            change = "entered" if verdict.member else "left"
            properties: dict[str, Any] = {"segment": segment.name}
            if segment.events is not None:
                properties["count"] = len(verdict.counted)
            emitted.append(
                SystemEvent(
                    contact,
                    f"segment:{contact.id}:{segment.name}:{change}:{now.isoformat()}",
                    kind,
                    properties,
                )
            )
            self.record(
                Record(
                    now,
                    "segment",
                    contact.id,
                    contact.email,
                    details={change: segment.name, "why": verdict.reason(segment)},
                )
            )
        wake_contacts(session, {contact.id for contact, _, _ in changes}, now)
        self.stages.emit(session, emitted, now)


def _new_row(contact_id: int, segment: str, verdict: Verdict, now: datetime) -> dict[str, Any]:
    return {
        "contact_id": contact_id,
        "segment": segment,
        "member": verdict.member,
        "entered_at": now if verdict.member else None,
        "left_at": None,
        "recheck_at": verdict.recheck_at,
    }

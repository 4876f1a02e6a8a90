"""The feedback loop: recorded events → score → stage → enrollments and exits.

`Scoring.apply` runs inside the transaction that recorded the events, so a
contact's score, its ledger, its stage and the workflows it enters or leaves
change together or not at all. The moment a contact reaches the prospect
stage, every nurture enrollment it has ends in that same transaction, and
delivery re-checks before sending, so not even an email already claimed
leaves after that moment.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from nurture.contacts.standing import ScoreState, decay_factor, view_of
from nurture.definitions import model as m
from nurture.definitions.ladder import stage_for_score
from nurture.events import EventView, Traffic, is_engagement
from nurture.lifecycle.facts import StageMove
from nurture.lifecycle.score_rules import fit_points, matching_rules, within_caps
from nurture.lifecycle.stages import Stages
from nurture.records import Record, Recorder, discard
from nurture.store.models import Contact
from nurture.store.scores import insert_ledger, points_to_revoke, rule_uses


@dataclass(slots=True)
class _Parts:
    """A contact's score parts as plain attributes while a batch scores its events:
    the contact's own (instrumented) attributes are read once and written back once."""

    contact_id: int
    fit: float
    engagement: float
    updated: datetime | None
    score: float

    @classmethod
    def of(cls, contact: Contact) -> _Parts:
        return cls(
            contact.id,
            contact.fit_score,
            contact.engagement_score,
            contact.score_updated_at,
            contact.score,
        )

    def store(self, contact: Contact) -> None:
        if contact.fit_score != self.fit:
            contact.fit_score = self.fit
        if contact.engagement_score != self.engagement:
            contact.engagement_score = self.engagement
        if contact.score_updated_at != self.updated:
            contact.score_updated_at = self.updated
        if contact.score != self.score:
            contact.score = self.score


def _row(
    contact_id: int,
    key: str,
    rule: str,
    kind: str,
    points: float,
    after: float,
    at: datetime,
    event_id: str | None,
) -> dict[str, Any]:
    return {
        "contact_id": contact_id,
        "ledger_key": key,
        "rule": rule,
        "kind": kind,
        "points": round(points, 4),
        "score_after": round(after, 4),
        "at": at,
        "event_id": event_id,
    }


class Scoring:
    """Scores events, profiles and `score` steps into the ledger, and climbs the ladder.

    Every change of a contact's score is a ledger row; a score that crosses a
    threshold moves the contact up through `Stages.apply`, in the same
    transaction. Each row is also a `score` record for `record` (simulate's
    timeline), so a marketer sees why a contact moved.
    """

    def __init__(self, config: m.ProjectConfig, stages: Stages, record: Recorder = discard) -> None:
        self.config = config
        self.stages = stages
        self.record = record
        self._rule_events = {rule.key: rule.event for rule in config.scoring.rules}
        # The rules each event type may earn, in file order: most events match none.
        self._rules: dict[str, list[m.ScoringRule]] = defaultdict(list)
        for rule in self.config.scoring.rules:
            self._rules[rule.event].append(rule)

    # -- events ----------------------------------------------------------------------

    def apply(
        self,
        session: Session,
        contacts: Mapping[int, Contact],
        events: Mapping[int, Sequence[EventView]],
        now: datetime,
    ) -> list[StageMove]:
        """Score each contact's new events (in time order) and move stages accordingly."""
        capped = [r for r in self.config.scoring.rules if r.max_per_day or r.max_total]
        usage = self._usage(session, events, capped) if capped else {}
        ledger: list[dict[str, Any]] = []
        moves: list[StageMove] = []
        for contact_id, contact_events in events.items():
            contact = contacts[contact_id]
            parts = _Parts.of(contact)
            last_engaged = contact.last_engaged_at
            for event in sorted(contact_events, key=lambda e: e.at):
                if event.type in self._rules:
                    ledger += self._score_event(contact, parts, event, usage)
                if (
                    is_engagement(event.type)
                    and event.traffic == Traffic.HUMAN
                    and (last_engaged is None or event.at > last_engaged)
                ):
                    last_engaged = event.at
            parts.store(contact)
            if last_engaged != contact.last_engaged_at:
                contact.last_engaged_at = last_engaged
            move = self._climb(contact, now, cause="score")
            if move:
                moves.append(move)
        self._write(session, ledger, contacts)
        self.stages.apply(session, contacts, moves, now)
        return moves

    def _score_event(
        self,
        contact: Contact,
        parts: _Parts,
        event: EventView,
        usage: dict[tuple[int, str], list[datetime]],
    ) -> list[dict[str, Any]]:
        rules = [rule for rule in self._rules[event.type] if event.counts(rule.count)]
        if any(rule.when is not None for rule in rules):
            parts.store(contact)  # `when` sees the score as of this event
            context = {
                "contact": view_of(contact, self.config, event.at),
                "event": event,
                "now": event.at,
                "stage_index": self.config.stage_index,
            }
            rules = matching_rules(rules, event.type, context)
        rows: list[dict[str, Any]] = []
        day = event.at.date()
        for rule in rules:
            if rule.max_per_day or rule.max_total:
                used = usage.setdefault((contact.id, rule.key), [])
                today = sum(1 for at in used if at.date() == day)
                if not within_caps(rule, today, len(used)):
                    continue
                used.append(event.at)
            rows += self._add_to(
                parts,
                rule.points,
                event.at,
                kind="engagement",
                key=f"event:{event.id}:{rule.key}",
                rule=rule.key,
                event_id=event.id,
            )
        return rows

    def _usage(
        self,
        session: Session,
        events: Mapping[int, Sequence[EventView]],
        rules: Sequence[m.ScoringRule],
    ) -> dict[tuple[int, str], list[datetime]]:
        """When each capped rule already scored for these contacts (for the caps).

        Only daily caps: the uses before the earliest day of these events cannot count.
        """
        found: dict[tuple[int, str], list[datetime]] = defaultdict(list)
        since = None
        if all(rule.max_total is None for rule in rules):
            first = min(e.at for views in events.values() for e in views)
            since = first.replace(hour=0, minute=0, second=0, microsecond=0)
        for contact_id, rule, at in rule_uses(session, events, [r.key for r in rules], since):
            found[(contact_id, rule)].append(at)
        return found

    def _add(
        self,
        contact: Contact,
        points: float,
        at: datetime,
        *,
        kind: str,
        key: str,
        rule: str,
        event_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Move the contact's score parts to `at`, add `points`; the ledger rows saying so."""
        parts = _Parts.of(contact)
        rows = self._add_to(parts, points, at, kind=kind, key=key, rule=rule, event_id=event_id)
        parts.store(contact)
        return rows

    def _add_to(
        self,
        parts: _Parts,
        points: float,
        at: datetime,
        *,
        kind: str,
        key: str,
        rule: str,
        event_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """`_add` on score parts held apart from the contact (a batch writes them back once)."""
        half_life = self.config.scoring.half_life
        rows = []
        updated = parts.updated
        engagement = parts.engagement
        if updated is not None and at > updated:
            decayed = engagement * decay_factor(at - updated, half_life)
            if abs(engagement - decayed) >= 0.005:
                total = parts.fit + decayed
                rows.append(
                    _row(
                        parts.contact_id,
                        f"decay:{key}",
                        "decay",
                        "decay",
                        decayed - engagement,
                        total,
                        at,
                        event_id,
                    )
                )
            engagement = decayed
        elif updated is not None and at < updated:
            points *= decay_factor(updated - at, half_life)  # a late event has faded already
            at = updated
        if kind == "fit":
            parts.fit += points
        else:
            engagement += points
        parts.engagement = engagement
        parts.updated = at if updated is None or at >= updated else updated
        parts.score = round(parts.fit + parts.engagement, 4)
        rows.append(_row(parts.contact_id, key, rule, kind, points, parts.score, at, event_id))
        return rows

    def revoke(
        self, session: Session, contacts: Mapping[int, Contact], event_ids: Sequence[str]
    ) -> None:
        """Take back the points these events earned from rules that count people only
        (a click later found to be a machine's), as ledger rows of kind "revoked" at the events' own time, so
        they fade as the points did. Stages reached are kept: the ladder only climbs."""
        rows: list[dict[str, Any]] = []
        machines_count = {r.key for r in self.config.scoring.rules if r.count == "all"}
        for entry in points_to_revoke(session, event_ids):
            contact = contacts.get(entry.contact_id)
            if contact is None or entry.rule in machines_count:
                continue
            rows += self._add(
                contact,
                -entry.points,
                entry.at,
                kind="revoked",
                key=f"revoke:{entry.ledger_key}",
                rule=entry.rule,
                event_id=entry.event_id,
            )
        self._write(session, rows, contacts)

    # -- profile (fit) and manual points -------------------------------------------------

    def refit(
        self, session: Session, contacts: Sequence[Contact], now: datetime
    ) -> list[StageMove]:
        """Re-evaluate fit rules after contact data changed; ledger the difference."""
        rows: list[dict[str, Any]] = []
        moves = []
        rules = self.config.scoring.fit
        for contact in contacts:
            if not rules and not contact.fit_score:
                continue  # no profile points to give or take back: no view to build
            context = {
                "contact": view_of(contact, self.config, now),
                "now": now,
                "stage_index": self.config.stage_index,
            }
            target = fit_points(rules, context)
            delta = round(target - contact.fit_score, 4)
            if delta:
                rows += self._add(
                    contact,
                    delta,
                    now,
                    kind="fit",
                    rule="fit",
                    key=f"fit:{contact.id}:{uuid.uuid4().hex}",
                )
                if move := self._climb(contact, now, cause="fit"):
                    moves.append(move)
        self._write(session, rows, {c.id: c for c in contacts})
        self.stages.apply(session, {c.id: c for c in contacts}, moves, now)
        return moves

    def add_points(
        self,
        session: Session,
        contact: Contact,
        points: float,
        key: str,
        step: tuple[str, str],
        now: datetime,
    ) -> list[StageMove]:
        """Points from a workflow's `score` step (kind "manual"), `step` as (workflow, step id)."""
        rule = "/".join(step)
        rows = self._add(contact, points, now, kind="manual", key=key, rule=rule)
        self._write(session, rows, {contact.id: contact}, step)
        moves = [move] if (move := self._climb(contact, now, cause="score")) else []
        self.stages.apply(session, {contact.id: contact}, moves, now)
        return moves

    # -- the ledger ------------------------------------------------------------------

    def _write(
        self,
        session: Session,
        rows: Sequence[dict[str, Any]],
        contacts: Mapping[int, Contact],
        step: tuple[str, str] | None = None,
    ) -> None:
        """Insert ledger rows; each is also a `score` record (nothing when nobody listens)."""
        if not rows:
            return
        insert_ledger(session, rows)
        if self.record is discard:
            return
        for row in rows:
            contact = contacts[row["contact_id"]]
            rule = row["rule"]
            details: dict[str, Any] = {
                "points": row["points"],
                "score": row["score_after"],
                "rule": rule,
                "cause": row["kind"],
            }
            event = self._rule_events.get(rule)
            if event is not None and row["kind"] in ("engagement", "revoked"):
                details["event"] = event
            if row["event_id"] is not None:
                details["event_id"] = row["event_id"]
            workflow, step_id = step or (None, None)
            self.record(
                Record(row["at"], "score", contact.id, contact.email, workflow, step_id, details)
            )

    # -- stages --------------------------------------------------------------------------

    def _climb(self, contact: Contact, now: datetime, cause: str) -> StageMove | None:
        config = self.config
        current = contact.stage or config.stages[0]
        target = stage_for_score(contact.score, current, config.scoring.thresholds, config.stages)
        if target is None:
            return None
        contact.stage = target
        return StageMove(contact.id, current, target, cause)

    def adjust_for_rejection(
        self, session: Session, contact: Contact, rule: str, handoff_id: int, now: datetime
    ) -> None:
        """`on_reject.score`: halve the score, or reset it to its fit part (a ledger row)."""
        half_life = self.config.scoring.half_life
        state = ScoreState(contact.fit_score, contact.engagement_score, contact.score_updated_at)
        total = state.total_at(now, half_life)
        target = total / 2 if rule == "halve" else contact.fit_score
        points = round(target - total, 4)
        if points:
            rows = self._add(
                contact,
                points,
                now,
                kind="manual",
                rule=f"handoff.rejected:{rule}",
                key=f"handoff:{handoff_id}:rejected:{rule}:{now.isoformat()}",
            )
            self._write(session, rows, {contact.id: contact})

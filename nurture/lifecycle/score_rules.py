"""Lead scoring's rules as pure functions: which rules an event earns, caps, fit, replay.

A score has two parts. *Engagement* points come from events and fade with the
configured half-life; *fit* points come from the profile (budget confirmed,
company size) and do not fade; they are re-evaluated whenever the contact's
data changes. How a stored score decays to "now" is `nurture.contacts.standing`.

Every change is a ledger row (see `nurture.lifecycle.scoring`): the points an event
earned per rule, the decay applied before them, a fit change. Replaying the
ledger (`replay`) gives back the stored score — the test that the incremental
path and the explanation agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from nurture.contacts.standing import ScoreState
from nurture.definitions import model as m
from nurture.expressions import ExpressionError


def matching_rules(
    rules: Sequence[m.ScoringRule], event_type: str, context: Mapping[str, Any]
) -> list[m.ScoringRule]:
    """Every rule for this event type whose `when` holds (a failing `when` does not)."""
    found = []
    for rule in rules:
        if rule.event != event_type:
            continue
        if rule.when is not None:
            try:
                if not rule.when.test(context):
                    continue
            except ExpressionError:
                continue
        found.append(rule)
    return found


def within_caps(rule: m.ScoringRule, used_today: int, used_total: int) -> bool:
    if rule.max_per_day is not None and used_today >= rule.max_per_day:
        return False
    return rule.max_total is None or used_total < rule.max_total


def fit_points(rules: Iterable[m.FitRule], context: Mapping[str, Any]) -> float:
    total = 0.0
    for rule in rules:
        try:
            if rule.when.test(context):
                total += rule.points
        except ExpressionError:
            continue
    return total


@dataclass(frozen=True)
class LedgerLine:
    """The part of a score-ledger row that `replay` needs: its kind, points and time."""

    kind: str  # engagement / fit / decay / manual / revoked
    points: float
    at: datetime


def replay(lines: Iterable[LedgerLine], half_life: timedelta | None) -> ScoreState:
    """Rebuild the score parts from ledger lines in order, ignoring recorded decay lines.

    Decay is recomputed from the times instead, so this checks the stored decay
    rows and score rather than trusting them.
    """
    state = ScoreState()
    for line in sorted(lines, key=lambda line: line.at):
        if line.kind == "decay":
            continue
        engagement = (
            state.engagement_at(line.at, half_life) if state.updated_at else state.engagement
        )
        if line.kind == "fit":
            state = ScoreState(state.fit + line.points, engagement, line.at)
        else:
            state = ScoreState(state.fit, engagement + line.points, line.at)
    return state

"""Lead scoring: which rules an event earns, caps, decay and fit — as pure functions.

A score has two parts. *Engagement* points come from events and fade with the
configured half-life, so a contact who clicked a lot last spring is not hot
today. *Fit* points come from the profile (budget confirmed, company size) and
do not fade; they are re-evaluated whenever the contact's data changes. The
stored score is `fit + engagement` as of `score_updated_at`; anything that
reads it later decays the engagement part to "now" (`current_score`).

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

from nurture.contacts.view import ContactView
from nurture.definitions import model as m
from nurture.definitions.ladder import temperature
from nurture.expressions import ExpressionError
from nurture.store.models import Contact

#: Signals of interest: they earn "last engaged" (temperature), unlike delivery
#: notices, bounces and complaints.
ENGAGEMENT_TYPES = frozenset(
    {
        "email.opened",
        "email.clicked",
        "page.visited",
        "form.submitted",
        "content.downloaded",
        "webinar.registered",
        "demo.requested",
        "meeting.booked",
    }
)


def is_engagement(event_type: str) -> bool:
    return event_type in ENGAGEMENT_TYPES or event_type.startswith("custom.")


def decay_factor(elapsed: timedelta, half_life: timedelta | None) -> float:
    if half_life is None or elapsed <= timedelta(0):
        return 1.0
    return float(0.5 ** (elapsed / half_life))


@dataclass(frozen=True)
class ScoreState:
    """A contact's score parts as of `updated_at` (None: never scored)."""

    fit: float = 0.0
    engagement: float = 0.0
    updated_at: datetime | None = None

    def engagement_at(self, moment: datetime, half_life: timedelta | None) -> float:
        if self.updated_at is None:
            return self.engagement
        return self.engagement * decay_factor(moment - self.updated_at, half_life)

    def total_at(self, moment: datetime, half_life: timedelta | None) -> float:
        return round(self.fit + self.engagement_at(moment, half_life), 4)


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
    kind: str  # engagement / fit / decay / manual
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


def view_of(contact: Contact, config: m.ProjectConfig, now: datetime) -> ContactView:
    """The contact as expressions and templates see it now: score decayed, temperature."""
    state = ScoreState(contact.fit_score, contact.engagement_score, contact.score_updated_at)
    score = state.total_at(now, config.scoring.half_life)
    warmth = temperature(
        score,
        contact.last_engaged_at,
        now,
        config.scoring.thresholds,
        config.stages,
        config.prospect_stage,
    )
    return contact.view(config.stages, config.properties, score=score, temperature=warmth)

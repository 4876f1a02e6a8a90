"""Where a contact stands now: its score decayed to this moment, its temperature, its view.

The stored score is ``fit + engagement`` as of `score_updated_at`. *Engagement*
points fade with the configured half-life, so a contact who clicked a lot last
spring is not hot today; *fit* points (the profile) do not. Anything that reads
a score later decays the engagement part to "now" first: the executor, the
templates, delivery, explain and the sales snapshot all ask `view_of`, so they
never disagree about a contact's score or temperature.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from nurture.contacts.view import ContactView
from nurture.definitions import model as m
from nurture.definitions.ladder import temperature


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


class StoredContact(Protocol):
    """What `view_of` reads of a stored contact (`nurture.store.models.Contact`)."""

    @property
    def fit_score(self) -> float: ...
    @property
    def engagement_score(self) -> float: ...
    @property
    def score_updated_at(self) -> datetime | None: ...
    @property
    def last_engaged_at(self) -> datetime | None: ...

    def view(
        self,
        stages: Sequence[str],
        declared: Iterable[str] = (),
        *,
        score: float | None = None,
        temperature: str | None = None,
    ) -> ContactView: ...


def state_of(contact: StoredContact) -> ScoreState:
    return ScoreState(contact.fit_score, contact.engagement_score, contact.score_updated_at)


def view_of(contact: StoredContact, config: m.ProjectConfig, now: datetime) -> ContactView:
    """The contact as expressions and templates see it now: score decayed, temperature."""
    score = state_of(contact).total_at(now, config.scoring.half_life)
    warmth = temperature(
        score,
        contact.last_engaged_at,
        now,
        config.scoring.thresholds,
        config.stages,
        config.prospect_stage,
    )
    return contact.view(config.stages, config.properties, score=score, temperature=warmth)

"""The lifecycle ladder: where a contact stands, where its score lifts it, how warm it is.

Pure rules only; `nurture.lifecycle.scoring` applies them to the database (stage
history, enrollments, exits).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta


def at_or_beyond(stage: str | None, target: str, stages: Sequence[str]) -> bool:
    """True when `stage` is `target` or later on the ladder (unknown stages are not)."""
    if stage is None or stage not in stages or target not in stages:
        return False
    return stages.index(stage) >= stages.index(target)


def stage_for_score(
    score: float,
    current: str,
    thresholds: Sequence[tuple[str, float]],
    stages: Sequence[str],
) -> str | None:
    """The stage a score lifts a contact to, or None: thresholds only ever move a contact up."""
    position = stages.index(current) if current in stages else 0
    target = None
    for stage, threshold in thresholds:  # in ladder order: the last one cleared is the highest
        if score >= threshold and stages.index(stage) > position:
            target = stage
    return target


def crosses(move_from: str | None, move_to: str, at: str, stages: Sequence[str]) -> bool:
    """True when a stage move reaches `at` from below (or from nowhere)."""
    before = move_from is not None and at_or_beyond(move_from, at, stages)
    return at_or_beyond(move_to, at, stages) and not before


#: How recent an engagement must be for a contact to be warm or hot.
HOT_WITHIN = timedelta(days=14)
WARM_WITHIN = timedelta(days=30)


def temperature(
    score: float,
    last_engaged_at: datetime | None,
    now: datetime,
    thresholds: Sequence[tuple[str, float]],
    stages: Sequence[str],
    prospect_stage: str,
) -> str:
    """cold / warm / hot, from the score and how recently the contact engaged.

    Hot: at or above the last threshold before the prospect stage (the MQL bar
    in the classic ladder) and engaged within 14 days. Warm: above half that bar
    and engaged within 30 days, or above the bar at all. Cold otherwise.
    """
    bar = _hot_bar(thresholds, stages, prospect_stage)
    recent = last_engaged_at is not None and now - last_engaged_at
    if bar is None:
        return "warm" if recent is not False and recent <= WARM_WITHIN else "cold"
    if score >= bar and recent is not False and recent <= HOT_WITHIN:
        return "hot"
    if score >= bar or (score >= bar / 2 and recent is not False and recent <= WARM_WITHIN):
        return "warm"
    return "cold"


def _hot_bar(
    thresholds: Sequence[tuple[str, float]], stages: Sequence[str], prospect_stage: str
) -> float | None:
    limit = stages.index(prospect_stage) if prospect_stage in stages else len(stages)
    below = [points for stage, points in thresholds if stages.index(stage) < limit]
    return max(below) if below else None

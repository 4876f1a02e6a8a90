"""The report's experiments: each variant test, split and holdout of the project's workflows.

- **variant tests** (`send: {variants: …}`): per variant, its emails sent in the
  period and, once per email, a person's opens and clicks and the unsubscribes
  (and contacts reaching the winner's stage within its window, when that is its
  metric), as counts and rates over sent; each variant's difference from the first
  on the test's metric (the winner's, else human clicks) with its 95 % interval
  and p-value; the winner once decided.
- **splits** and **holdouts**: per arm (or group: `treated`, `holdout`), the
  enrollments that drew it in the period and how many of their contacts then moved
  up the stage ladder (to any stage above the one they were in when drawn, up to
  now); each arm's difference from the first, and the workflow's **lift** (treated
  minus holdout) with its 95 % interval.

Intervals and p-values come from `nurture.engine.stats` (Wald interval; two-sided
two-proportion z-test).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from nurture.definitions import model as m
from nurture.definitions.loader import Project
from nurture.engine.assignment import HELD_OUT, HOLDOUT, TREATED, test_of
from nurture.engine.stats import compare
from nurture.engine.winners import METRIC_EVENTS, reached
from nurture.store import experiments as store

#: The metric a variant test without `winner:` is compared on.
DEFAULT_METRIC = "human_clicks"


def experiments_report(
    session: Session, project: Project, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """Every experiment of the project's workflows, JSON-ready, in file order."""
    config = project.config
    decided = store.winners(session)
    found: list[dict[str, Any]] = []
    for workflow in sorted(project.workflows.values(), key=lambda w: w.name):
        if workflow.holdout:
            found.append(_holdout(session, config, workflow, since, until))
        for step in workflow.steps:
            if isinstance(step, m.SendStep) and step.variants:
                winner = decided.get((workflow.name, step.id, test_of(step)))
                found.append(_variants(session, config, workflow.name, step, since, until, winner))
            elif isinstance(step, m.SplitStep):
                arms = [arm.goto for arm in step.arms]
                rows = store.drawn(session, workflow.name, step.id, since, until)
                found.append(
                    {
                        "kind": "split",
                        "workflow": workflow.name,
                        "step": step.id,
                        "arms": _groups(session, config, rows, arms),
                    }
                )
    return found


def _variants(
    session: Session,
    config: m.ProjectConfig,
    workflow: str,
    step: m.SendStep,
    since: datetime,
    until: datetime,
    winner: Any,
) -> dict[str, Any]:
    metric = step.winner.metric if step.winner else DEFAULT_METRIC
    sends = store.variant_sends(session, workflow, step.id, since, until)
    ids = {s.id for s in sends}
    reacted = store.sends_with(session, workflow, step.id, list(METRIC_EVENTS.values()))
    successes = {name: reacted[kind] & ids for name, kind in METRIC_EVENTS.items()}
    if step.winner and step.winner.metric == "reached_stage":
        assert step.winner.stage is not None and step.winner.within is not None
        successes["reached_stage"] = reached(
            session, config, sends, step.winner.stage, step.winner.within
        )
    rows = []
    for variant in step.variants:
        mine = {s.id for s in sends if s.variant == variant.name}
        counts = {name: len(mine & hits) for name, hits in successes.items()}
        rows.append(
            {
                "variant": variant.name,
                "template": variant.template,
                "weight": variant.weight,
                "sent": len(mine),
                **counts,
                "rates": {name: _rate(n, len(mine)) for name, n in counts.items()},
            }
        )
    _differences(rows, metric, "sent")
    return {
        "kind": "variants",
        "workflow": workflow,
        "step": step.id,
        "metric": metric,
        "lower_is_better": m.WINNER_METRICS[metric],
        "winner_rule": _rule(step.winner),
        "winner": None
        if winner is None
        else {
            "variant": winner.variant,
            "metric": winner.metric,
            "decided_at": winner.decided_at.isoformat(),
        },
        "variants": rows,
    }


def _rule(winner: m.Winner | None) -> dict[str, Any] | None:
    if winner is None:
        return None
    rule: dict[str, Any] = {
        "metric": winner.metric,
        "after_seconds": winner.after.total_seconds(),
        "min_sample": winner.min_sample,
    }
    if winner.stage is not None and winner.within is not None:
        rule |= {"stage": winner.stage, "within_seconds": winner.within.total_seconds()}
    return rule


def _holdout(
    session: Session,
    config: m.ProjectConfig,
    workflow: m.Workflow,
    since: datetime,
    until: datetime,
) -> dict[str, Any]:
    rows = store.drawn(session, workflow.name, HOLDOUT, since, until)
    groups = _groups(session, config, rows, [HELD_OUT, TREATED])
    held, treated = groups
    lift = compare(treated["converted"], treated["contacts"], held["converted"], held["contacts"])
    return {
        "kind": "holdout",
        "workflow": workflow.name,
        "share": workflow.holdout,
        "groups": [treated, held],
        "lift": lift.as_json() if lift else None,
    }


def _groups(
    session: Session, config: m.ProjectConfig, rows: Sequence[store.Drawn], arms: Sequence[str]
) -> list[dict[str, Any]]:
    """Per arm: contacts drawn, how many moved up the ladder after; differences from the first."""
    stages = config.stages
    entries = (
        store.stage_entries(
            session, {r.contact_id for r in rows}, stages[1:], min(r.at for r in rows)
        )
        if rows
        else {}
    )

    def moved_up(row: store.Drawn) -> bool:
        start = stages.index(row.stage) if row.stage in stages else 0
        return any(
            at >= row.at and stage in stages and stages.index(stage) > start
            for at, stage in entries.get(row.contact_id, ())
        )

    groups = []
    for arm in arms:
        mine = [r for r in rows if r.arm == arm]
        converted = sum(1 for r in mine if moved_up(r))
        groups.append(
            {
                "arm": arm,
                "contacts": len(mine),
                "converted": converted,
                "rate": _rate(converted, len(mine)),
            }
        )
    _differences(groups, "converted", "contacts")
    return groups


def _differences(rows: list[dict[str, Any]], metric: str, total: str) -> None:
    """Each row after the first gets its `difference` from the first on `metric`."""
    if not rows:
        return
    base = rows[0]
    base["difference"] = None
    for row in rows[1:]:
        found = compare(row[metric], row[total], base[metric], base[total])
        row["difference"] = found.as_json() if found else None


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None

"""A variant test's winner: decided once its sample is in, kept, then sent to everyone.

A `send` step with `winner:` is looked at (at most every `CHECK_EVERY`, and not
before it can be decided) until every variant has `min_sample` sent emails and
`after` has passed since the first one. Then the leader on the metric wins if it
is better with confidence (`nurture.engine.stats.judge`: a two-sided
two-proportion z-test at 95 %, Bonferroni-corrected beyond two variants); if not,
the weights hold and it is looked at again later, with more sends. A winner is
stored once (`experiment_winners`, unique per step: the first stored wins, on
every worker) and never changes; the executor reads the decisions from its
`Inputs`, so it stays pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from nurture.definitions import model as m
from nurture.definitions.loader import Project
from nurture.engine.assignment import Winners, test_of
from nurture.engine.stats import judge
from nurture.events import EventType
from nurture.records import Record, Recorder
from nurture.store import experiments as store

#: How often an undecided test's figures are read again (each worker, each test).
CHECK_EVERY = timedelta(minutes=15)
#: The event each metric counts, once per send (opens and clicks: a person's only).
METRIC_EVENTS: dict[str, str] = {
    "human_opens": EventType.EMAIL_OPENED,
    "human_clicks": EventType.EMAIL_CLICKED,
    "unsubscribes": EventType.EMAIL_UNSUBSCRIBED,
}

Key = tuple[str, str, str]


class WinnerWatch:
    """The decided variant tests of a project, as the executor's `Inputs.winners` wants them."""

    def __init__(self, project: Project, sessions: sessionmaker[Session], record: Recorder) -> None:
        self._config = project.config
        self._sessions = sessions
        self._record = record
        self._tests: list[tuple[str, m.SendStep, str]] = [
            (workflow.name, step, test_of(step))
            for workflow in project.workflows.values()
            for step in workflow.steps
            if isinstance(step, m.SendStep) and step.winner is not None
        ]
        self._decided: dict[Key, str] = {}
        self._next: dict[Key, datetime] = {}

    def current(self, now: datetime) -> Winners:
        """(workflow, step, test) → winning variant, for every test decided so far."""
        due = [
            (workflow, step, test)
            for workflow, step, test in self._tests
            if (workflow, step.id, test) not in self._decided
            and self._next.get((workflow, step.id, test), now) <= now
        ]
        if not due:
            return self._decided
        with self._sessions.begin() as session:
            for key, row in store.winners(session).items():
                self._decided[key] = row.variant
            for workflow, step, test in due:
                if (workflow, step.id, test) not in self._decided:
                    self._look(session, workflow, step, test, now)
        return self._decided

    def _look(
        self, session: Session, workflow: str, step: m.SendStep, test: str, now: datetime
    ) -> None:
        key = (workflow, step.id, test)
        winner = step.winner
        assert winner is not None
        self._next[key] = now + CHECK_EVERY
        names = {v.name for v in step.variants}
        sends = [s for s in store.variant_sends(session, workflow, step.id) if s.variant in names]
        if not sends:
            return
        first = min(s.sent_at for s in sends)
        if now < first + winner.after:
            self._next[key] = first + winner.after
            return
        counts = variant_counts(session, self._config, workflow, step, sends, now)
        if counts is None:
            return
        verdict = judge(counts, winner.lower_is_better)
        if verdict.winner is None:
            return
        details = {
            "metric": winner.metric,
            "variants": {
                name: {"sends": n, "successes": x, "rate": x / n if n else None}
                for name, (x, n) in counts.items()
            },
            "p_values": dict(verdict.p_values),
            "test": "two-proportion z-test, two-sided, 95 %",
        }
        stored, ours = store.keep_winner(
            session, workflow, step.id, test, verdict.winner, winner.metric, now, details
        )
        self._decided[key] = stored.variant
        if ours:
            self._record(
                Record(
                    now, "winner", 0, "", workflow, step.id, {"variant": stored.variant, **details}
                )
            )


def variant_counts(
    session: Session,
    config: m.ProjectConfig,
    workflow: str,
    step: m.SendStep,
    sends: Sequence[store.VariantSend],
    now: datetime,
) -> dict[str, tuple[int, int]] | None:
    """Variant → (successes on the winner's metric, sends counted), or None while some
    variant has fewer than `min_sample` sends. For `reached_stage`, a send counts once
    its `within` has passed (before that, it could still succeed)."""
    winner = step.winner
    assert winner is not None
    names = {v.name for v in step.variants}
    within = winner.within or timedelta(0)
    if winner.metric == "reached_stage":
        sends = [s for s in sends if s.sent_at + within <= now]
    sizes = {name: sum(1 for s in sends if s.variant == name) for name in names}
    if any(size < winner.min_sample for size in sizes.values()):
        return None
    if winner.metric == "reached_stage":
        assert winner.stage is not None
        succeeded = reached(session, config, sends, winner.stage, within)
    else:
        kind = METRIC_EVENTS[winner.metric]
        succeeded = store.sends_with(session, workflow, step.id, [kind])[kind]
    return {
        v.name: (
            sum(1 for s in sends if s.variant == v.name and s.id in succeeded),
            sizes[v.name],
        )
        for v in step.variants
    }


def reached(
    session: Session,
    config: m.ProjectConfig,
    sends: Sequence[store.VariantSend],
    stage: str,
    within: timedelta,
) -> set[int]:
    """The sends whose contact reached `stage` (or a stage above it) within `within` after."""
    if not sends:
        return set()
    ladder = config.stages[config.stages.index(stage) :]
    entries = store.stage_entries(
        session, {s.contact_id for s in sends}, ladder, min(s.sent_at for s in sends)
    )
    return {
        s.id
        for s in sends
        if any(s.sent_at <= at <= s.sent_at + within for at, _ in entries.get(s.contact_id, ()))
    }

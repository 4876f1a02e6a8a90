"""The next email a group of enrollments gets, and when: what `nurture plan` compares.

A migration changes where contacts are; what a person deciding to apply it
needs to know is what that does to their inbox: which email now goes out
*now* that was due in two days. `next_email` follows a workflow's steps from
where a group stands, as the executor would run them (`set`, `score`,
`notify` and `goto` take no time, a `wait` adds its duration), to the first
`send`, and stops where only the contact can tell what comes next: a
`wait_for`, a `branch`, the end.

Times are ranges from now: a group's enrollments wake at different moments
(its earliest and latest `next_run_at`); a wait until a time of day or a
weekday adds up to a day or a week, by the contact's clock. "Now" means due
now: the send window and the frequency cap still hold an email as they
would anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from nurture.definitions import model as m
from nurture.store.enrollments import RunningGroup

#: Sooner than this is "now": the scheduler's next tick.
NOW = timedelta(minutes=1)


@dataclass(frozen=True)
class Upcoming:
    """The next email (`template`), between `earliest` and `latest` from now; or, with no
    template, what the contacts do instead (`then`: waiting for an event, a branch, the end)."""

    template: str | None
    earliest: timedelta
    latest: timedelta
    then: str = ""

    @property
    def now(self) -> bool:
        """An email goes out at once."""
        return self.template is not None and self.latest < NOW

    @property
    def when(self) -> str:
        return span(self.earliest, self.latest)

    @property
    def text(self) -> str:
        if self.template is not None:
            return f"{self.template} sent {self.when}"
        return f"no email yet: {self.then}"

    def to_json(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "earliest_seconds": round(self.earliest.total_seconds()),
            "latest_seconds": round(self.latest.total_seconds()),
            "when": self.when,
            "then": self.then or None,
        }


def next_email(
    workflow: m.Workflow,
    step_id: str | None,
    earliest: timedelta,
    latest: timedelta,
    *,
    started: bool,
) -> Upcoming:
    """What enrollments at `step_id` (None: not started) send next, and when.

    They run that step between `earliest` and `latest` from now; `started`
    says they are already waiting on it (the wait's time is in that range),
    else the step begins then (a wait adds its whole duration).
    """
    step: m.Step | None = workflow.step(step_id) if step_id else workflow.steps[0]
    lo, hi = max(earliest, timedelta(0)), max(latest, timedelta(0))
    seen: set[str] = set()
    while step is not None:
        if step.id in seen:
            return Upcoming(None, lo, hi, f"loops back to {step.id} without an email")
        seen.add(step.id)
        fresh = not (started and step.id == step_id)
        if isinstance(step, m.SendStep):
            # An A/B test sends one of its variants: say which it may be.
            return Upcoming(" or ".join(step.templates), lo, hi)
        if isinstance(step, m.WaitStep) and fresh:
            lo, hi = _after_wait(step, lo, hi)
        elif isinstance(step, m.WaitForStep):
            until = hi if not fresh else hi + step.timeout
            awaited = f"segment {step.segment}" if step.segment else step.event
            return Upcoming(None, lo, hi, f"waits for {awaited} (at most {span(lo, until)})")
        elif isinstance(step, m.BranchStep):
            return Upcoming(None, lo, hi, f"branch {step.id} decides {span(lo, hi)}")
        elif isinstance(step, m.SplitStep):
            return Upcoming(None, lo, hi, f"split {step.id} draws an arm {span(lo, hi)}")
        elif isinstance(step, m.ExitStep):
            return Upcoming(None, lo, hi, f"ends ({step.reason}) {span(lo, hi)}")
        elif isinstance(step, m.GotoStep):
            step = workflow.step(step.target)
            continue
        step = workflow.next_step(step)
    return Upcoming(None, lo, hi, f"completes {span(lo, hi)}")


def _after_wait(step: m.WaitStep, lo: timedelta, hi: timedelta) -> tuple[timedelta, timedelta]:
    if step.duration is not None:
        return lo + step.duration, hi + step.duration
    # Until a time of day: within a day; until a weekday: within a week.
    return lo, hi + timedelta(days=7 if step.until_weekday is not None else 1)


def span(earliest: timedelta, latest: timedelta) -> str:
    """`now`, `in 2 days`, `in 1–2 days`, `within 3 hours`: a range from now, in whole units."""
    if latest < NOW:
        return "now"
    unit, size = next(
        (unit, size)
        for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60))
        if latest.total_seconds() >= size
    )
    low = math.floor(earliest.total_seconds() / size)
    high = math.ceil(latest.total_seconds() / size)
    plural = "s" if high > 1 else ""
    if low == high:
        return f"in {high} {unit}{plural}"
    if low == 0:
        return f"within {high} {unit}{plural}"
    return f"in {low}–{high} {unit}s"


def consequence(before: Upcoming, after: Upcoming) -> str:
    """What a migration does to a group's next email, in words: `lead/guide sent now
    instead of in 1–2 days`, or `…, as before`."""
    if after == before or (after.text == before.text):
        return f"{after.text}, as before"
    if after.template is not None and after.template == before.template:
        return f"{after.text} instead of {before.when}"
    return f"{after.text} (instead of: {before.text})"


def next_emails(
    old: m.Workflow | None,
    new: m.Workflow,
    group: RunningGroup,
    outcome: str,
    target: str | None,
    now: datetime,
) -> tuple[Upcoming | None, Upcoming | None]:
    """A group's next email where it is (None: its version no longer reads), and once it
    is moved as `outcome` says (`nurture.tools.deploy.destination`)."""
    lo = (group.first_due - now) if group.first_due else timedelta(0)
    hi = (group.last_due - now) if group.last_due else lo
    started = group.step is not None
    before = None
    if old is not None and (group.step is None or group.step in old.step_ids):
        before = next_email(old, group.step, lo, hi, started=started)
    if outcome == "stay":
        return before, before
    if outcome == "completes":
        return before, Upcoming(None, timedelta(0), timedelta(0), "completes now (step removed)")
    if outcome == "same-step":  # where it waits and until when stay as they are
        return before, next_email(new, target, lo, hi, started=started)
    # restart, next-step: the step runs from its start, now
    return before, next_email(new, target, timedelta(0), timedelta(0), started=False)

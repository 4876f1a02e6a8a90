"""Workflows as code, deployed safely: what `nurture plan` shows and `nurture apply` does.

Each distinct content of a workflow file is a `workflow_versions` row; the
newest row of a name with `deployed_at` set is "deployed". A plan compares the
project's files with that, step by step, and says what happens to every group
of running enrollments that is not on the file's version:

- by default it stays on its version (the engine runs old versions from their
  stored source, see `Engine.workflow`), so editing a file never moves anyone;
- with `migrate`, it moves to the same step in the new version, keeping its
  waiting state (a contact two days into a wait stays two days in). The
  same step is found as a diff finds it (`nurture.definitions.identity`):
  a step inserted before a `wait` renames the wait's derived id (`wait-2`
  becomes `wait-3`) but not the step, so nobody skips it. If the step is
  gone, the enrollment moves to the nearest following step of the old order
  that still exists; if none does, it completes (`exit_reason`
  ``step-removed``). A step whose kind changed is restarted, since the old
  waiting state means nothing to the new kind.

Each group's next email, before and after (`nurture.tools.upcoming`), is part
of the plan, so it says which emails a migration sends now that were due
later.

`destination` is the one rule, shared by the plan and by `apply`, so what the
plan says is what apply does. Nothing here commits; the caller owns the
transaction, and `apply` runs in exactly one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.orm import Session

import nurture.clock as clock
from nurture.definitions import model as m
from nurture.definitions.identity import match_steps
from nurture.definitions.loader import Project
from nurture.definitions.workflow import parse_workflow
from nurture.store.enrollments import RunningGroup, move_running, running_by_version, running_steps
from nurture.store.statuses import EnrollmentStatus
from nurture.store.workflows import mark_deployed, withdraw, workflow_version_id, workflow_versions
from nurture.tools.upcoming import Upcoming, consequence, next_emails

Status = Literal["new", "unchanged", "changed", "removed"]
#: stay: keeps its version; same-step: the same step (its id perhaps renumbered), same
#: kind, waiting state kept; restart: the same step, a new kind; next-step: its step is
#: gone, goes to the next surviving one; completes.
Outcome = Literal["stay", "same-step", "restart", "next-step", "completes"]


@dataclass(frozen=True)
class Group:
    """Running enrollments of one workflow on one old version, at one step.

    `before` is their next email where they are, `after` once the plan is
    applied (the same, unless they move): `sends` says it in words.
    """

    version_id: int
    version: int  # the version's number within its workflow, from 1
    step: str | None
    count: int
    outcome: Outcome
    target: str | None  # the step id it will be on in the new version
    before: Upcoming | None = field(default=None, compare=False)
    after: Upcoming | None = field(default=None, compare=False)

    @property
    def says(self) -> str:
        where = self.step or "(not started)"
        if self.outcome == "stay":
            return f"stays on version {self.version} at {where}"
        if self.outcome == "same-step" and self.step is None:
            return "moves to the new version (not started: begins at its first step)"
        if self.outcome == "same-step" and self.target != self.step:
            return (
                f"moves to step {self.target} of the new version "
                f"(the same step as {where}, renumbered by a step added or removed before it)"
            )
        if self.outcome == "same-step":
            return f"moves to step {where} of the new version"
        if self.outcome == "restart":
            return f"moves to step {where} of the new version and restarts it (kind changed)"
        if self.outcome == "next-step":
            return f"step {where} is removed: moves to step {self.target}, the next that remains"
        return f"step {where} is removed and no later step remains: completes"

    @property
    def sends(self) -> str:
        """`12 contacts: lead/guide sent now instead of in 1–2 days`."""
        if self.after is None or self.before is None:
            return ""
        who = f"{self.count} contact{'s' if self.count != 1 else ''}"
        return f"{who}: {consequence(self.before, self.after)}"

    @property
    def sends_now(self) -> bool:
        """Applying the plan sends these contacts an email at once."""
        return self.outcome != "stay" and self.after is not None and self.after.now

    def to_json(self) -> dict[str, Any]:
        item = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("before", "after")}
        return {
            **item,
            "says": self.says,
            "sends": self.sends,
            "sends_now": self.sends_now,
            "next_email": {
                "before": self.before.to_json() if self.before else None,
                "after": self.after.to_json() if self.after else None,
            },
        }


@dataclass(frozen=True)
class WorkflowPlan:
    """The plan for one workflow: its status, the step ids changed, what happens to each group."""

    name: str
    status: Status
    deployed: int | None  # version number deployed now
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    groups: tuple[Group, ...] = ()
    #: (deployed id, new id): the same step, its derived id moved by a step added before it
    renamed: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Plan:
    """What `nurture plan` shows and `nurture apply` does: one `WorkflowPlan` per workflow."""

    migrate: bool
    workflows: tuple[WorkflowPlan, ...]

    @property
    def has_changes(self) -> bool:
        return any(w.status != "unchanged" or w.groups for w in self.workflows)

    @property
    def sent_now(self) -> list[tuple[WorkflowPlan, Group]]:
        """The groups that applying this plan sends an email at once."""
        return [(w, g) for w in self.workflows for g in w.groups if g.sends_now]

    def to_json(self) -> dict[str, Any]:
        items = []
        for w in self.workflows:
            item = {k: v for k, v in dataclasses.asdict(w).items() if k != "groups"}
            item["groups"] = [g.to_json() for g in w.groups]
            items.append(item)
        return {"migrate": self.migrate, "workflows": items}


# --- the pure diff ---------------------------------------------------------------


def step_changes(
    old: m.Workflow, new: m.Workflow
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Steps added, removed and changed (the same step, a different definition): the
    same step as `match_steps` pairs it, not the same id."""
    match = match_steps(old, new)
    return match.added, match.removed, match.changed


def destination(
    old: m.Workflow | None, new: m.Workflow, step: str | None
) -> tuple[Outcome, str | None]:
    """Where an enrollment at `step` of `old` goes in `new`: the one migration rule.

    `old` None (its stored source no longer parses) has no order or content
    to follow: the same id is the same step, and a step missing from `new`
    completes.
    """
    if step is None:
        return "same-step", None
    if old is None or step not in old.step_ids:
        return ("same-step", step) if step in new.step_ids else ("completes", None)
    pairs = match_steps(old, new).pairs
    if step in pairs:
        target = pairs[step]
        if old.step(step).kind != new.step(target).kind:
            return "restart", target
        return "same-step", target
    for following in old.step_ids[old.step_ids.index(step) + 1 :]:
        if following in pairs:
            return "next-step", pairs[following]
    return "completes", None


# --- reading the database ----------------------------------------------------------


@dataclass(frozen=True)
class _Version:
    id: int
    name: str
    number: int
    content_hash: str
    source: str
    deployed_at: datetime | None


def _versions(session: Session) -> dict[int, _Version]:
    rows = workflow_versions(session)
    numbers: dict[str, int] = {}
    found = {}
    for row in rows:
        numbers[row.name] = numbers.get(row.name, 0) + 1
        found[row.id] = _Version(
            row.id, row.name, numbers[row.name], row.content_hash, row.source, row.deployed_at
        )
    return found


def deployed_versions(versions: Iterable[_Version]) -> dict[str, _Version]:
    """The newest deployed version of each workflow (latest `deployed_at`, then id)."""
    deployed: dict[str, _Version] = {}
    for v in versions:
        if v.deployed_at is None:
            continue
        best = deployed.get(v.name)
        if best is None or (v.deployed_at, v.id) > (best.deployed_at, best.id):
            deployed[v.name] = v
    return deployed


class _Parsed:
    """Old versions parsed once each, against today's project configuration."""

    def __init__(self, project: Project, versions: dict[int, _Version]) -> None:
        self._project = project
        self._versions = versions
        self._cache: dict[int, m.Workflow | None] = {}

    def __call__(self, version_id: int) -> m.Workflow | None:
        if version_id not in self._cache:
            v = self._versions[version_id]
            parsed, _ = parse_workflow(
                v.source, f"<{v.name} version {v.number}>", self._project.config
            )
            self._cache[version_id] = parsed
        return self._cache[version_id]


# --- plan and apply ------------------------------------------------------------------


def build_plan(
    session: Session, project: Project, *, migrate: bool = False, now: datetime | None = None
) -> Plan:
    """What `apply` (with `migrate` or not) would do `now`; reads, never writes."""
    now = now or clock.now()
    versions = _versions(session)
    deployed = deployed_versions(versions.values())
    parsed = _Parsed(project, versions)
    by_hash = {(v.name, v.content_hash): v for v in versions.values()}
    running: dict[str, list[RunningGroup]] = {}
    for group in sorted(running_by_version(session), key=_group_order):
        running.setdefault(group.workflow, []).append(group)
    plans = []
    for name in sorted({*project.workflows, *deployed, *running}):
        current = project.workflows.get(name)
        now_deployed = deployed.get(name)
        number = now_deployed.number if now_deployed else None
        if current is None:
            groups = []
            for g in running.get(name, []):
                old = parsed(g.version_id)
                before = None
                if old is not None and (g.step is None or g.step in old.step_ids):
                    before, _ = next_emails(old, old, g, "stay", g.step, now)
                version = versions[g.version_id].number
                groups.append(
                    Group(g.version_id, version, g.step, g.count, "stay", g.step, before, before)
                )
            plans.append(WorkflowPlan(name, "removed", number, groups=tuple(groups)))
            continue
        current_version = by_hash.get((name, current.content_hash))
        current_id = current_version.id if current_version else None
        status: Status
        added: tuple[str, ...] = ()
        removed: tuple[str, ...] = ()
        changed: tuple[str, ...] = ()
        renamed: tuple[tuple[str, str], ...] = ()
        if now_deployed is None:
            status = "new"
        elif now_deployed.content_hash == current.content_hash:
            status = "unchanged"
        else:
            status = "changed"
            old = parsed(now_deployed.id)
            if old is not None:
                match = match_steps(old, current)
                added, removed, changed = match.added, match.removed, match.changed
                renamed = match.renamed
        group_list = []
        for g in running.get(name, []):
            if g.version_id == current_id:
                continue
            old = parsed(g.version_id)
            outcome, target = destination(old, current, g.step) if migrate else ("stay", g.step)
            before, after = next_emails(old, current, g, outcome, target, now)
            version = versions[g.version_id].number
            group_list.append(
                Group(g.version_id, version, g.step, g.count, outcome, target, before, after)
            )
        plans.append(
            WorkflowPlan(name, status, number, added, removed, changed, tuple(group_list), renamed)
        )
    return Plan(migrate, tuple(plans))


def _group_order(group: RunningGroup) -> tuple[int, str]:
    return group.version_id, group.step or ""


@dataclass(frozen=True)
class Applied:
    """What `apply` did: the plan followed, workflows deployed and withdrawn, enrollments moved."""

    plan: Plan
    deployed: tuple[str, ...]  # workflows whose deployed version changed
    withdrawn: tuple[str, ...]  # workflows whose file is gone
    moved: int  # enrollments now on the new version
    completed: int  # enrollments completed because their step and every later one went


def apply(session: Session, project: Project, now: datetime, *, migrate: bool = False) -> Applied:
    """Deploy the files (and, with `migrate`, move running enrollments) as `build_plan` says.

    The caller runs this in one transaction: either every enrollment moved
    and every version is marked, or nothing changed.
    """
    plan = build_plan(session, project, migrate=migrate)
    deployed_now = []
    new_ids: dict[str, int] = {}
    for name, workflow in project.workflows.items():
        new_ids[name] = workflow_version_id(session, name, workflow.content_hash, workflow.source)
    for item in plan.workflows:
        if item.status in ("new", "changed"):
            mark_deployed(session, new_ids[item.name], now)
            deployed_now.append(item.name)
    withdrawn = tuple(w.name for w in plan.workflows if w.status == "removed")
    if withdrawn:
        withdraw(session, withdrawn)
    moved = completed = 0
    if migrate:
        for item in plan.workflows:
            if item.name not in new_ids:
                continue
            for group in item.groups:
                count = migrate_group(session, item.name, group, new_ids[item.name], now)
                if group.outcome == "completes":
                    completed += count
                else:
                    moved += count
    return Applied(plan, tuple(deployed_now), withdrawn, moved, completed)


def migrate_group(
    session: Session, workflow: str, group: Group, new_version_id: int, now: datetime
) -> int:
    """Move one group's running enrollments to the new version; returns how many."""
    values: dict[str, Any] = {"workflow_version_id": new_version_id}
    if group.outcome == "completes":
        values |= {
            "status": EnrollmentStatus.COMPLETED,
            "exit_reason": "step-removed",
            "ended_at": now,
            "next_run_at": None,
            "waiting_for": None,
        }
    elif group.outcome in ("restart", "next-step"):
        values |= {
            "step": group.target,
            "status": EnrollmentStatus.ACTIVE,
            "waiting_for": None,
            "next_run_at": now,
        }
    elif group.target != group.step:
        # The same step under its new id: where it waits and until when stay as they are.
        values["step"] = group.target
    return move_running(session, workflow, group.version_id, group.step, values)


def stranded(session: Session, project: Project) -> list[int]:
    """Running enrollments whose step is missing from the version they run: must be none."""
    versions = _versions(session)
    parsed = _Parsed(project, versions)
    rows = running_steps(session)
    found = []
    for enrollment_id, version_id, step in rows:
        workflow = parsed(version_id)
        if workflow is None or step not in workflow.step_ids:
            found.append(enrollment_id)
    return found

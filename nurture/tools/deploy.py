"""Workflows as code, deployed safely: what `nurture plan` shows and `nurture apply` does.

Each distinct content of a workflow file is a `workflow_versions` row; the
newest row of a name with `deployed_at` set is "deployed". A plan compares the
project's files with that, step by step, and says what happens to every group
of running enrollments that is not on the file's version:

- by default it stays on its version (the engine runs old versions from their
  stored source, see `Engine.workflow`), so editing a file never moves anyone;
- with `migrate`, it moves to the same step id in the new version; if that
  step is gone, to the nearest following step of the old order that still
  exists; if none does, the enrollment completes (`exit_reason`
  ``step-removed``). A step whose kind changed is restarted, since the old
  waiting state means nothing to the new kind.

`destination` is the one rule, shared by the plan and by `apply`, so what the
plan says is what apply does. Nothing here commits; the caller owns the
transaction, and `apply` runs in exactly one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.orm import Session

from nurture.definitions import model as m
from nurture.definitions.loader import Project
from nurture.definitions.workflow import parse_workflow
from nurture.expressions import Expression
from nurture.store.enrollments import move_running, running_by_version, running_steps
from nurture.store.statuses import EnrollmentStatus
from nurture.store.workflows import mark_deployed, withdraw, workflow_version_id, workflow_versions

Status = Literal["new", "unchanged", "changed", "removed"]
#: stay: keeps its version; same-step: same id, same kind; restart: same id, new
#: kind; next-step: its step is gone, goes to the next surviving one; completes.
Outcome = Literal["stay", "same-step", "restart", "next-step", "completes"]


@dataclass(frozen=True)
class Group:
    """Running enrollments of one workflow on one old version, at one step."""

    version_id: int
    version: int  # the version's number within its workflow, from 1
    step: str | None
    count: int
    outcome: Outcome
    target: str | None  # the step id it will be on in the new version

    @property
    def says(self) -> str:
        where = self.step or "(not started)"
        if self.outcome == "stay":
            return f"stays on version {self.version} at {where}"
        if self.outcome == "same-step" and self.step is None:
            return "moves to the new version (not started: begins at its first step)"
        if self.outcome == "same-step":
            return f"moves to step {where} of the new version"
        if self.outcome == "restart":
            return f"moves to step {where} of the new version and restarts it (kind changed)"
        if self.outcome == "next-step":
            return f"step {where} is removed: moves to step {self.target}, the next that remains"
        return f"step {where} is removed and no later step remains: completes"


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


@dataclass(frozen=True)
class Plan:
    """What `nurture plan` shows and `nurture apply` does: one `WorkflowPlan` per workflow."""

    migrate: bool
    workflows: tuple[WorkflowPlan, ...]

    @property
    def has_changes(self) -> bool:
        return any(w.status != "unchanged" or w.groups for w in self.workflows)

    def to_json(self) -> dict[str, Any]:
        items = []
        for w in self.workflows:
            item = dataclasses.asdict(w)
            item["groups"] = [{**dataclasses.asdict(g), "says": g.says} for g in w.groups]
            items.append(item)
        return {"migrate": self.migrate, "workflows": items}


# --- the pure diff ---------------------------------------------------------------


def step_changes(
    old: m.Workflow, new: m.Workflow
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Step ids added, removed and changed (same id, different definition)."""
    old_steps = {s.id: s for s in old.steps}
    new_steps = {s.id: s for s in new.steps}
    added = tuple(i for i in new.step_ids if i not in old_steps)
    removed = tuple(i for i in old.step_ids if i not in new_steps)
    changed = tuple(
        i
        for i in new.step_ids
        if i in old_steps and signature(old_steps[i]) != signature(new_steps[i])
    )
    return added, removed, changed


def signature(value: Any) -> Any:
    """A step's meaning, without where it sits in its file (line, index)."""
    if isinstance(value, Expression):
        return value.source
    if isinstance(value, m.Located):
        skip = {"file", "line", "index", "explicit_id"}
        return (
            type(value).__name__,
            tuple(
                (f.name, signature(getattr(value, f.name)))
                for f in dataclasses.fields(value)
                if f.name not in skip
            ),
        )
    if isinstance(value, tuple | list):
        return tuple(signature(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, repr(signature(v))) for k, v in value.items()))
    return value


def destination(
    old: m.Workflow | None, new: m.Workflow, step: str | None
) -> tuple[Outcome, str | None]:
    """Where an enrollment at `step` of `old` goes in `new`: the one migration rule.

    `old` None (its stored source no longer parses) has no order to follow: a
    step missing from `new` then completes.
    """
    if step is None:
        return "same-step", None
    if step in new.step_ids:
        if old is not None and step in old.step_ids and old.step(step).kind != new.step(step).kind:
            return "restart", step
        return "same-step", step
    if old is not None and step in old.step_ids:
        for following in old.step_ids[old.step_ids.index(step) + 1 :]:
            if following in new.step_ids:
                return "next-step", following
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


def _running(session: Session) -> list[tuple[str, int, str | None, int]]:
    """(workflow, version id, step, count) of running enrollments."""
    return running_by_version(session)


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


def build_plan(session: Session, project: Project, *, migrate: bool = False) -> Plan:
    """What `apply` (with `migrate` or not) would do now; reads, never writes."""
    versions = _versions(session)
    deployed = deployed_versions(versions.values())
    parsed = _Parsed(project, versions)
    by_hash = {(v.name, v.content_hash): v for v in versions.values()}
    running: dict[str, list[tuple[int, str | None, int]]] = {}
    for name, version_id, step, count in _running(session):
        running.setdefault(name, []).append((version_id, step, count))
    plans = []
    for name in sorted({*project.workflows, *deployed, *running}):
        current = project.workflows.get(name)
        now_deployed = deployed.get(name)
        number = now_deployed.number if now_deployed else None
        if current is None:
            groups = tuple(
                Group(vid, versions[vid].number, step, count, "stay", step)
                for vid, step, count in sorted(running.get(name, []), key=_group_order)
            )
            plans.append(WorkflowPlan(name, "removed", number, groups=groups))
            continue
        current_version = by_hash.get((name, current.content_hash))
        current_id = current_version.id if current_version else None
        status: Status
        added: tuple[str, ...] = ()
        removed: tuple[str, ...] = ()
        changed: tuple[str, ...] = ()
        if now_deployed is None:
            status = "new"
        elif now_deployed.content_hash == current.content_hash:
            status = "unchanged"
        else:
            status = "changed"
            old = parsed(now_deployed.id)
            if old is not None:
                added, removed, changed = step_changes(old, current)
        group_list = []
        for vid, step, count in sorted(running.get(name, []), key=_group_order):
            if vid == current_id:
                continue
            outcome, target = destination(parsed(vid), current, step) if migrate else ("stay", step)
            group_list.append(Group(vid, versions[vid].number, step, count, outcome, target))
        plans.append(WorkflowPlan(name, status, number, added, removed, changed, tuple(group_list)))
    return Plan(migrate, tuple(plans))


def _group_order(group: tuple[int, str | None, int]) -> tuple[int, str]:
    return group[0], group[1] or ""


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

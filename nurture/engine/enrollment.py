"""Who enters which workflow, and when they may enter again.

Triggers are the three `enroll:` forms: entering a stage, an event, or an
expression turning true when the contact changes. `may_enroll` is pure (the
re-enrollment rule against past enrollments); `Enroller` finds candidates and
writes the rows inside the caller's transaction, so enrollment commits with
the change that caused it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from nurture.definitions import model as m
from nurture.definitions.loader import Project
from nurture.engine.executor import EventView
from nurture.expressions import ExpressionError
from nurture.lifecycle.score_rules import view_of
from nurture.records import Record, Recorder
from nurture.store import enrollments as work
from nurture.store.models import Contact


def may_enroll(rule: m.Reenroll, past: Sequence[work.PastEnrollment], now: datetime) -> bool:
    """Never twice at once; then the workflow's `reenroll` rule decides."""
    if any(p.ended_at is None for p in past):
        return False
    if not past:
        return True
    if rule.mode == "never":
        return False
    if rule.mode == "always":
        return True
    assert rule.after is not None
    last_end = max(p.ended_at for p in past if p.ended_at is not None)
    return now - last_end >= rule.after


@dataclass(frozen=True)
class Trigger:
    """Why enrollment is being considered for a contact."""

    stage: str | None = None  # the stage just entered
    event: EventView | None = None  # the event just recorded
    changed: bool = False  # the contact's data changed: re-test `when` workflows


class Enroller:
    def __init__(self, project: Project, version_ids: VersionIds, record: Recorder) -> None:
        self._project = project
        self._version_ids = version_ids
        self._record = record

    def candidates(self, contact: Contact, trigger: Trigger, now: datetime) -> list[m.Workflow]:
        config = self._project.config
        found = []
        for workflow in self._project.workflows.values():
            enroll = workflow.enroll
            if enroll.stage is not None:
                if trigger.stage == enroll.stage:
                    found.append(workflow)
            elif enroll.event is not None:
                event = trigger.event
                if (
                    event is not None
                    and event.type == enroll.event
                    and (enroll.match is None or _safe_test(enroll, contact, config, event, now))
                ):
                    found.append(workflow)
            elif (
                enroll.when is not None
                and (trigger.changed or trigger.stage)
                and _safe_test(enroll, contact, config, None, now)
            ):
                found.append(workflow)
        return found

    def enroll(
        self,
        session: Session,
        triggers: Mapping[int, Sequence[Trigger]],
        contacts: Mapping[int, Contact],
        now: datetime,
        *,
        only: str | None = None,
    ) -> list[tuple[int, str]]:
        """Enroll each contact where its triggers say; returns (contact, workflow) pairs.

        `only` restricts to one workflow (a recycle program named by `on_reject`).
        """
        wanted: dict[tuple[int, str], m.Workflow] = {}
        for contact_id, contact_triggers in triggers.items():
            contact = contacts[contact_id]
            if contact.suppressed_at is not None:
                continue
            for trigger in contact_triggers:
                for workflow in self.candidates(contact, trigger, now):
                    if only is None or workflow.name == only:
                        wanted[(contact_id, workflow.name)] = workflow
            if only is not None and only in self._project.workflows:
                wanted.setdefault((contact_id, only), self._project.workflows[only])
        if not wanted:
            return []
        past: dict[tuple[int, str], list[work.PastEnrollment]] = {}
        for row in work.enrollments_for(session, {c for c, _ in wanted}, {w for _, w in wanted}):
            past.setdefault((row.contact_id, row.workflow), []).append(row)
        rows = []
        enrolled = []
        for (contact_id, name), workflow in wanted.items():
            if not may_enroll(workflow.reenroll, past.get((contact_id, name), []), now):
                continue
            rows.append(
                {
                    "contact_id": contact_id,
                    "workflow": name,
                    "workflow_version_id": self._version_ids(session, workflow),
                    "step": None,
                    "visit": 0,
                    "status": "active",
                    "next_run_at": now,
                    "started_at": now,
                }
            )
            enrolled.append((contact_id, name))
            self._record(Record(now, "enroll", contact_id, contacts[contact_id].email, name))
        work.insert_enrollments(session, rows)
        return enrolled


class VersionIds:
    """Workflow content → its `workflow_versions` id, remembered per process."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], int] = {}

    def __call__(self, session: Session, workflow: m.Workflow) -> int:
        key = (workflow.name, workflow.content_hash)
        if key not in self._ids:
            self._ids[key] = work.workflow_version_id(
                session, workflow.name, workflow.content_hash, workflow.source
            )
        return self._ids[key]


def _safe_test(
    enroll: m.Enroll,
    contact: Contact,
    config: m.ProjectConfig,
    event: EventView | None,
    now: datetime,
) -> bool:
    expression = enroll.match if event is not None else enroll.when
    assert expression is not None
    context: dict[str, object] = {
        "contact": view_of(contact, config, now),
        "stage_index": config.stage_index,
        "now": now,
    }
    if event is not None:
        context["event"] = event
    try:
        return expression.test(context)
    except ExpressionError:
        return False

"""Who enters which workflow, and when they may enter again.

Triggers are the four `enroll:` forms: entering a stage, an event, an
expression turning true when the contact changes, or entering a segment (its
`segment.entered` event). `may_enroll` is pure (the
re-enrollment rule against past enrollments); `Enroller` finds candidates and
writes the rows inside the caller's transaction, so enrollment commits with
the change that caused it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from nurture.contacts.standing import view_of
from nurture.definitions import model as m
from nurture.definitions.loader import Project
from nurture.events import EventType, EventView
from nurture.expressions import ExpressionError
from nurture.lifecycle.facts import StageMove
from nurture.lifecycle.listeners import Listener
from nurture.records import Record, Recorder
from nurture.store import enrollments as work
from nurture.store.models import Contact
from nurture.store.statuses import EnrollmentStatus
from nurture.store.workflows import workflow_version_id


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
    """Decides who enters which workflow, and writes the rows in the caller's transaction.

    `candidates` matches a trigger against each workflow's `enroll:`; `enroll` applies the
    `reenroll` rules and inserts. The engine's `EnrollmentListener` calls it on lifecycle news.
    """

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
            elif enroll.segment is not None:
                event = trigger.event
                if (
                    event is not None
                    and event.type == EventType.SEGMENT_ENTERED
                    and event.properties.get("segment") == enroll.segment
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
                    "status": EnrollmentStatus.ACTIVE,
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
            self._ids[key] = workflow_version_id(
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


class EnrollmentListener(Listener):
    """The engine's ear on the lifecycle: enrolls contacts where its news says.

    A stage entered starts that stage's workflows; an event starts the
    workflows that `enroll: {event: ...}` on it (a segment entered, those that
    `enroll: {segment: ...}` on it); any change re-tests the
    workflows that `enroll: {when: ...}`; a recycled lead enters the workflow
    `on_reject` names. Only triggers some workflow can take are built: most
    projects enroll by stage alone, and a thousand triggers nobody takes cost
    more than the rest of enrollment.
    """

    def __init__(self, enroller: Enroller, project: Project) -> None:
        self._enroller = enroller
        workflows = project.workflows.values()
        self._on_events = {w.enroll.event for w in workflows if w.enroll.event is not None}
        if any(w.enroll.segment is not None for w in workflows):
            self._on_events.add(EventType.SEGMENT_ENTERED)
        self._on_change = any(
            w.enroll.stage is None and w.enroll.event is None and w.enroll.when is not None
            for w in workflows
        )

    def after_stage_moves(
        self,
        session: Session,
        contacts: Mapping[int, Contact],
        moves: Sequence[StageMove],
        now: datetime,
    ) -> None:
        triggers = {mv.contact_id: [Trigger(stage=mv.to_stage, changed=True)] for mv in moves}
        self._enroller.enroll(session, triggers, contacts, now)

    def after_events(
        self,
        session: Session,
        contacts: Mapping[int, Contact],
        events: Mapping[int, Sequence[EventView]],
        now: datetime,
    ) -> None:
        triggers: dict[int, list[Trigger]] = {}
        for contact_id, views in events.items():
            # A machine's open or click (a scanner, an image proxy) starts no workflow.
            wanted = [
                Trigger(event=view)
                for view in views
                if view.type in self._on_events and view.counts("human")
            ]
            if self._on_change:
                wanted.append(Trigger(changed=True))
            if wanted:
                triggers[contact_id] = wanted
        if triggers:
            self._enroller.enroll(session, triggers, contacts, now)

    def after_change(self, session: Session, contacts: Sequence[Contact], now: datetime) -> None:
        if self._on_change and contacts:
            triggers = {c.id: [Trigger(changed=True)] for c in contacts}
            self._enroller.enroll(session, triggers, {c.id: c for c in contacts}, now)

    def after_recycle(
        self, session: Session, contact: Contact, workflow: str, now: datetime
    ) -> None:
        self._enroller.enroll(session, {contact.id: []}, {contact.id: contact}, now, only=workflow)

"""`nurture plan` / `apply`: versions, the migration rule, and the engine after a migration."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
from nurture.definitions.config import parse_config
from nurture.definitions.identity import match_steps
from nurture.definitions.loader import load_project
from nurture.definitions.model import Workflow
from nurture.definitions.workflow import parse_workflow
from nurture.store.models import Contact, Enrollment, WorkflowVersion
from nurture.testing import START, Harness
from nurture.tools.deploy import apply, build_plan, destination, step_changes, stranded
from nurture.tools.upcoming import consequence, next_email, span
from tests.engine_world import CONFIG, LEAD, project_dir

__all__ = ["project_dir"]  # the fixture, shared with the engine tests

# wait-2 becomes a wait_for (kind changed); wait-for-4 and exit-5 are removed.
LEAD_V2 = """\
name: lead-nurture
enroll: {stage: lead}
steps:
  - send: lead/welcome
  - id: wait-2
    wait_for: {event: email.clicked, timeout: 1d}
  - id: guide
    send: lead/guide
  - id: thanks
    send: lead/thanks
"""


def _parse(text: str) -> Workflow:
    config, _ = parse_config(CONFIG, "nurture.yaml")
    assert config is not None
    workflow, problems = parse_workflow(text, "lead-nurture.yaml", config)
    assert workflow is not None, problems
    return workflow


def test_step_changes_and_the_migration_rule() -> None:
    old, new = _parse(LEAD), _parse(LEAD_V2)
    assert old.step_ids == ("welcome", "wait-2", "guide", "wait-for-4", "exit-5", "thanks")
    assert step_changes(old, new) == ((), ("wait-for-4", "exit-5"), ("wait-2",))
    assert destination(old, new, "guide") == ("same-step", "guide")
    assert destination(old, new, "wait-2") == ("restart", "wait-2")
    assert destination(old, new, "wait-for-4") == ("next-step", "thanks")
    assert destination(old, new, None) == ("same-step", None)
    # Nothing after it survives: the enrollment completes rather than being stranded.
    short = _parse(LEAD_V2.replace("  - id: thanks\n    send: lead/thanks\n", ""))
    assert destination(old, short, "thanks") == ("completes", None)
    assert destination(None, new, "gone") == ("completes", None)
    # Moving a step or its line does not count as a change.
    assert step_changes(old, _parse("\n\n" + LEAD)) == ((), (), ())


def test_a_step_inserted_or_removed_leaves_the_others_their_identity() -> None:
    """Derived ids (`wait-2`) move with their position; the steps do not (issue #17)."""
    old = _parse(LEAD)
    inserted = _parse(LEAD.replace("  - wait: 2d\n", "  - score: 5\n  - wait: 2d\n"))
    assert inserted.step_ids == (
        "welcome", "score-2", "wait-3", "guide", "wait-for-5", "exit-6", "thanks",
    )  # fmt: skip
    match = match_steps(old, inserted)
    assert (match.added, match.removed, match.changed) == (("score-2",), (), ())
    assert match.renamed == (
        ("wait-2", "wait-3"),
        ("wait-for-4", "wait-for-5"),
        ("exit-5", "exit-6"),
    )
    assert destination(old, inserted, "wait-2") == ("same-step", "wait-3")
    assert destination(old, inserted, "wait-for-4") == ("same-step", "wait-for-5")
    # Removing the welcome renumbers the rest the other way.
    shorter = _parse(LEAD.replace("  - send: lead/welcome\n", ""))
    assert destination(old, shorter, "wait-2") == ("same-step", "wait-1")
    assert step_changes(old, shorter) == ((), ("welcome",), ())


def test_a_step_edited_in_place_is_the_same_step_changed() -> None:
    old = _parse(LEAD)
    longer = _parse(LEAD.replace("wait: 2d", "wait: 3d"))
    assert step_changes(old, longer) == ((), (), ("wait-2",))
    assert destination(old, longer, "wait-2") == ("same-step", "wait-2")
    # Edited and moved after a new step: still the same wait.
    both = _parse(LEAD.replace("  - wait: 2d\n", "  - score: 5\n  - wait: 3d\n"))
    assert match_steps(old, both).pairs["wait-2"] == "wait-3"
    assert step_changes(old, both) == (("score-2",), (), ("wait-3",))


def test_an_id_written_in_the_file_is_the_authors_name_for_the_step() -> None:
    old = _parse(LEAD)
    # The same id on both sides, written on one: the same step, whatever it became.
    named = _parse(LEAD.replace("  - wait: 2d\n", "  - id: wait-2\n    wait: 5d\n"))
    assert match_steps(old, named).changed == ("wait-2",)
    # A written id renamed is another step, even with the same content.
    renamed = _parse(LEAD.replace("  - id: guide\n", "  - id: the-guide\n"))
    assert step_changes(old, renamed) == (("the-guide",), ("guide",), ())


def test_the_next_email_and_when_in_words() -> None:
    day = timedelta(days=1)
    assert span(timedelta(seconds=20), timedelta(seconds=40)) == "now"
    assert span(day * 1.2, day * 1.9) == "in 1–2 days"
    assert span(2 * day, 2 * day) == "in 2 days"
    assert span(timedelta(0), timedelta(hours=3)) == "within 3 hours"
    assert span(timedelta(hours=1), timedelta(hours=1)) == "in 1 hour"
    old = _parse(LEAD)
    waiting = next_email(old, "wait-2", day, 2 * day, started=True)
    assert waiting.text == "lead/guide sent in 1–2 days"
    assert next_email(old, "wait-2", timedelta(0), timedelta(0), started=False).text == (
        "lead/guide sent in 2 days"
    )
    assert next_email(old, "wait-for-4", day, 5 * day, started=True).text == (
        "no email yet: waits for email.clicked (at most in 1–5 days)"
    )
    assert next_email(old, None, timedelta(0), timedelta(0), started=False).now
    now = next_email(old, "guide", timedelta(0), timedelta(0), started=False)
    assert consequence(waiting, now) == "lead/guide sent now instead of in 1–2 days"
    assert consequence(waiting, waiting) == "lead/guide sent in 1–2 days, as before"


@pytest.fixture
def harness(
    project_dir: Path, sessions: sessionmaker[Session], tmp_path: Path
) -> Iterator[Harness]:
    h = Harness(load_project(project_dir), sessions)
    with clock.using(h.clock):
        h.import_csv("email,first_name,company,stage\nanne@example.com,Anne,A,lead\n")
        yield h


def _deploy(h: Harness, project_dir: Path, *, migrate: bool = False) -> None:
    h.engine.project = project = load_project(project_dir)
    h.engine.enroller._project = project
    with h.sessions.begin() as session:
        apply(session, project, clock.now(), migrate=migrate)


def _enrollments(h: Harness) -> dict[str, Enrollment]:
    with h.sessions() as session:
        emails = {row.id: row.email for row in session.execute(select(Contact.id, Contact.email))}
        return {emails[e.contact_id]: e for e in session.scalars(select(Enrollment))}


def _mid_flow(h: Harness, project_dir: Path, tmp_path: Path) -> None:
    """Anne waits on the click (wait-for-4), Carl on the 2-day wait (wait-2), on v1."""
    _deploy(h, project_dir)
    h.tick()
    h.at(START + timedelta(days=2))
    h.import_csv("email,first_name,company,stage\ncarl@example.com,Carl,C,lead\n")
    h.tick()
    steps = {email: e.step for email, e in _enrollments(h).items()}
    assert steps == {"anne@example.com": "wait-for-4", "carl@example.com": "wait-2"}
    (project_dir / "workflows" / "lead-nurture.yaml").write_text(LEAD_V2)


def test_plan_says_what_changes_and_what_happens_to_contacts(
    harness: Harness, project_dir: Path, tmp_path: Path
) -> None:
    with harness.sessions() as s:
        first = build_plan(s, load_project(project_dir))
    assert [(w.name, w.status, w.groups) for w in first.workflows] == [("lead-nurture", "new", ())]
    _mid_flow(harness, project_dir, tmp_path)
    project = load_project(project_dir)

    with harness.sessions() as s:
        stay = build_plan(s, project)
        move = build_plan(s, project, migrate=True)
    [workflow] = stay.workflows
    assert (workflow.status, workflow.deployed) == ("changed", 1)
    assert (workflow.removed, workflow.changed) == (("wait-for-4", "exit-5"), ("wait-2",))
    assert [g.says for g in workflow.groups] == [
        "stays on version 1 at wait-2",
        "stays on version 1 at wait-for-4",
    ]
    assert [g.says for g in move.workflows[0].groups] == [
        "moves to step wait-2 of the new version and restarts it (kind changed)",
        "step wait-for-4 is removed: moves to step thanks, the next that remains",
    ]
    assert move.to_json()["workflows"][0]["groups"][1]["target"] == "thanks"


def test_apply_without_migrate_leaves_contacts_on_their_version(
    harness: Harness, project_dir: Path, tmp_path: Path
) -> None:
    _mid_flow(harness, project_dir, tmp_path)
    _deploy(harness, project_dir)
    with harness.sessions() as session:
        plan = build_plan(session, harness.engine.project)
        assert plan.workflows[0].status == "unchanged" and len(plan.workflows[0].groups) == 2
        deployed = session.scalars(
            select(WorkflowVersion.id).where(WorkflowVersion.deployed_at.is_not(None))
        ).all()
    assert len(deployed) == 2
    # Carl keeps running version 1: its 2-day wait, then the guide.
    harness.at(START + timedelta(days=4))
    harness.tick()
    assert harness.subjects("carl@example.com")[-1].startswith("Le guide")
    assert _enrollments(harness)["carl@example.com"].step == "wait-for-4"


def test_apply_migrate_strands_no_one_and_the_engine_goes_on(
    harness: Harness, project_dir: Path, tmp_path: Path
) -> None:
    _mid_flow(harness, project_dir, tmp_path)
    _deploy(harness, project_dir, migrate=True)

    with harness.sessions() as session:
        assert stranded(session, harness.engine.project) == []
        [new_id] = session.scalars(
            select(WorkflowVersion.id).order_by(WorkflowVersion.id.desc()).limit(1)
        ).all()
    moved = _enrollments(harness)
    assert {e.workflow_version_id for e in moved.values()} == {new_id}
    carl = moved["carl@example.com"]
    assert (carl.step, carl.status, carl.waiting_for) == ("wait-2", "active", None)
    assert moved["anne@example.com"].step == "thanks"

    harness.tick()  # Anne goes on at `thanks` at once; Carl restarts wait-2 as a wait_for
    assert harness.subjects("anne@example.com")[-1].startswith("Merci")
    assert _enrollments(harness)["anne@example.com"].status == "completed"
    carl = _enrollments(harness)["carl@example.com"]
    assert (carl.step, carl.status) == ("wait-2", "waiting")
    harness.at(START + timedelta(days=3))  # the new 1-day timeout
    harness.tick()
    assert [s.split(" ")[0] for s in harness.subjects("carl@example.com")] == [
        "Bienvenue",
        "Le",
        "Merci",
    ]
    with harness.sessions() as session:
        assert stranded(session, harness.engine.project) == []
        again = build_plan(session, harness.engine.project, migrate=True)
    assert not again.has_changes


def test_a_removed_step_with_nothing_after_it_completes(
    harness: Harness, project_dir: Path, tmp_path: Path
) -> None:
    _mid_flow(harness, project_dir, tmp_path)
    (project_dir / "workflows" / "lead-nurture.yaml").write_text(LEAD.split("  - wait_for")[0])
    _deploy(harness, project_dir, migrate=True)
    anne = _enrollments(harness)["anne@example.com"]
    assert (anne.status, anne.exit_reason, anne.next_run_at) == ("completed", "step-removed", None)
    with harness.sessions() as session:
        assert stranded(session, harness.engine.project) == []


def test_a_worker_holding_the_old_state_cannot_write_it_back_after_a_migration(
    harness: Harness, project_dir: Path, tmp_path: Path
) -> None:
    from nurture.store import enrollments as work

    _mid_flow(harness, project_dir, tmp_path)
    seen = _enrollments(harness)["carl@example.com"]  # what a racing worker loaded
    _deploy(harness, project_dir, migrate=True)
    with harness.sessions.begin() as session:
        written = work.save_enrollments(
            session,
            [
                work.EnrollmentWrite(
                    id=seen.id,
                    expected_visit=seen.visit,
                    expected_step=seen.step,
                    loaded_next_run_at=seen.next_run_at,
                    step=seen.step,
                    visit=seen.visit + 1,
                    status="waiting",
                    waiting_for=seen.waiting_for,
                    next_run_at=seen.next_run_at,
                )
            ],
        )
    assert written == set()
    assert _enrollments(harness)["carl@example.com"].workflow_version_id != seen.workflow_version_id

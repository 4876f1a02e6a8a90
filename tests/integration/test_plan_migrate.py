"""`plan` / `apply --migrate` on the example project with contacts mid-flow: a step
inserted into a live workflow moves nobody's email, and the plan says every email a
migration sends at once (issue #17). On SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import select

import nurture.cli.common as cli
import nurture.clock as clock
from nurture.cli.deploy import print_plan
from nurture.definitions.loader import load_project
from nurture.definitions.model import Workflow
from nurture.store.db import create_engine_for, session_factory, upgrade
from nurture.store.models import Contact, Enrollment
from nurture.testing import START, Harness
from nurture.tools.deploy import Plan, apply, build_plan

REPO = Path(__file__).parents[2]
WAIT = "  - wait: 2d\n"


def _leads(first: int, number: int) -> str:
    rows = [f"lead{n:02}@example.com,Lead,Société {n},lead" for n in range(first, first + number)]
    return "email,first_name,company,stage\n" + "\n".join(rows) + "\n"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Harness, Path]]:
    """Twelve leads on version 1 of lead-nurture, waiting on its 2-day wait (`wait-2`):
    six welcomed on Monday (1 day left), six on Tuesday (2 days left); it is Tuesday."""
    root = tmp_path / "campaigns"
    root.mkdir()
    shutil.copy(REPO / "nurture.yaml", root)
    shutil.copytree(REPO / "workflows", root / "workflows")
    shutil.copytree(REPO / "templates", root / "templates")
    # Without its holdout, every lead gets lead-nurture's emails: what the plan counts.
    _edit(root, "\nholdout: ", "\n# holdout: ")
    url = request.getfixturevalue(
        "migrated_sqlite_url" if request.param == "sqlite" else "postgres_url"
    )
    if request.param == "postgres":
        upgrade(url)
    db = create_engine_for(url)
    h = Harness(load_project(root), session_factory(db))
    try:
        with clock.using(h.clock):
            _deploy(h, root)
            h.import_csv(_leads(0, 6))
            h.run()
            h.at(START + timedelta(days=1))
            h.import_csv(_leads(6, 6))
            h.run()
            assert {e.step for e in _lead_nurture(h)} == {"wait-2"}
            assert len(_sent(h, "welcome")) == 12
            yield h, root
    finally:
        db.dispose()


def _deploy(h: Harness, root: Path, *, migrate: bool = False) -> None:
    h.engine.project = project = load_project(root)
    h.engine.enroller._project = project
    with h.sessions.begin() as session:
        apply(session, project, clock.now(), migrate=migrate)


def _plan(h: Harness, root: Path) -> Plan:
    with h.sessions() as session:
        return build_plan(session, load_project(root), migrate=True)


def _lead_nurture(h: Harness) -> list[Enrollment]:
    with h.sessions() as session:
        return list(
            session.scalars(
                select(Enrollment)
                .where(Enrollment.workflow == "lead-nurture")
                .order_by(Enrollment.id)
            )
        )


def _sent(h: Harness, step: str) -> dict[str, datetime]:
    """When each contact was sent lead-nurture's `step` (simulate's send records), whichever
    variant of an A/B test (the guide's) it got."""
    return {r.contact: r.at for r in h.records if r.kind == "send" and r.step == step}


def _edit(root: Path, old: str, new: str) -> Workflow:
    path = root / "workflows" / "lead-nurture.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return load_project(root).workflows["lead-nurture"]


def _printed(plan: Plan, monkeypatch: pytest.MonkeyPatch) -> str:
    console = Console(record=True, width=250)
    monkeypatch.setattr(cli, "console", console)
    print_plan(plan)
    return console.export_text()


def test_a_step_inserted_before_a_wait_moves_no_ones_email(
    world: tuple[Harness, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    h, root = world
    with clock.using(h.clock):
        before = {e.contact_id: (e.next_run_at, e.waiting_for) for e in _lead_nurture(h)}
        _edit(root, WAIT, "  - score: 5\n" + WAIT)
        plan = _plan(h, root)
        lead = next(w for w in plan.workflows if w.name == "lead-nurture")
        assert (lead.added, lead.removed, lead.changed) == (("score-2",), (), ())
        assert ("wait-2", "wait-3") in lead.renamed
        [group] = lead.groups
        assert (group.step, group.count, group.outcome, group.target) == (
            "wait-2",
            12,
            "same-step",
            "wait-3",
        )
        assert (
            group.sends
            == "12 contacts: lead/guide or lead/guide-question sent in 1–2 days, as before"
        )
        assert plan.sent_now == []
        printed = _printed(plan, monkeypatch)
        assert (
            "12 contacts: lead/guide or lead/guide-question sent in 1–2 days, as before" in printed
        )
        assert "Sent at once" not in printed

        _deploy(h, root, migrate=True)
        moved = _lead_nurture(h)
        assert {e.step for e in moved} == {"wait-3"}
        # Where each waits, and until when, are what they were.
        assert {e.contact_id: (e.next_run_at, e.waiting_for) for e in moved} == before
        h.run()
        h.later(timedelta(hours=23))
        assert _sent(h, "guide") == {}, "an email went out before its wait ended"
        h.later(timedelta(hours=1))  # Wednesday: Monday's six, 2 days on
        h.later(timedelta(days=1))  # Thursday: Tuesday's six
        welcomed = _sent(h, "welcome")
        assert _sent(h, "guide") == {
            email: at + timedelta(days=2) for email, at in welcomed.items()
        }
        with h.sessions() as session:
            # Past the new step already: nobody got its points.
            assert {c.score for c in session.scalars(select(Contact))} == {0}


def test_plan_names_every_email_a_migration_sends_at_once(
    world: tuple[Harness, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    h, root = world
    with clock.using(h.clock):
        _edit(root, WAIT, "")  # the wait is gone: whoever waits there goes on to the guide
        plan = _plan(h, root)
        lead = next(w for w in plan.workflows if w.name == "lead-nurture")
        assert lead.removed == ("wait-2",)
        [group] = lead.groups
        assert (group.outcome, group.target) == ("next-step", "guide")
        assert (
            group.sends
            == "12 contacts: lead/guide or lead/guide-question sent now instead of in 1–2 days"
        )
        assert [g for _, g in plan.sent_now] == [group]
        printed = _printed(plan, monkeypatch)
        assert "Sent at once when this is applied:" in printed
        assert (
            "lead-nurture v1 at wait-2: 12 contacts: lead/guide or lead/guide-question sent now instead of in 1–2 days"
            in printed
        )
        # What the plan said is what apply does.
        _deploy(h, root, migrate=True)
        h.run()
        assert _sent(h, "guide") == {email: clock.now() for email in _sent(h, "welcome")}

"""One stage-move path: whatever moves a contact, the same things follow.

A score crossing a threshold, a contacts import (CSV or JSON Lines), `POST
/v1/contacts`, a sales rejection and `nurture contacts move` all go through
one function, so each of them records the stage history with its cause, emits
`stage.changed` (event and webhook), ends nurturing at the prospect stage,
opens the handoff at `handoff.at` (owner, snapshot, notifications) and enrolls
the contact in the new stage's workflows. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

import nurture.clock as clock
from nurture.definitions.loader import load_project
from nurture.settings import Settings
from nurture.store.db import create_engine_for, session_factory, upgrade
from nurture.store.models import (
    Enrollment,
    Event,
    Handoff,
    Notification,
    StageHistory,
)
from nurture.testing import Harness, write_project
from nurture.web.app import create_app

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday
API_KEY = "stage-move-test-key-0123456789"
CRM = "https://crm.example.com/hooks/nurture"
STAGES_HOOK = "https://crm.example.com/hooks/stages"

CONFIG = f"""\
stages: [subscriber, lead, mql, sql, opportunity]
prospect_stage: sql
scoring:
  rules:
    - {{event: demo.requested, points: 60}}
  thresholds: {{lead: 20, mql: 50, sql: 100}}
handoff:
  at: sql
  assign:
    round_robin: [alice@example.com, bob@example.com]
  notify:
    - webhook: {CRM}
    - email: owner
  on_reject: {{stage: lead, score: halve}}
webhooks:
  - url: {STAGES_HOOK}
    events: [stage.changed]
sending:
  from: "Équipe <bonjour@example.com>"
"""
WORKFLOWS = {
    "lead-nurture": "name: lead-nurture\nenroll: {stage: lead}\nsteps:\n"
    "  - send: lead/one\n  - wait: 30d\n",
    "mql-push": "name: mql-push\nenroll: {stage: mql}\nsteps:\n  - send: lead/one\n  - wait: 30d\n",
}
BODY = (
    '---\nsubject: "one"\n---\n'
    "<mjml><mj-body><mj-section><mj-column><mj-text>x</mj-text>"
    "</mj-column></mj-section></mj-body></mjml>\n"
)


class World(Harness):
    def __init__(self, root: Path, url: str, tmp: Path) -> None:
        self.db = create_engine_for(url)
        super().__init__(load_project(root), session_factory(self.db), start=START)
        self.tmp = tmp

    def import_file(self, name: str, text: str) -> None:
        self.import_csv(text, name)

    def history(self, email: str) -> list[tuple[str | None, str, str]]:
        contact = self.contact(email)
        with self.sessions() as session:
            rows = session.scalars(
                select(StageHistory)
                .where(StageHistory.contact_id == contact.id)
                .order_by(StageHistory.id)
            )
            return [(h.from_stage, h.to_stage, h.cause) for h in rows]

    def handoffs(self, email: str) -> list[Handoff]:
        contact = self.contact(email)
        with self.sessions() as session:
            return list(session.scalars(select(Handoff).where(Handoff.contact_id == contact.id)))

    def events_of(self, email: str, kind: str) -> list[Event]:
        contact = self.contact(email)
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(Event)
                    .where(Event.contact_id == contact.id, Event.type == kind)
                    .order_by(Event.id)
                )
            )

    def notifications_about(self, email: str) -> list[Notification]:
        contact = self.contact(email)
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(Notification)
                    .where(Notification.contact_id == contact.id)
                    .order_by(Notification.id)
                )
            )

    def running(self, email: str) -> list[str]:
        contact = self.contact(email)
        with self.sessions() as session:
            return [
                e.workflow
                for e in session.scalars(
                    select(Enrollment).where(
                        Enrollment.contact_id == contact.id,
                        Enrollment.status.in_(("active", "waiting")),
                    )
                )
            ]

    def exits(self, email: str) -> dict[str, str | None]:
        contact = self.contact(email)
        with self.sessions() as session:
            return {
                e.workflow: e.exit_reason
                for e in session.scalars(
                    select(Enrollment).where(Enrollment.contact_id == contact.id)
                )
            }


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    url = request.getfixturevalue(
        "migrated_sqlite_url" if request.param == "sqlite" else "postgres_url"
    )
    if request.param == "postgres":
        upgrade(url)
    root = write_project(
        tmp_path / "project",
        CONFIG,
        WORKFLOWS,
        {"lead/one": BODY},
        example_templates=("_layouts", "sales"),
    )
    world = World(root, url, tmp_path)
    try:
        with clock.using(world.clock):
            yield world
    finally:
        world.db.dispose()


def assert_handed_to_sales(world: World, email: str, cause: str) -> None:
    """Everything the one move path promises at the handoff stage."""
    contact = world.contact(email)
    assert contact.stage == "sql"
    assert world.history(email)[-1][1:] == ("sql", cause)
    [changed] = [e for e in world.events_of(email, "stage.changed") if e.properties["to"] == "sql"]
    assert changed.properties["cause"] == cause
    [handoff] = world.handoffs(email)
    assert handoff.status == "open"
    assert handoff.owner in ("alice@example.com", "bob@example.com")
    assert contact.owner == handoff.owner
    assert handoff.snapshot["contact"]["email"] == email
    assert handoff.actions[0]["action"] == "opened" and handoff.actions[0]["reason"] == cause
    assert len(world.events_of(email, "handoff.created")) == 1
    sent = {(n.kind, n.topic, n.target) for n in world.notifications_about(email)}
    assert ("webhook", "handoff.created", CRM) in sent
    assert ("email", "handoff.created", handoff.owner) in sent
    assert ("webhook", "stage.changed", STAGES_HOOK) in sent
    assert world.running(email) == []


def test_a_score_crossing_the_threshold_hands_over(world: World) -> None:
    world.import_file("c.csv", "email,stage\nanne@example.com,lead\n")
    world.run()
    world.signal("demo.requested")
    world.signal("demo.requested")
    assert_handed_to_sales(world, "anne@example.com", "score")
    assert world.exits("anne@example.com")["lead-nurture"] == "prospect"


def test_a_new_contact_imported_straight_into_the_handoff_stage_is_handed_over(
    world: World,
) -> None:
    world.import_file("c.csv", "email,first_name,stage\nanne@example.com,Anne,sql\n")
    assert world.history("anne@example.com") == [(None, "sql", "import")]
    assert_handed_to_sales(world, "anne@example.com", "import")


def test_an_existing_lead_moved_by_a_json_lines_import_is_handed_over(world: World) -> None:
    world.import_file("a.jsonl", '{"email": "anne@example.com", "stage": "lead"}\n')
    world.run()
    assert world.running("anne@example.com") == ["lead-nurture"]
    world.import_file("b.jsonl", '{"email": "anne@example.com", "stage": "sql"}\n')
    assert world.history("anne@example.com") == [
        (None, "lead", "import"),
        ("lead", "sql", "import"),
    ]
    assert_handed_to_sales(world, "anne@example.com", "import")
    assert world.exits("anne@example.com")["lead-nurture"] == "prospect"


def test_an_existing_lead_moved_by_the_api_is_handed_over(world: World) -> None:
    settings = Settings(_env_file=None, api_keys=API_KEY, secret_key="k" * 32)
    client = TestClient(create_app(world.engine, settings))
    auth = {"Authorization": f"Bearer {API_KEY}"}
    answer = client.post(
        "/v1/contacts", json={"email": "anne@example.com", "stage": "lead"}, headers=auth
    )
    assert answer.status_code == 200, answer.text
    world.run()
    answer = client.post(
        "/v1/contacts", json={"email": "anne@example.com", "stage": "sql"}, headers=auth
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["items"][0]["status"] == "updated"
    assert_handed_to_sales(world, "anne@example.com", "import")


def test_an_import_moving_down_and_up_enrolls_in_the_new_stages_workflows(world: World) -> None:
    world.import_file("a.csv", "email,stage\nanne@example.com,mql\n")
    assert world.running("anne@example.com") == ["mql-push"]
    [changed] = world.events_of("anne@example.com", "stage.changed")
    assert (changed.properties["from"], changed.properties["to"]) == (None, "mql")
    world.import_file("b.csv", "email,stage\nanne@example.com,lead\n")
    assert sorted(world.running("anne@example.com")) == ["lead-nurture", "mql-push"]
    assert world.handoffs("anne@example.com") == []


def test_a_sales_rejection_moves_back_through_the_same_path(world: World) -> None:
    world.import_file("c.csv", "email,stage\nanne@example.com,sql\n")
    [handoff] = world.handoffs("anne@example.com")
    with world.sessions.begin() as session:
        world.engine.handoffs.reject(
            session, handoff.id, "alice@example.com", "too early", clock.now()
        )
    assert world.history("anne@example.com")[-1] == ("sql", "lead", "handoff.rejected")
    changed = world.events_of("anne@example.com", "stage.changed")[-1]
    assert (changed.properties["to"], changed.properties["cause"]) == ("lead", "handoff.rejected")
    hooks = [
        n
        for n in world.notifications_about("anne@example.com")
        if n.topic == "stage.changed" and n.payload["to"] == "lead"
    ]
    assert len(hooks) == 1
    assert world.running("anne@example.com") == ["lead-nurture"]


def test_the_same_move_twice_changes_nothing_the_second_time(world: World) -> None:
    world.import_file("a.csv", "email,stage\nanne@example.com,sql\n")
    world.import_file("b.csv", "email,stage\nanne@example.com,sql\n")
    assert world.history("anne@example.com") == [(None, "sql", "import")]
    assert len(world.handoffs("anne@example.com")) == 1
    assert len(world.events_of("anne@example.com", "stage.changed")) == 1

"""Bulk ingest: one batch, many contacts, on SQLite and on PostgreSQL, with the same outcome.

Ingest writes a batch set-based (contacts, events, ledger, system events and
handoffs each in one statement) and PostgreSQL gets its own statements for
that; these tests hold both paths to the behaviours a batch must keep, and to
each other: the same events give the same database on either.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
from nurture.contacts.standing import ScoreState
from nurture.definitions.loader import load_project
from nurture.engine.service import Engine
from nurture.lifecycle.importer import import_contacts
from nurture.lifecycle.incoming import parse_event
from nurture.lifecycle.ingest import Outcome
from nurture.lifecycle.score_rules import LedgerLine, replay
from nurture.store import db
from nurture.store.models import Contact, ScoreEntry
from nurture.testing import write_project

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

CONFIG = """\
stages: [subscriber, lead, mql, sql, opportunity]
prospect_stage: sql
properties: {industry: string}
scoring:
  rules:
    - {event: email.opened, points: 5, max_per_day: 1}
    - {event: page.visited, when: "'/pricing' in (event.url or '')", points: 15}
    - {event: content.downloaded, points: 25}
    - {event: demo.requested, points: 40}
  fit:
    - {when: "contact.industry == 'btp'", points: 10}
  decay: {half_life: 30d}
  thresholds: {lead: 20, mql: 70, sql: 100}
handoff:
  at: sql
  assign: {round_robin: [alice@example.com, bob@example.com]}
  notify:
    - webhook: https://crm.example.com/hooks/nurture
    - email: owner
  sla: {accept_within: 24h}
webhooks:
  - url: https://crm.example.com/hooks/events
    events: [stage.changed, handoff.created]
sending:
  from: "Équipe <bonjour@example.com>"
"""
WORKFLOWS = {
    "letters": "name: letters\nenroll: {stage: subscriber}\nsteps:\n  - wait: 30d\n",
    "lead": "name: lead\nenroll: {stage: lead}\nsteps:\n  - wait: 30d\n",
    "mql": "name: mql\nenroll: {stage: mql}\nsteps:\n  - wait: 30d\n",
    "after-handoff": "name: after-handoff\nenroll: {event: handoff.created}\n"
    "steps:\n  - wait: 30d\n",
    "hot": 'name: hot\nenroll: {when: "contact.score >= 60"}\nsteps:\n  - wait: 30d\n',
}
CONTACTS = (
    "email,first_name,company,stage,industry\n"
    "anne@example.com,Anne,Atelier,lead,btp\n"
    "bob@example.com,Bob,Batipro,lead,\n"
    "carl@example.com,Carl,Cimenta,subscriber,\n"
    "dora@example.com,Dora,Dalles,mql,\n"
    "eve@example.com,Eve,Enduits,subscriber,\n"
)


def event(n: int, kind: str, who: str | int, minutes: int, **properties: Any) -> dict[str, Any]:
    return {
        "id": f"e{n}",
        "type": kind,
        "at": (START - timedelta(minutes=minutes)).isoformat(),
        "contact": {"id": who} if isinstance(who, int) else {"email": who},
        "properties": properties,
    }


def batch() -> list[dict[str, Any]]:
    """Two contacts reach sql in the same batch, one climbs two stages, bad and repeated
    events sit next to good ones, a form creates a contact, email feedback stops two."""
    return [
        event(1, "content.downloaded", "anne@example.com", 50, title="Guide"),
        event(2, "demo.requested", "anne@example.com", 40),
        event(3, "demo.requested", "anne@example.com", 30),
        event(4, "email.opened", "bob@example.com", 50),
        event(5, "email.opened", "bob@example.com", 45),  # capped: once a day
        event(6, "demo.requested", "bob@example.com", 40),
        event(7, "demo.requested", "bob@example.com", 35),
        event(8, "content.downloaded", "bob@example.com", 30),
        event(9, "email.opened", "nobody@example.com", 30),  # refused: unknown address
        event(10, "page.visited", "carl@example.com", 30, url="https://x.example/pricing"),
        event(11, "page.visited", "carl@example.com", 29, url="https://x.example/blog"),
        event(10, "page.visited", "carl@example.com", 28, url="https://x.example/pricing"),
        event(12, "demo.requested", "dora@example.com", 20),
        event(13, "form.submitted", "new@example.com", 10, form_id="f1"),  # a new contact
        event(14, "email.opened", 999_999, 10),  # refused: unknown id
        event(15, "email.unsubscribed", "eve@example.com", 5),
        event(16, "email.bounced", "carl@example.com", 4, bounce="hard"),
        event(17, "form.submitted", "dora@example.com", 3, form_id="f2", consent="granted"),
    ]


class World:
    def __init__(self, root: Path, url: str) -> None:
        db.upgrade(url)
        self.db = db.create_engine_for(url)
        self.sessions: sessionmaker[Session] = db.session_factory(self.db)
        self.engine = Engine(load_project(root), self.sessions)
        self.ingestor = self.engine.lifecycle.ingestor
        config = self.engine.project.config
        (root / "contacts.csv").write_text(CONTACTS)
        import_contacts(
            self.sessions,
            root / "contacts.csv",
            stages=config.stages,
            properties=config.properties,
            on_batch=self.engine.on_import,
        )

    def ingest(self, events: list[dict[str, Any]]) -> list[Outcome]:
        with self.sessions.begin() as session:
            parsed = [parse_event(data, now=clock.now()) for data in events]
            return self.ingestor.ingest_batch(session, parsed, "test")

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        with self.db.connect() as connection:
            return [tuple(row) for row in connection.execute(text(query))]

    def contact(self, email: str) -> Contact:
        with self.sessions() as session:
            return session.scalars(select(Contact).where(Contact.email == email)).one()


def world_on(tmp_path: Path, url: str) -> Iterator[World]:
    root = write_project(
        tmp_path / "project", CONFIG, WORKFLOWS, example_templates=("_layouts", "sales")
    )
    with clock.using(clock.VirtualClock(START)):
        world = World(root, url)
        try:
            yield world
        finally:
            world.db.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    url_fixture = "migrated_sqlite_url" if request.param == "sqlite" else "postgres_url"
    yield from world_on(tmp_path, request.getfixturevalue(url_fixture))


def test_a_batch_keeps_every_behaviour(world: World) -> None:
    # The import that set the world up moved its five contacts onto their stages.
    imported = world.rows("SELECT id FROM notifications WHERE topic = 'stage.changed'")
    assert len(imported) == 5
    [(last_event,)] = world.rows("SELECT max(id) FROM events")
    outcomes = world.ingest(batch())
    statuses = [(o.status, o.reason) for o in outcomes]
    assert statuses[8] == (
        "rejected",
        "no contact with email 'nobody@example.com' (email events never create one)",
    )
    assert statuses[11] == ("duplicate", "the same id appears earlier in this batch")
    assert statuses[14] == ("rejected", "no contact with id 999999")
    assert sum(s == "recorded" for s, _ in statuses) == 15

    anne, bob = world.contact("anne@example.com"), world.contact("bob@example.com")
    assert (anne.stage, bob.stage) == ("sql", "sql")
    assert {anne.owner, bob.owner} == {"alice@example.com", "bob@example.com"}  # round robin
    carl = world.contact("carl@example.com")
    assert (carl.stage, carl.score) == ("subscriber", 15)  # pricing +15, the blog nothing
    assert world.contact("dora@example.com").stage == "mql"  # 40 points: not enough
    new = world.contact("new@example.com")
    assert (new.stage, new.source) == ("subscriber", "test:e13")
    eve = world.contact("eve@example.com")
    assert carl.suppression_reason == "bounced" and eve.consent_status == "withdrawn"
    dora = world.contact("dora@example.com")
    assert (dora.consent_status, dora.consent_source) == ("granted", "form:f2")
    assert dora.consent_proof is not None and dora.consent_proof["source"] == "event:e17"
    assert anne.updated_at == START

    # the ledger explains each stored score, and the cap held
    with world.sessions() as session:
        for contact in (anne, bob, world.contact("carl@example.com")):
            lines = session.scalars(
                select(ScoreEntry).where(ScoreEntry.contact_id == contact.id)
            ).all()
            state = replay([LedgerLine(e.kind, e.points, e.at) for e in lines], timedelta(days=30))
            stored = ScoreState(
                contact.fit_score, contact.engagement_score, contact.score_updated_at
            )
            assert state.total_at(START, timedelta(days=30)) == pytest.approx(
                stored.total_at(START, timedelta(days=30)), abs=0.01
            )
        opened = session.scalars(
            select(ScoreEntry).where(
                ScoreEntry.contact_id == bob.id, ScoreEntry.rule == "rule:0:email.opened"
            )
        ).all()
        assert len(opened) == 1

    # the stage history: anne lead → mql → sql in one climb (thresholds skip stages)
    history = world.rows(
        f"SELECT from_stage, to_stage, cause FROM stage_history WHERE contact_id = {anne.id}"
        " ORDER BY id"
    )
    assert history[-1] == ("lead", "sql", "score")
    # prospects: every running enrollment ended in the same transaction, handoff opened
    running = world.rows(
        "SELECT workflow, status, exit_reason FROM enrollments"
        f" WHERE contact_id = {anne.id} ORDER BY id"
    )
    assert ("lead", "exited", "prospect") in running
    # an unsubscribe, a hard bounce: all nurture stops at once
    for contact, reason in ((eve, "unsubscribed"), (carl, "suppressed:bounced")):
        assert world.rows(
            f"SELECT workflow, status, exit_reason FROM enrollments WHERE contact_id = {contact.id}"
        ) == [("letters", "exited", reason)]
    handoffs = world.rows("SELECT contact_id, owner, status FROM handoffs ORDER BY id")
    assert [(c, s) for c, _, s in handoffs] == [(anne.id, "open"), (bob.id, "open")]
    notifications = world.rows(
        "SELECT topic, kind, target FROM notifications"
        f" WHERE id > {max(i for (i,) in imported)} ORDER BY id"
    )
    assert sum(t == "handoff.created" for t, _, _ in notifications) == 6  # 2 × (hook, email, CRM)
    assert sum(t == "stage.changed" for t, _, _ in notifications) == 3  # anne, bob, new
    system = world.rows(
        f"SELECT type FROM events WHERE source = 'nurture' AND id > {last_event} ORDER BY id"
    )
    assert sorted(system) == sorted([("handoff.created",)] * 2 + [("stage.changed",)] * 3)
    # system events start workflows: handoff.created → after-handoff; the score → hot
    workflows = {w for (w,) in world.rows("SELECT workflow FROM enrollments")}
    assert {"after-handoff", "hot", "mql"} <= workflows


def test_the_same_batch_twice_counts_once(world: World) -> None:
    world.ingest(batch())
    before = world.rows("SELECT count(*) FROM score_ledger")
    scores = world.rows("SELECT email, score, stage FROM contacts ORDER BY id")
    again = world.ingest(batch())
    assert {o.status for o in again} == {"duplicate", "rejected"}
    assert world.rows("SELECT count(*) FROM score_ledger") == before
    assert world.rows("SELECT email, score, stage FROM contacts ORDER BY id") == scores
    assert world.rows("SELECT count(*) FROM handoffs") == [(2,)]


DUMPED = {
    "contacts": "SELECT email, stage, score, fit_score, engagement_score, owner,"
    " consent_status, consent_source, suppression_reason, soft_bounces"
    " FROM contacts ORDER BY email",
    "ledger": "SELECT ledger_key, rule, kind, points, score_after FROM score_ledger"
    " ORDER BY ledger_key",
    "history": "SELECT from_stage, to_stage, cause FROM stage_history ORDER BY id",
    "enrollments": "SELECT contact_id, workflow, status, exit_reason FROM enrollments"
    " ORDER BY contact_id, workflow, id",
    "handoffs": "SELECT contact_id, owner, status FROM handoffs ORDER BY id",
    "notifications": "SELECT dedupe_key, kind, topic, target, template FROM notifications"
    " ORDER BY dedupe_key",
    "events": "SELECT event_id, type, contact_id, source FROM events ORDER BY event_id",
}


def dump(world: World) -> dict[str, list[tuple[Any, ...]]]:
    found = {key: world.rows(query) for key, query in DUMPED.items()}
    # a fit change's key ends with a random part
    found["ledger"] = sorted(
        (key.rsplit(":", 1)[0] if key.startswith("fit:") else key, *rest)
        for key, *rest in found["ledger"]
    )
    with world.sessions() as session:
        found["snapshots"] = [
            (h[0],)
            for h in session.execute(text("SELECT snapshot FROM handoffs ORDER BY id")).all()
        ]
    return found


@pytest.mark.postgres
def test_postgresql_and_sqlite_agree(
    tmp_path: Path, migrated_sqlite_url: str, postgres_url: str
) -> None:
    dumps = []
    for name, url in (("sqlite", migrated_sqlite_url), ("postgres", postgres_url)):
        for world in world_on(tmp_path / name, url):
            world.ingest(batch())
            world.ingest(batch()[::-1])  # all duplicates or refused
            virtual = clock.get_clock()
            assert isinstance(virtual, clock.VirtualClock)
            virtual.advance_to(START + timedelta(hours=1))
            world.ingest(
                [event(100 + n, "demo.requested", "dora@example.com", 1) for n in range(2)]
            )
            dumps.append(dump(world))
    sqlite_dump, postgres_dump = dumps
    for key in DUMPED:
        assert sqlite_dump[key] == postgres_dump[key], key
    assert _json(sqlite_dump["snapshots"]) == _json(postgres_dump["snapshots"])


def _json(rows: list[tuple[Any, ...]]) -> list[Any]:
    import json

    return [json.loads(value) if isinstance(value, str) else value for (value,) in rows]

"""Scoring and lifecycle: the articles' figures, caps, decay, fit, thresholds, exits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
from nurture.contacts.standing import ScoreState, decay_factor
from nurture.definitions.ladder import stage_for_score, temperature
from nurture.definitions.loader import load_project
from nurture.engine.service import Engine, EngineOptions
from nurture.lifecycle.incoming import IncomingEvent, InvalidEvent, parse_event
from nurture.lifecycle.score_rules import LedgerLine, replay
from nurture.store.models import Contact, Enrollment, ScoreEntry, Send, StageHistory
from nurture.testing import Harness, write_project
from nurture.tokens import Signer

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
STAGES = ("subscriber", "lead", "mql", "sql", "customer")

CONFIG = """\
stages: [subscriber, lead, mql, sql, customer]
prospect_stage: sql
properties: {budget_confirmed: boolean, company_size: number}
scoring:
  rules:
    - {event: email.opened, points: 5, max_per_day: 1}
    - {event: page.visited, when: "'/pricing' in (event.url or '')", points: 15}
    - {event: content.downloaded, points: 25}
    - {event: demo.requested, points: 40}
    - {event: webinar.registered, points: 20, max_total: 1}
    - {event: email.unsubscribed, points: -50}
  fit:
    - {when: "contact.budget_confirmed", points: 10}
  decay: {half_life: 30d}
  thresholds: {lead: 20, mql: 70, sql: 100}
"""
WORKFLOW = """\
name: lead-nurture
enroll: {stage: lead}
steps:
  - send: lead/one
  - wait: 1d
  - send: lead/two
  - wait: 3d
  - send: lead/three
"""
MQL = """\
name: mql-push
enroll: {stage: mql}
steps:
  - send: lead/one
"""
TEMPLATE = '---\nsubject: "{name}"\n---\n<mjml><mj-body><mj-section><mj-column><mj-text>Bonjour</mj-text></mj-column></mj-section></mj-body></mjml>\n'


# --- pure rules ------------------------------------------------------------------------


def test_decay_halves_engagement_every_half_life() -> None:
    state = ScoreState(fit=10, engagement=80, updated_at=START)
    assert state.total_at(START + timedelta(days=30), timedelta(days=30)) == 50
    assert state.total_at(START + timedelta(days=60), timedelta(days=30)) == 30
    assert state.total_at(START + timedelta(days=60), None) == 90
    assert decay_factor(timedelta(days=-1), timedelta(days=30)) == 1.0


def test_thresholds_only_move_a_contact_up() -> None:
    thresholds = (("lead", 20.0), ("mql", 70.0), ("sql", 100.0))
    assert stage_for_score(25, "subscriber", thresholds, STAGES) == "lead"
    assert stage_for_score(105, "lead", thresholds, STAGES) == "sql"  # skips mql
    assert stage_for_score(10, "mql", thresholds, STAGES) is None  # never down
    assert stage_for_score(75, "customer", thresholds, STAGES) is None


def test_temperature_from_score_and_recency() -> None:
    thresholds = (("lead", 20.0), ("mql", 70.0), ("sql", 100.0))

    def warmth(score: float, days_ago: float | None) -> str:
        engaged = START - timedelta(days=days_ago) if days_ago is not None else None
        return temperature(score, engaged, START, thresholds, STAGES, "sql")

    assert warmth(80, 3) == "hot"
    assert warmth(80, 40) == "warm"
    assert warmth(40, 10) == "warm"
    assert warmth(40, 60) == "cold"
    assert warmth(5, 1) == "cold"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 90 * 24),
            st.sampled_from(["engagement", "fit", "manual"]),
            st.integers(-50, 60),
        ),
        max_size=25,
    )
)
def test_replaying_the_ledger_gives_the_incremental_score(
    lines: list[tuple[int, str, int]],
) -> None:
    half_life = timedelta(days=30)
    ordered = sorted(lines)
    state = ScoreState()
    for hours, kind, points in ordered:
        at = START + timedelta(hours=hours)
        engagement = state.engagement_at(at, half_life)
        state = (
            ScoreState(state.fit + points, engagement, at)
            if kind == "fit"
            else ScoreState(state.fit, engagement + points, at)
        )
    rebuilt = replay([LedgerLine(k, p, START + timedelta(hours=h)) for h, k, p in lines], half_life)
    assert rebuilt.total_at(START + timedelta(days=120), half_life) == pytest.approx(
        state.total_at(START + timedelta(days=120), half_life), abs=1e-6
    )


# --- the loop on SQLite --------------------------------------------------------------------


class World(Harness):
    """The scoring project under the shared harness: events by kind, ticks until idle."""


@pytest.fixture
def world(tmp_path: Path, sessions: sessionmaker[Session]) -> Iterator[World]:
    root = write_project(
        tmp_path / "project",
        CONFIG,
        {"lead-nurture": WORKFLOW, "mql-push": MQL},
        {f"lead/{name}": TEMPLATE.format(name=name) for name in ("one", "two", "three")},
    )
    w = World(load_project(root), sessions, EngineOptions(), START)
    with clock.using(w.clock):
        w.import_csv("email,stage\nanne@example.com,lead\n")
        w.run()
        yield w


def test_the_articles_scenario_reaches_sales_and_nurture_stops(world: World) -> None:
    assert world.subjects() == ["one"]
    world.signal("email.opened")  # +5
    world.signal("page.visited", url="https://example.com/pricing")  # +15
    world.signal("content.downloaded", content="livre-blanc")  # +25
    assert world.contact().stage == "lead" and world.contact().score == 45
    world.signal("page.visited", url="https://example.com/pricing")  # +15 → 60
    world.signal("webinar.registered")  # +20 → 80: MQL
    anne = world.contact()
    assert (anne.stage, anne.score) == ("mql", 80)
    world.run()  # the mql workflow's first email goes out
    world.signal("content.downloaded", content="etude-de-cas")  # +25 → 105: SQL, the prospect
    anne = world.contact()
    assert (anne.stage, anne.score) == ("sql", 105)

    with world.sessions() as session:
        history = [
            (h.from_stage, h.to_stage, h.cause)
            for h in session.scalars(
                select(StageHistory)
                .where(StageHistory.contact_id == anne.id)
                .order_by(StageHistory.id)
            )
        ]
        enrollments = session.scalars(select(Enrollment)).all()
    assert history == [(None, "lead", "import"), ("lead", "mql", "score"), ("mql", "sql", "score")]
    assert {(e.workflow, e.status, e.exit_reason) for e in enrollments} == {
        ("lead-nurture", "exited", "prospect"),
        ("mql-push", "completed", "completed"),
    }

    sent = len(world.subjects())
    world.later(timedelta(days=10))
    assert len(world.subjects()) == sent, "no nurture email after the contact became a prospect"


def test_crossing_the_threshold_mid_wait_stops_an_already_claimed_email(world: World) -> None:
    world.later(timedelta(days=1))
    with world.sessions() as session:  # the second email, claimed by a worker not yet delivered
        enrollment = session.scalars(select(Enrollment)).one()
    assert world.subjects() == ["one", "two"]
    world.clock.advance_to(world.clock.now() + timedelta(days=3))
    world.engine.advance(world.engine.claim_due(), deliver=False)
    world.signal("demo.requested")  # +40
    world.signal("content.downloaded")  # +25
    world.signal("content.downloaded")  # +25 → 90 … and a second demo request
    world.signal("demo.requested")  # → 130: sql
    assert world.contact().stage == "sql"
    world.engine.deliver()
    assert world.subjects() == ["one", "two"]
    with world.sessions() as session:
        third = session.scalars(select(Send).where(Send.template == "lead/three")).one()
    assert (third.status, third.error) == ("skipped", "prospect")
    assert enrollment.workflow == "lead-nurture"


def test_the_same_event_twice_counts_once(world: World) -> None:
    assert world.signal("content.downloaded", event_id="dl-1") == "recorded"
    assert world.signal("content.downloaded", event_id="dl-1") == "duplicate"
    assert world.contact().score == 25
    with world.sessions() as session:
        assert (
            len(session.scalars(select(ScoreEntry).where(ScoreEntry.kind == "engagement")).all())
            == 1
        )


def test_caps_per_day_and_in_total(world: World) -> None:
    world.signal("email.opened")
    world.signal("email.opened")
    assert world.contact().score == 5  # max_per_day: 1
    world.clock.advance_to(START + timedelta(days=1))
    world.signal("email.opened")
    world.signal("webinar.registered")
    world.signal("webinar.registered")  # max_total: 1
    assert world.contact().score == pytest.approx(
        5 * decay_factor(timedelta(days=1), timedelta(days=30)) + 25, abs=0.01
    )


def test_the_score_decays_and_the_ledger_explains_every_point(world: World) -> None:
    world.signal("content.downloaded")
    world.clock.advance_to(START + timedelta(days=30))
    world.signal("page.visited", url="https://example.com/pricing")
    anne = world.contact()
    assert anne.score == pytest.approx(12.5 + 15)
    with world.sessions() as session:
        ledger = session.scalars(select(ScoreEntry).order_by(ScoreEntry.at, ScoreEntry.id)).all()
    assert [(e.kind, round(e.points, 2), round(e.score_after, 2)) for e in ledger] == [
        ("engagement", 25, 25),
        ("decay", -12.5, 12.5),
        ("engagement", 15, 27.5),
    ]
    assert sum(e.points for e in ledger) == pytest.approx(anne.score)
    rebuilt = replay([LedgerLine(e.kind, e.points, e.at) for e in ledger], timedelta(days=30))
    assert rebuilt.total_at(anne.score_updated_at, timedelta(days=30)) == pytest.approx(anne.score)


def test_every_ledger_row_is_a_score_record_with_its_rule_and_event(world: World) -> None:
    """simulate's `score` records (SPEC §7) are the ledger, row for row: why a contact moved."""
    world.import_csv("email,budget_confirmed\nanne@example.com,oui\n")  # fit +10
    world.signal("content.downloaded")  # +25
    world.clock.advance_to(START + timedelta(days=30))
    world.signal("page.visited", url="https://example.com/pricing")  # decay, then +15
    with world.sessions() as session:
        ledger = session.scalars(select(ScoreEntry).order_by(ScoreEntry.at, ScoreEntry.id)).all()
    records = [r for r in world.records if r.kind == "score"]
    assert [(r.details["cause"], r.details["points"], r.details["score"]) for r in records] == [
        (e.kind, e.points, e.score_after) for e in ledger
    ]
    assert [(r.details["rule"], r.details.get("event")) for r in records] == [
        ("fit", None),
        ("rule:2:content.downloaded", "content.downloaded"),
        ("decay", None),
        ("rule:1:page.visited", "page.visited"),
    ]
    assert {r.contact for r in records} == {"anne@example.com"}
    # Each after the event that caused it.
    assert [(r.kind, r.details.get("event")) for r in world.records[-6:]] == [
        ("score", None),  # fit
        ("event", "content.downloaded"),
        ("score", "content.downloaded"),
        ("event", "page.visited"),
        ("score", None),  # the decay until the visit
        ("score", "page.visited"),
    ]


def test_fit_is_re_evaluated_when_the_profile_changes(world: World, tmp_path: Path) -> None:
    world.import_csv("email,budget_confirmed\nanne@example.com,oui\n")
    anne = world.contact()
    assert (anne.fit_score, anne.score) == (10, 10)
    world.import_csv("email,budget_confirmed\nanne@example.com,non\n")
    assert world.contact().fit_score == 0
    with world.sessions() as session:
        fits = [
            e.points for e in session.scalars(select(ScoreEntry).where(ScoreEntry.kind == "fit"))
        ]
    assert fits == [10, -10]


def test_a_bad_event_in_a_batch_is_refused_and_its_neighbours_go_in(world: World) -> None:
    good = IncomingEvent("g1", "content.downloaded", START, email="anne@example.com")
    unknown = IncomingEvent("b1", "email.opened", START, email="ghost@example.com")
    new_person = IncomingEvent(
        "n1",
        "page.visited",
        START,
        email="new@example.com",
        properties={"url": "https://example.com/pricing"},
    )
    with world.sessions.begin() as session:
        outcomes = world.ingestor.ingest_batch(session, [good, unknown, good, new_person], "api")
    assert [o.status for o in outcomes] == ["recorded", "rejected", "duplicate", "recorded"]
    assert "ghost@example.com" in (outcomes[1].reason or "")
    newcomer = world.contact("new@example.com")
    assert (newcomer.stage, newcomer.score, newcomer.source) == ("subscriber", 15, "api:n1")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"type": "page.visited", "contact": {"email": "a@example.com"}}, "'id' is required"),
        (
            {"id": "x", "type": "page.visit", "contact": {"email": "a@example.com"}},
            r"unknown event type 'page.visit' \(did you mean 'page.visited'\?\)",
        ),
        (
            {"id": "x", "type": "page.visited", "contact": {"email": "nope"}},
            "invalid contact email",
        ),
        ({"id": "x", "type": "page.visited", "contact": {}}, "'contact' must be"),
        ({"id": "x", "type": "email.bounced", "contact": {"id": 1}}, "properties.bounce"),
        (
            {"id": "x", "type": "page.visited", "at": "2026-11-23T09:00:00", "contact": {"id": 1}},
            "needs a timezone",
        ),
        (
            {"id": "x", "type": "page.visited", "at": "+3d", "contact": {"id": 1}},
            "relative times are for 'nurture simulate'",
        ),
        ({"id": "x", "type": "page.visited", "contact": {"id": 1}, "extra": 1}, "unknown field"),
    ],
)
def test_malformed_events_are_refused_with_a_reason(data: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        parse_event(data, now=START)


def test_an_unsubscribe_stops_everything_at_once(world: World) -> None:
    world.signal("email.unsubscribed")
    with world.sessions() as session:
        enrollment = session.scalars(select(Enrollment)).one()
    assert (enrollment.status, enrollment.exit_reason) == ("exited", "unsubscribed")
    world.later(timedelta(days=5))
    assert world.subjects() == ["one"]


def test_a_when_workflow_enrolls_once_the_score_or_profile_makes_it_true(
    world: World, tmp_path: Path
) -> None:
    root = world.engine.project.root
    (root / "workflows" / "hot.yaml").write_text(
        'name: hot\nenroll: {when: "contact.score >= 30 or contact.budget_confirmed"}\n'
        "steps:\n  - send: lead/one\n"
    )
    world.engine = Engine(load_project(root), world.sessions, world.transport, Signer("k" * 32))
    world.ingestor = world.engine.lifecycle.ingestor

    def hot_enrollments() -> int:
        with world.sessions() as session:
            return len(
                session.scalars(select(Enrollment).where(Enrollment.workflow == "hot")).all()
            )

    world.signal("content.downloaded")  # 25: not yet
    assert hot_enrollments() == 0
    world.signal("page.visited", url="https://example.com/pricing")  # 40
    assert hot_enrollments() == 1
    world.import_csv("email,stage,budget_confirmed\nbob@example.com,subscriber,\n")
    world.import_csv("email,budget_confirmed\nbob@example.com,oui\n")  # profile change
    with world.sessions() as session:
        bob = session.scalars(select(Contact).where(Contact.email == "bob@example.com")).one()
        assert session.scalars(
            select(Enrollment.workflow).where(Enrollment.contact_id == bob.id)
        ).all() == ["hot"]

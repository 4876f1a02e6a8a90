"""Segments on the real engine, SQLite and PostgreSQL: membership kept current as events
arrive, contacts change and windows pass; workflows enrolling on, waiting for and
branching on a segment; machines' clicks not counting; the upkeep's cost per batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select

import nurture.clock as clock
from nurture.definitions.loader import load_project
from nurture.engine.scheduler import Scheduler
from nurture.events import EventType
from nurture.lifecycle.incoming import IncomingEvent
from nurture.lifecycle.traffic import Hit
from nurture.store.db import create_engine_for, session_factory, upgrade
from nurture.store.models import Enrollment, Event, SegmentMember, Send
from nurture.testing import Harness, write_project
from nurture.tools.privacy import erase_person
from nurture.tools.segments import refresh, segment_sizes, segments_of_contact

CONFIG = """\
stages: [subscriber, lead, mql, sql]
prospect_stage: sql
sending:
  from: "Équipe Exemple <bonjour@example.com>"
segments:
  pricing-hunters:
    when: "contact.stage == 'lead'"
    events: {type: page.visited, match: "'/pricing' in event.url", count: ">= 3", within: 7d}
  clickers:
    events: {type: email.clicked, count: 2, within: 7d}
"""
WORKFLOWS = {
    "pricing-offer": """\
name: pricing-offer
enroll: {segment: pricing-hunters}
steps:
  - send: lead/offer
""",
    "lead-nurture": """\
name: lead-nurture
enroll: {stage: lead}
steps:
  - send: lead/welcome
  - wait_for: {segment: pricing-hunters, timeout: 5d}
    on_event: check
    on_timeout: cold
  - id: check
    branch:
      - when: "in_segment('pricing-hunters')"
        goto: hot
  - id: cold
    send: lead/cold
  - exit
  - id: hot
    send: lead/hot
""",
}
BODY = """\
---
subject: "{subject}"
---
<mjml><mj-body><mj-section><mj-column>
<mj-text>Bonjour <a href="{{{{ unsubscribe_url }}}}">Se désabonner</a></mj-text>
</mj-column></mj-section></mj-body></mjml>
"""
TEMPLATES = {
    f"lead/{name}": BODY.format(subject=subject)
    for name, subject in (
        ("welcome", "Bienvenue"),
        ("offer", "Nos tarifs"),
        ("hot", "Parlons-en"),
        ("cold", "Un guide"),
    )
}
PRICING = "https://example.com/pricing"


#: The project before it had segments.
PLAIN_CONFIG = CONFIG.split("segments:")[0]
PLAIN_WORKFLOWS = {
    "welcome": "name: welcome\nenroll: {stage: lead}\nsteps:\n  - send: lead/welcome\n"
}


def _project(root: Path, config: str = CONFIG) -> Path:
    workflows = WORKFLOWS if config == CONFIG else PLAIN_WORKFLOWS
    return write_project(root, config, workflows, TEMPLATES)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest) -> str:
    value: str = request.getfixturevalue(
        "migrated_sqlite_url" if request.param == "sqlite" else "postgres_url"
    )
    if request.param == "postgres":
        upgrade(value)
    return value


@pytest.fixture
def db(url: str) -> Iterator[Engine]:
    engine = create_engine_for(url)
    yield engine
    engine.dispose()


@pytest.fixture
def world(db: Engine, tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(load_project(_project(tmp_path / "project")), session_factory(db))
    with clock.using(harness.clock):
        harness.import_csv("email,stage\nanne@example.com,lead\nbob@example.com,lead\n")
        harness.run()
        yield harness


def _standing(world: Harness, email: str, segment: str) -> SegmentMember | None:
    contact = world.contact(email)
    with world.sessions() as session:
        return session.scalar(
            select(SegmentMember).where(
                SegmentMember.contact_id == contact.id, SegmentMember.segment == segment
            )
        )


def _segment_events(world: Harness, email: str) -> list[tuple[str, str]]:
    contact = world.contact(email)
    with world.sessions() as session:
        rows = session.scalars(
            select(Event)
            .where(Event.contact_id == contact.id, Event.type.like("segment.%"))
            .order_by(Event.id)
        )
        return [(e.type, e.properties["segment"]) for e in rows]


def _visit(world: Harness, email: str, url: str = PRICING) -> None:
    assert world.signal(EventType.PAGE_VISITED, email, url=url) == "recorded"


def test_the_third_pricing_visit_in_seven_days_enters_enrolls_and_ends_the_wait(
    world: Harness,
) -> None:
    first = clock.now()
    _visit(world, "anne@example.com")
    world.later(timedelta(days=2))
    _visit(world, "anne@example.com")
    _visit(world, "anne@example.com", "https://example.com/blog")  # not a pricing page
    assert _standing(world, "anne@example.com", "pricing-hunters") is None
    world.later(timedelta(days=2))
    _visit(world, "anne@example.com")  # the third pricing visit, four days after the first

    standing = _standing(world, "anne@example.com", "pricing-hunters")
    assert standing is not None and standing.member and standing.entered_at == clock.now()
    # the first visit leaves the window in three days: that is when it is looked at again
    assert standing.recheck_at == first + timedelta(days=7)
    assert _segment_events(world, "anne@example.com") == [
        (EventType.SEGMENT_ENTERED, "pricing-hunters")
    ]
    [entry] = [r for r in world.records if r.kind == "segment"]
    assert entry.details["entered"] == "pricing-hunters"
    assert "3 page.visited" in entry.details["why"]

    world.tick()  # one tick: the enrollment on entry and the woken wait_for both run
    subjects = world.subjects("anne@example.com")
    assert subjects[0] == "Bienvenue" and sorted(subjects[1:]) == ["Nos tarifs", "Parlons-en"]
    assert world.subjects("bob@example.com") == ["Bienvenue"]

    # the window passes: the first visit no longer counts, two are left
    world.at(first + timedelta(days=7) - timedelta(seconds=1))
    world.run()
    assert _standing(world, "anne@example.com", "pricing-hunters").member  # type: ignore[union-attr]
    world.later(timedelta(seconds=1))
    left = _standing(world, "anne@example.com", "pricing-hunters")
    assert left is not None and not left.member and left.left_at == clock.now()
    assert _segment_events(world, "anne@example.com")[-1] == (
        EventType.SEGMENT_EXITED,
        "pricing-hunters",
    )
    assert left.recheck_at is None  # nothing more can happen by time alone


def test_without_an_entry_the_wait_times_out(world: Harness) -> None:
    _visit(world, "bob@example.com")
    _visit(world, "bob@example.com")
    world.later(timedelta(days=5))
    assert world.subjects("bob@example.com") == ["Bienvenue", "Un guide"]
    with world.sessions() as session:
        assert not session.scalars(
            select(Enrollment).where(Enrollment.workflow == "pricing-offer")
        ).all()


def test_a_contact_who_changes_stage_leaves_and_explain_says_why(world: Harness) -> None:
    for _ in range(3):
        _visit(world, "anne@example.com")
    with world.sessions() as session:
        [explained] = [
            s
            for s in segments_of_contact(
                session, world.engine.project.config, world.contact(), clock.now()
            )
            if s["segment"] == "pricing-hunters"
        ]
    assert explained["member"] and len(explained["events"]) == 3
    assert explained["why"] == (
        "contact.stage == 'lead' holds; 3 page.visited within 1w (needs >= 3)"
    )

    with world.sessions.begin() as session:
        contact = session.merge(world.contact())
        world.engine.lifecycle.stages.move(session, contact, "mql", "manual", clock.now())
    assert not _standing(world, "anne@example.com", "pricing-hunters").member  # type: ignore[union-attr]
    with world.sessions() as session:
        sizes = {
            row["segment"]: row["size"]
            for row in segment_sizes(session, world.engine.project.config)
        }
    assert sizes == {"pricing-hunters": 0, "clickers": 0}


def _click(world: Harness, n: int, agent: str) -> None:
    """A click on a link of the welcome email, as its tracking link reports it (each on
    its own link: the same link again is a repeat, not a new signal)."""
    with world.sessions() as session:
        send_id = session.scalar(
            select(Send.id).where(
                Send.template == "lead/welcome", Send.contact_id == world.contact().id
            )
        )
    incoming = IncomingEvent(
        id=f"click-{n}",
        type=EventType.EMAIL_CLICKED,
        at=clock.now(),
        email="anne@example.com",
        properties={"url": f"https://example.com/guide/{n}", "send_id": send_id},
        hit=Hit(user_agent=agent),
    )
    with world.sessions.begin() as session:
        world.ingestor.ingest_one(session, incoming, "tracking")


def test_a_machines_clicks_do_not_make_a_member(world: Harness) -> None:
    world.later(timedelta(hours=1))  # long after delivery: not a scanner's by its timing
    _click(world, 1, "curl/8.4.0")
    _click(world, 2, "python-requests/2.31")
    assert _standing(world, "anne@example.com", "clickers") is None
    browser = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Safari/605.1.15"
    world.later(timedelta(minutes=5))  # not in the same second as the machine's (a burst)
    _click(world, 3, browser)
    world.later(timedelta(minutes=5))
    _click(world, 4, browser)
    standing = _standing(world, "anne@example.com", "clickers")
    assert standing is not None and standing.member


def test_an_erased_person_leaves_every_segment(world: Harness) -> None:
    for _ in range(3):
        _visit(world, "anne@example.com")
    with world.sessions.begin() as session:
        erase_person(session, "anne@example.com", clock.now())
    with world.sessions() as session:
        assert segment_sizes(session, world.engine.project.config)[0]["size"] == 0


def test_refresh_judges_contacts_nothing_happened_to(db: Engine, tmp_path: Path) -> None:
    """A segment added to a live project: the one full pass puts existing contacts in."""
    before = Harness(load_project(_project(tmp_path / "before", PLAIN_CONFIG)), session_factory(db))
    with clock.using(before.clock):
        before.import_csv("email,stage\nanne@example.com,lead\n")
        for _ in range(3):
            _visit(before, "anne@example.com")
        after = Harness(load_project(_project(tmp_path / "after")), session_factory(db))
        after.clock.advance_to(clock.now())
        upkeep = after.engine.lifecycle.segments
        assert upkeep is not None
        assert refresh(after.sessions, upkeep, clock.now()) == (1, 1)
        assert _standing(after, "anne@example.com", "pricing-hunters").member  # type: ignore[union-attr]


def _statements(db: Engine) -> list[str]:
    seen: list[str] = []

    def note(_c: Any, _cur: Any, statement: str, *_rest: Any) -> None:
        seen.append(statement)

    event.listen(db, "before_cursor_execute", note)
    return seen


def _batch(size: int) -> list[IncomingEvent]:
    return [
        IncomingEvent(
            id=f"batch-{n}",
            type=EventType.PAGE_VISITED,
            at=clock.now(),
            email=f"visitor{n % 10}@example.com",
            properties={"url": PRICING},
        )
        for n in range(size)
    ]


def test_upkeep_costs_one_read_of_each_kind_per_batch_and_nothing_without_segments(
    world: Harness, db: Engine, tmp_path: Path
) -> None:
    seen = _statements(db)
    world.ingestor.ingest(world.sessions, _batch(60), "api")
    standings = [
        s for s in seen if s.lstrip().upper().startswith("SELECT") and "segment_members" in s
    ]
    assert len(standings) == 1

    quiet = Harness(load_project(_project(tmp_path / "plain", PLAIN_CONFIG)), session_factory(db))
    assert quiet.engine.lifecycle.segments is None
    seen.clear()
    quiet.ingestor.ingest(quiet.sessions, _batch(60), "api")
    assert not [s for s in seen if "segment_members" in s]


def test_the_scheduler_tick_re_judges_only_the_rows_due(world: Harness) -> None:
    for _ in range(3):
        _visit(world, "anne@example.com")
    dispatched: list[list[int]] = []
    scheduler = Scheduler(world.engine, dispatched.append, lambda ids: None)
    world.at(clock.now() + timedelta(days=6))
    assert scheduler.tick().segments == 0  # nothing leaves a window yet
    world.at(clock.now() + timedelta(days=1))
    assert scheduler.tick().segments == 1
    assert not _standing(world, "anne@example.com", "pricing-hunters").member  # type: ignore[union-attr]

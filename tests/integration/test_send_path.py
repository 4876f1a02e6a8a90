"""The batched send path on both databases: what a worker relies on when it
writes a batch's decisions in one statement, inserts its claims already
leased, delivers without reloading, and commits each outcome while the next
email is being composed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
from nurture.definitions.loader import load_project
from nurture.store import enrollments as work
from nurture.store import outcomes
from nurture.store.db import create_engine_for, session_factory, upgrade
from nurture.store.enrollments import end_nurture
from nurture.store.models import Enrollment, Send
from nurture.store.outcomes import OutcomeNotRecorded
from nurture.testing import START, Harness
from nurture.tools.explain import explain
from nurture.transports import CaptureTransport
from nurture.transports.mime import BuiltMessage

EXTRA = """\
name: lead-extra
enroll: {stage: lead}
steps:
  - send: lead/guide
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'nurture.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def db_sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    upgrade(database_url)
    engine = create_engine_for(database_url)
    yield session_factory(engine)
    engine.dispose()


def harness_for(project: Path, sessions: sessionmaker[Session], tmp: Path, rows: str) -> Harness:
    harness = Harness(load_project(project), sessions)
    harness.import_csv("email,first_name,company,stage\n" + rows)
    return harness


def drop_connections(url: str) -> None:
    """What a PostgreSQL restart does to every client: all their connections die."""
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def test_a_contacts_enrollments_in_one_batch_see_each_other_under_a_frequency_cap(
    project_dir: Path,
    db_sessions: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    """Two workflows want to email Anne in the same batch; the cap allows one."""
    config = project_dir / "nurture.yaml"
    config.write_text(config.read_text() + "  frequency_cap: {max: 1, per: 1d}\n")
    (project_dir / "workflows" / "lead-extra.yaml").write_text(EXTRA)
    virtual = clock.VirtualClock(START)
    with clock.using(virtual):
        h = harness_for(project_dir, db_sessions, tmp_path, "anne@example.com,Anne,A,lead\n")
        ids = h.engine.claim_due()
        assert len(ids) == 2  # one batch, both enrollments
        report = h.engine.advance(ids)
        assert (report.advanced, len(report.sends)) == (2, 1)
        assert len(h.transport.messages) == 1
        virtual.advance_to(START + timedelta(days=1, minutes=1))
        h.tick()
    assert sorted(h.subjects("anne@example.com")) == ["Bienvenue pour A", "Le guide pour A"]


def test_a_stale_or_ended_enrollment_is_not_overwritten(db_sessions: sessionmaker[Session]) -> None:
    """Another worker advanced one; an event ended the other: neither write lands."""
    with db_sessions.begin() as session:
        from nurture.store.models import Contact, WorkflowVersion

        session.add(Contact(email="a@example.com", stage="lead"))
        session.add(WorkflowVersion(name="w", content_hash="h", source=""))
        session.flush()
        contact = session.scalars(select(Contact)).one()
        version = session.scalars(select(WorkflowVersion)).one()
        rows = [
            Enrollment(contact_id=contact.id, workflow="w", workflow_version_id=version.id)
            for _ in range(3)
        ]
        session.add_all(rows)
        session.flush()
        fresh, stale, ended = (row.id for row in rows)
        session.execute(
            Enrollment.__table__.update()
            .where(Enrollment.id == stale)
            .values(visit=1, step="b")  # advanced elsewhere since it was loaded
        )
        end_nurture(session, [contact.id], "prospect", clock.now())
        session.execute(
            Enrollment.__table__.update()
            .where(Enrollment.id.in_([fresh, stale]))
            .values(status="waiting", exit_reason=None, ended_at=None)
        )

    def write(enrollment_id: int) -> work.EnrollmentWrite:
        return work.EnrollmentWrite(
            id=enrollment_id,
            expected_visit=0,
            expected_step=None,
            loaded_next_run_at=None,
            step="a",
            visit=1,
            status="waiting",
            waiting_for={"since": None, "until": None, "deferred": None},
            next_run_at=START,
        )

    with db_sessions.begin() as session:
        written = work.save_enrollments(session, [write(i) for i in (fresh, stale, ended)])
    assert written == {fresh}
    with db_sessions() as session:
        states = {e.id: (e.status, e.step) for e in session.scalars(select(Enrollment))}
    assert states == {fresh: ("waiting", "a"), stale: ("waiting", "b"), ended: ("exited", None)}


def test_an_unsubscribe_between_the_claim_and_the_delivery_stops_the_email(
    project_dir: Path,
    db_sessions: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    """The advance read Anne before she unsubscribed; delivery reads her again."""
    with clock.using(clock.VirtualClock(START)):
        h = harness_for(
            project_dir,
            db_sessions,
            tmp_path,
            "anne@example.com,Anne,A,lead\nbob@example.com,Bob,B,lead\n",
        )
        deliver_claimed = h.engine.deliverer.deliver_claimed

        def unsubscribe_first(*args: object, **kwargs: object) -> None:
            h.event(
                {
                    "id": "u1",
                    "type": "email.unsubscribed",
                    "at": clock.now().isoformat(),
                    "contact": {"email": "anne@example.com"},
                }
            )
            deliver_claimed(*args, **kwargs)  # type: ignore[arg-type]

        h.engine.deliverer.deliver_claimed = unsubscribe_first  # type: ignore[method-assign]
        h.tick()
    assert [m.email.to for m in h.transport.messages] == ["bob@example.com"]
    with db_sessions() as session:
        statuses = {s.contact_id: (s.status, s.error) for s in session.scalars(select(Send))}
    assert sorted(statuses.values()) == [("sent", None), ("skipped", "unsubscribed")]


def test_no_email_leaves_once_an_outcome_could_not_be_recorded(
    project_dir: Path,
    postgres_url: str,
    tmp_path: Path,
) -> None:
    """The database connection recording outcomes dies after the first email.

    Delivery stops before the second message is handed over (it would leave
    with nothing to record it) and the worker's call fails (Dramatiq retries
    it). Once the leases expire the two unsent emails go out; the first, whose
    outcome died with the connection, goes out again: the one-message window
    no sender can close, never wider.
    """
    upgrade(postgres_url)
    bind = create_engine_for(postgres_url)
    sessions = session_factory(bind)

    class DroppingRelay(CaptureTransport):
        delivered = 0

        def _deliver(self, message: BuiltMessage, email: object) -> None:
            super()._deliver(message, email)  # type: ignore[arg-type]
            self.delivered += 1
            if self.delivered == 1:
                drop_connections(postgres_url)

    virtual = clock.VirtualClock(START)
    try:
        with clock.using(virtual):
            h = harness_for(
                project_dir,
                sessions,
                tmp_path,
                "".join(f"p{i}@example.com,P,C,lead\n" for i in range(3)),
            )
            relay = DroppingRelay()
            h.engine.transport = relay
            with pytest.raises(OutcomeNotRecorded):
                h.engine.advance(h.engine.claim_due())
            assert len(relay.messages) == 1
            relay.clear()
            h.tick()  # the leases still hold: nothing is taken over yet
            assert relay.messages == []
            virtual.advance_to(START + timedelta(minutes=6))
            h.engine.deliver()
        # The first email's outcome was lost with the connection: it is the one
        # message a crash can send twice. The other two go out exactly once.
        assert sorted(m.email.to for m in relay.messages) == [
            "p0@example.com",
            "p1@example.com",
            "p2@example.com",
        ]
        with sessions() as session:
            assert {s.status for s in session.scalars(select(Send))} == {"sent"}
    finally:
        bind.dispose()


def test_outcome_parameters_are_sent_as_postgresql_text() -> None:
    """A naive datetime is UTC (as the column type binds it), booleans are SQL's."""
    from datetime import datetime

    assert outcomes._text(datetime(2026, 1, 1, 12)) == b"2026-01-01T12:00:00+00:00"
    assert outcomes._text(True) == b"true"
    assert outcomes._text(None) is None
    assert outcomes._update_sql(("error", "status")) == (
        b"UPDATE sends SET error = $2, status = $3 WHERE id = $1"
    )


def test_an_event_during_the_advance_that_starts_its_wait_is_not_lost(
    project_dir: Path,
    db_sessions: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    """Anne clicks the guide while the worker that sent it is still saving its
    decision (wait 5 days for a click): the click must end that wait at once."""
    virtual = clock.VirtualClock(START)
    with clock.using(virtual):
        h = harness_for(project_dir, db_sessions, tmp_path, "anne@example.com,Anne,A,lead\n")
        h.clock = virtual
        h.tick()  # welcome, then wait 2d
        virtual.advance_to(START + timedelta(days=2, minutes=1))
        save_enrollments = work.save_enrollments

        def click_first(session: Session, writes: list[work.EnrollmentWrite]) -> set[int]:
            h.event(
                {
                    "id": "c1",
                    "type": "email.clicked",
                    "at": clock.now().isoformat(),
                    "contact": {"email": "anne@example.com"},
                    "properties": {"step": "guide"},
                }
            )
            return save_enrollments(session, writes)

        work.save_enrollments = click_first  # type: ignore[assignment]
        try:
            h.engine.advance(h.engine.claim_due())  # sends the guide, decides "wait 5d"
        finally:
            work.save_enrollments = save_enrollments  # type: ignore[assignment]
        h.tick()  # no time has passed: only a woken enrollment is due
    assert h.subjects("anne@example.com") == [
        "Bienvenue pour A",
        "Le guide pour A",
        "Merci pour A",
    ]


def test_connections_the_server_dropped_are_replaced_before_a_batch_uses_them(
    project_dir: Path,
    postgres_url: str,
    tmp_path: Path,
) -> None:
    """A PostgreSQL restart (here: every connection terminated) between the
    advance and its delivery: the pool hands out fresh connections, the emails
    go out and are recorded, instead of the batch failing on a dead one."""
    upgrade(postgres_url)
    bind = create_engine_for(postgres_url)
    sessions = session_factory(bind)
    try:
        with clock.using(clock.VirtualClock(START)):
            h = harness_for(
                project_dir,
                sessions,
                tmp_path,
                "".join(f"p{i}@example.com,P,C,lead\n" for i in range(3)),
            )
            h.tick()  # every pooled connection has been used once
            with sessions() as session:
                session.execute(select(Send.id)).all()
            deliver_claimed = h.engine.deliverer.deliver_claimed

            def restart_first(*args: object, **kwargs: object) -> None:
                drop_connections(postgres_url)
                deliver_claimed(*args, **kwargs)  # type: ignore[arg-type]

            h.engine.deliverer.deliver_claimed = restart_first  # type: ignore[method-assign]
            h.import_csv("email,stage\nlate@example.com,lead\n")
            h.tick()
        assert sorted(m.email.to for m in h.transport.messages) == [
            "late@example.com",
            "p0@example.com",
            "p1@example.com",
            "p2@example.com",
        ]
        with sessions() as session:
            assert {s.status for s in session.scalars(select(Send))} == {"sent"}
    finally:
        bind.dispose()


QUICK = """\
name: lead-nurture
enroll: {stage: lead}
steps:
  - send: lead/welcome
  - wait: 10m
  - send: lead/guide
"""


def test_an_email_held_up_by_retries_is_never_overtaken_by_the_next_one(
    project_dir: Path, db_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """The relay refuses the welcome email for longer than the workflow's wait."""
    (project_dir / "workflows" / "lead-nurture.yaml").write_text(QUICK)
    virtual = clock.VirtualClock(START)
    with clock.using(virtual):
        h = harness_for(project_dir, db_sessions, tmp_path, "anne@example.com,Anne,A,lead\n")
        h.transport.fail_next(5)  # 451 five times: retried after ~1, 2, 4, 8, 16 minutes
        minutes, explained = 0, ""
        while len(h.subjects("anne@example.com")) < 2 and minutes < 120:
            h.tick()
            if not explained and any(r.kind == "skip" for r in h.records):
                with db_sessions() as session:
                    data = explain(session, h.engine, "anne@example.com", clock.now())
                explained = data["enrollments"][0]["next"]
            virtual.advance_to(START + timedelta(minutes=(minutes := minutes + 1)))
        assert h.subjects("anne@example.com") == ["Bienvenue pour A", "Le guide pour A"]
        assert "the workflow's previous email is not sent yet" in explained
        assert minutes > 15  # the welcome email did wait out the retries
        held = [r for r in h.records if r.kind == "skip" and r.step == "guide"]
        assert held and {r.details["reason"] for r in held} == {"previous-email"}


def test_an_email_refused_for_good_does_not_hold_back_the_next_one(
    project_dir: Path, db_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    (project_dir / "workflows" / "lead-nurture.yaml").write_text(QUICK)
    virtual = clock.VirtualClock(START)
    with clock.using(virtual):
        h = harness_for(project_dir, db_sessions, tmp_path, "anne@example.com,Anne,A,lead\n")
        h.transport.fail_next(1, transient=False)  # 550: the welcome email fails for good
        h.tick()
        virtual.advance_to(START + timedelta(minutes=10))
        h.tick()
        assert h.subjects("anne@example.com") == ["Le guide pour A"]
        assert not [r for r in h.records if r.kind == "skip"]

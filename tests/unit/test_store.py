"""What later exactly-once logic relies on: unique keys refuse duplicates,
timestamps come back as UTC-aware datetimes, SQLite enforces foreign keys.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

import nurture.clock as clock
from nurture.definitions.model import ProjectConfig
from nurture.errors import Conflict
from nurture.store.contacts import contact_view_by_email
from nurture.store.db import create_engine_for, current_revision, database_url, head_revision
from nurture.store.models import (
    Contact,
    Enrollment,
    Event,
    ScoreEntry,
    Send,
    StageHistory,
    WorkflowVersion,
)

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def contact(session: Session) -> Contact:
    contact = Contact(email="anne@example.com")
    session.add(contact)
    session.commit()
    return contact


def _enrollment(session: Session, contact: Contact) -> Enrollment:
    version = WorkflowVersion(name="lead-nurture", content_hash="0" * 64, source="name: x")
    session.add(version)
    session.flush()
    enrollment = Enrollment(
        contact_id=contact.id, workflow="lead-nurture", workflow_version_id=version.id
    )
    session.add(enrollment)
    session.commit()
    return enrollment


def test_a_send_claim_key_is_claimed_once(session: Session, contact: Contact) -> None:
    enrollment = _enrollment(session, contact)
    key = f"{enrollment.id}:welcome:1"
    session.add(Send(claim_key=key, contact_id=contact.id, template="lead/welcome"))
    session.commit()

    session.add(Send(claim_key=key, contact_id=contact.id, template="lead/welcome"))
    with pytest.raises(Conflict):
        session.commit()
    session.rollback()

    session.add(Send(claim_key=f"{enrollment.id}:welcome:2", contact_id=contact.id, template="x"))
    session.commit()
    assert session.scalars(select(Send.claim_key).order_by(Send.id)).all() == [
        key,
        f"{enrollment.id}:welcome:2",
    ]


def test_an_event_id_is_ingested_once(session: Session, contact: Contact) -> None:
    at = datetime(2026, 11, 22, 10, tzinfo=UTC)
    session.add(Event(event_id="evt-123", type="page.visited", at=at, contact_id=contact.id))
    session.commit()

    session.add(Event(event_id="evt-123", type="page.visited", at=at, contact_id=contact.id))
    with pytest.raises(Conflict):
        session.commit()
    session.rollback()
    assert session.scalar(select(Event.event_id)) == "evt-123"


def test_a_score_ledger_key_scores_once(session: Session, contact: Contact) -> None:
    def entry() -> ScoreEntry:
        return ScoreEntry(
            contact_id=contact.id,
            ledger_key="event:evt-123:rule:0",
            event_id="evt-123",
            rule="page.visited",
            kind="engagement",
            points=15,
            score_after=15,
        )

    session.add(entry())
    session.commit()
    session.add(entry())
    with pytest.raises(Conflict):
        session.commit()


def test_one_contact_per_email(session: Session, contact: Contact) -> None:
    session.add(Contact(email=contact.email))
    with pytest.raises(Conflict):
        session.commit()


def test_one_workflow_version_per_content(session: Session) -> None:
    session.add(WorkflowVersion(name="w", content_hash="a" * 64, source="v1"))
    session.add(WorkflowVersion(name="other", content_hash="a" * 64, source="v1"))
    session.commit()
    session.add(WorkflowVersion(name="w", content_hash="a" * 64, source="v1"))
    with pytest.raises(Conflict):
        session.commit()


def test_datetimes_come_back_utc_aware_from_sqlite(engine: Engine, contact: Contact) -> None:
    paris_morning = datetime(2026, 11, 22, 9, 30, tzinfo=PARIS)  # 08:30 UTC
    with Session(engine) as session:
        stored = session.get_one(Contact, contact.id)
        stored.consent_at = paris_morning
        stored.suppressed_at = datetime(2026, 11, 22, 8, 0)  # naive: taken as UTC
        session.commit()

    with Session(engine) as session:
        loaded = session.get_one(Contact, contact.id)
        assert loaded.consent_at == paris_morning
        assert loaded.consent_at is not None and loaded.consent_at.tzinfo is UTC
        assert loaded.consent_at.hour == 8
        assert loaded.suppressed_at == datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
        assert loaded.created_at.tzinfo is UTC
        raw = session.execute(text("SELECT consent_at FROM contacts")).scalar_one()
        assert raw.startswith("2026-11-22 08:30:00")  # stored as UTC, no offset


def test_time_comparisons_in_sql_ignore_the_callers_time_zone(
    session: Session, contact: Contact
) -> None:
    """The scheduler's "due" query must not depend on which zone `now` is in."""
    due = _enrollment(session, contact)
    due.next_run_at = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
    later = _enrollment_copy(session, due, datetime(2026, 11, 22, 8, 45, tzinfo=UTC))
    session.commit()

    now_in_paris = datetime(2026, 11, 22, 9, 30, tzinfo=PARIS)  # 08:30 UTC
    found = session.scalars(
        select(Enrollment.id).where(Enrollment.next_run_at <= now_in_paris)
    ).all()

    assert found == [due.id]
    assert later.id not in found


def _enrollment_copy(session: Session, enrollment: Enrollment, next_run_at: datetime) -> Enrollment:
    copy = Enrollment(
        contact_id=enrollment.contact_id,
        workflow=enrollment.workflow,
        workflow_version_id=enrollment.workflow_version_id,
        next_run_at=next_run_at,
    )
    session.add(copy)
    session.flush()
    return copy


def test_defaults_come_from_the_one_clock(session: Session) -> None:
    moment = datetime(2030, 1, 1, 12, tzinfo=UTC)
    with clock.using(clock.VirtualClock(moment)):
        contact = Contact(email="clock@example.com")
        session.add(contact)
        session.commit()
    assert contact.created_at == moment
    assert (contact.score, contact.consent_status, contact.properties, contact.tags) == (
        0.0,
        "unknown",
        {},
        [],
    )


def test_sqlite_enforces_foreign_keys(session: Session) -> None:
    session.add(StageHistory(contact_id=12345, to_stage="lead", cause="manual"))
    with pytest.raises(Conflict):
        session.commit()


def test_deleting_a_contact_deletes_what_belongs_to_it(session: Session, contact: Contact) -> None:
    enrollment = _enrollment(session, contact)
    session.add(StageHistory(contact_id=contact.id, to_stage="lead", cause="manual"))
    session.add(
        Send(claim_key="k", enrollment_id=enrollment.id, contact_id=contact.id, template="t")
    )
    session.commit()

    session.execute(text("DELETE FROM contacts"))
    session.commit()

    for model in (Enrollment, StageHistory, Send):
        assert session.scalars(select(model)).all() == []


def test_sqlite_connections_use_wal(engine: Engine) -> None:
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert (connection.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0) > 0


def test_plain_postgresql_urls_use_psycopg_3() -> None:
    assert database_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert database_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    assert database_url("sqlite:///x.db").drivername == "sqlite"
    engine = create_engine_for("postgresql://u@127.0.0.1/db")  # does not connect
    assert engine.dialect.driver == "psycopg"


def test_revisions(sqlite_url: str, migrated_sqlite_url: str) -> None:
    assert current_revision(sqlite_url) is None
    assert current_revision(migrated_sqlite_url) == head_revision() == "0011"


def test_a_contact_as_expressions_see_it(session: Session) -> None:
    project = ProjectConfig(
        file="nurture.yaml",
        stages=("subscriber", "lead", "mql"),
        prospect_stage="mql",
        properties={"budget_confirmed": "boolean", "industry": "string"},
    )
    session.add(
        Contact(email="anne@example.com", company="ACME", properties={"industry": "banque"})
    )
    session.commit()

    view = contact_view_by_email(session, "  Anne@Example.com", project)

    assert view is not None
    assert (view.company, view.industry, view.budget_confirmed) == ("ACME", "banque", None)
    assert (view.stage, view.stage_index, view.consent) == ("subscriber", 0, "unknown")
    assert contact_view_by_email(session, "nobody@example.com", project) is None

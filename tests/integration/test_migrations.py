"""The migrations build exactly the schema the models describe, on both databases.

If someone changes a model and forgets the migration (or the reverse), the
comparison lists the difference here instead of in production.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, MetaData, String, inspect, select, text

from nurture.definitions.loader import load_project
from nurture.engine.service import Engine
from nurture.lifecycle.importer import import_contacts
from nurture.store.db import (
    create_engine_for,
    current_revision,
    downgrade,
    head_revision,
    session_factory,
    upgrade,
)
from nurture.store.models import Base, Contact, StageHistory

TABLES = {
    "contacts",
    "stage_history",
    "workflow_versions",
    "enrollments",
    "sends",
    "events",
    "score_ledger",
    "handoffs",
    "round_robin",
    "notifications",
    "suppressions",
    "site_visitors",
    "webhook_replays",
    "site_visits",
    "accounts",
    "account_sessions",
    "account_links",
    "login_throttle",
    "experiment_arms",
    "experiment_winners",
    "segment_members",
}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    value: str = request.getfixturevalue(fixture)
    return value


def _differences(url: str, metadata: MetaData = Base.metadata) -> list[Any]:
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = create_engine_for(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_head_matches_the_models(url: str) -> None:
    assert current_revision(url) is None

    upgrade(url)

    assert current_revision(url) == head_revision()
    assert _tables(url) == TABLES
    assert _differences(url) == []


def test_the_comparison_would_see_a_drift(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    drifted = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(drifted)
    drifted.tables["contacts"].append_column(Column("nickname", String()))

    differences = _differences(sqlite_url, drifted)

    assert [d[0] for d in differences] == ["add_column"]
    assert differences[0][3].name == "nickname"


def test_downgrade_to_base_and_up_again(url: str) -> None:
    upgrade(url)
    engine = create_engine_for(url)
    with session_factory(engine).begin() as session:
        session.add(Contact(email="anne@example.com"))
    engine.dispose()

    downgrade(url, "base")

    assert current_revision(url) is None
    assert _tables(url) == set()

    upgrade(url)

    assert current_revision(url) == head_revision()
    assert _differences(url) == []


def test_due_enrollments_index_is_partial(url: str) -> None:
    upgrade(url)
    engine = create_engine_for(url)
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            query = "SELECT sql FROM sqlite_master WHERE name = 'ix_enrollments_due'"
        else:
            query = "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_enrollments_due'"
        definition = connection.execute(text(query)).scalar_one()
    engine.dispose()

    assert "WHERE" in definition.upper()
    assert "next_run_at IS NOT NULL" in definition


def test_migrated_schema_round_trips_an_import(url: str, tmp_path: Path) -> None:
    """Executemany, JSON(B) and timestamps through the real driver of each database."""
    upgrade(url)
    path = tmp_path / "contacts.csv"
    path.write_text(
        "email,stage,consent,consent_at,employees,tags\n"
        "anne@example.com,lead,granted,2026-03-01T10:00:00+01:00,12,a;b\n"
        "bob@example.com,,,,,\n",
        encoding="utf-8",
    )
    engine = create_engine_for(url)
    sessions = session_factory(engine)
    root = tmp_path / "project"
    (root / "workflows").mkdir(parents=True)
    (root / "nurture.yaml").write_text(
        "stages: [subscriber, lead]\nprospect_stage: lead\nproperties: {employees: number}\n"
    )
    moves = Engine(load_project(root), sessions).on_import

    report = import_contacts(
        sessions,
        path,
        stages=["subscriber", "lead"],
        properties={"employees": "number"},
        on_batch=moves,
    )
    again = import_contacts(
        sessions,
        path,
        stages=["subscriber", "lead"],
        properties={"employees": "number"},
        on_batch=moves,
    )

    assert (report.created, report.rejected) == (2, [])
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    with sessions() as session:
        anne = session.scalars(select(Contact).where(Contact.email == "anne@example.com")).one()
        assert anne.properties == {"employees": 12}
        assert anne.tags == ["a", "b"]
        assert anne.consent_at == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
        assert anne.consent_at is not None and anne.consent_at.utcoffset() == timedelta(0)
        bob = session.scalars(select(Contact).where(Contact.email == "bob@example.com")).one()
        history = session.scalars(select(StageHistory).order_by(StageHistory.id)).all()
        assert [(h.contact_id, h.to_stage) for h in history] == [
            (anne.id, "lead"),
            (bob.id, "subscriber"),
        ]
    engine.dispose()

"""Database fixtures shared by every test layer.

- `sqlite_url`: an empty SQLite file, for tests that migrate it themselves.
- `migrated_sqlite_url`, `engine`, `sessions`, `session`: a SQLite database
  already at head. Migrating once per test run and copying the file keeps
  each test isolated without paying for alembic every time.
- `postgres_url`: a fresh, uniquely named PostgreSQL database, dropped after
  the test. Skipped when no server answers, except under CI (``CI`` set),
  where a missing server is a broken pipeline and fails loudly instead.
  ``NURTURE_TEST_POSTGRES_URL`` points at another server (an admin URL).
- `project_dir`: the engine tests' one-workflow project (`tests.engine_world`,
  with its `Harness`); the web tests' conftest has its own.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from nurture.store.db import create_engine_for, session_factory, upgrade
from tests.engine_world import project_dir  # noqa: F401 - the engine tests' project

pytest_plugins = ["tests.smtp_server"]

ADMIN_URLS = (
    "postgresql://postgres@127.0.0.1:5432/postgres",
    "postgresql://root@127.0.0.1:5432/postgres",
)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'nurture.sqlite3'}"


@pytest.fixture(scope="session")
def _migrated_sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "migrated.sqlite3"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def migrated_sqlite_url(tmp_path: Path, _migrated_sqlite_file: Path) -> str:
    path = tmp_path / "migrated.sqlite3"
    shutil.copyfile(_migrated_sqlite_file, path)
    return f"sqlite:///{path}"


@pytest.fixture
def engine(migrated_sqlite_url: str) -> Iterator[Engine]:
    engine = create_engine_for(migrated_sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sessions_on_each_database(request: pytest.FixtureRequest) -> Iterator[sessionmaker[Session]]:
    """Sessions on a migrated SQLite file, then on a migrated PostgreSQL database."""
    fixture = "migrated_sqlite_url" if request.param == "sqlite" else "postgres_url"
    url = request.getfixturevalue(fixture)
    if request.param == "postgres":
        upgrade(url)
    engine = create_engine_for(url)
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as session:
        yield session


def _admin_connection(url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(url, autocommit=True, connect_timeout=3)


@pytest.fixture(scope="session")
def _postgres_admin_url() -> str:
    override = os.environ.get("NURTURE_TEST_POSTGRES_URL")
    errors = []
    for url in (override,) if override else ADMIN_URLS:
        try:
            with _admin_connection(url):
                return url
        except psycopg.OperationalError as exc:
            errors.append(f"{url}: {str(exc).strip().splitlines()[0]}")
    reason = "PostgreSQL is not reachable (" + "; ".join(errors) + ")"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def postgres_url(_postgres_admin_url: str) -> Iterator[str]:
    name = f"nurture_test_{uuid.uuid4().hex[:12]}"
    with _admin_connection(_postgres_admin_url) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = make_url(_postgres_admin_url).set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with _admin_connection(_postgres_admin_url) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

"""Engines, sessions and migrations: how nurture talks to its database.

One `create_engine_for(url)` so the CLI, the workers, the web app and the tests
all get the same connection behaviour. On SQLite that means WAL (readers never
block the one writer), enforced foreign keys (SQLite ignores them unless asked
on every connection) and a busy timeout so concurrent processes queue for the
write lock instead of failing at once. A plain ``postgresql://`` URL is mapped
to psycopg 3, the driver nurture ships with.

Migrations are alembic's, run programmatically (`nurture db upgrade` calls
`upgrade`) from scripts shipped inside the package, so an installed nurture
needs no ``alembic.ini``; the one at the repository root is for developers
running ``alembic revision --autogenerate``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from nurture.errors import Conflict, DatabaseUnavailable, ValueRefused

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

#: How long a SQLite connection waits for another process's write lock.
SQLITE_BUSY_TIMEOUT_MS = 30_000


def database_url(url: str | URL) -> URL:
    """The URL with nurture's driver choices applied (psycopg 3 for PostgreSQL)."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def create_engine_for(url: str | URL, **kwargs: Any) -> Engine:
    """An engine for `url`, configured the way every nurture process expects."""
    parsed = database_url(url)
    # Statement parameters hold contact data (addresses, names); an error that
    # reaches a log (`log.exception`) must show the SQL, never the values.
    kwargs.setdefault("hide_parameters", True)
    # A pooled connection the server dropped (a restart, a failover, an idle
    # timeout) is replaced at checkout instead of failing the next statement:
    # one round trip per transaction, and a worker never starts a batch on it.
    kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(parsed, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "handle_error", _translate)
    return engine


def _translate(context: ExceptionContext) -> BaseException | None:
    """The database's errors, once, as nurture's own: `Conflict` for a unique key (or
    any integrity rule) another writer got to first, `DatabaseUnavailable` for a lost
    or refused connection. Callers retry or report these without knowing SQLAlchemy;
    the original stays as the cause. The pool's pre-ping is left untranslated, but a
    connection that fails its ping is replaced whatever the driver raised: psycopg
    answers a socket closed under a query with a ProgrammingError ("can't change
    'autocommit' now") that SQLAlchemy does not count as a disconnect, and the
    request then failed with a bare 500."""
    if context.is_pre_ping:
        context.is_disconnect = True
        return None
    error = context.sqlalchemy_exception
    if isinstance(error, IntegrityError):
        return Conflict(f"{_constraint(error)}: another writer stored it first")
    if isinstance(error, DataError):
        # The driver's first line only: PostgreSQL's DETAIL and CONTEXT quote the row.
        # PostgreSQL quotes the value after a colon: the kind of problem is enough.
        first = (str(getattr(error, "orig", error)).strip().splitlines() or ["?"])[0]
        reason = re.sub(r':\s*["\'].*$', "", first)[:200]
        return ValueRefused(f"the database refused a value: {reason}")
    if context.is_disconnect or isinstance(error, OperationalError | InterfaceError):
        return DatabaseUnavailable(
            f"the database is unreachable or dropped the connection ({type(error.orig).__name__})"
            if isinstance(error, DBAPIError)
            else "the database is unreachable or dropped the connection"
        )
    return None


def _constraint(error: IntegrityError) -> str:
    """The constraint's name when the driver says it (never the values: they are
    contact data), else the kind of error."""
    name = getattr(getattr(error.orig, "diag", None), "constraint_name", None)
    return f"constraint {name}" if name else "integrity rule"


def ping(sessions: sessionmaker[Session]) -> bool:
    """Whether the database answers a query now (the health check)."""
    try:
        with sessions() as session:
            session.execute(text("SELECT 1"))
    except (DatabaseUnavailable, SQLAlchemyError):
        return False
    return True


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")  # a no-op ("memory") for :memory:
        cursor.execute("PRAGMA synchronous = NORMAL")  # durable enough under WAL, much faster
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (no reload storms)."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str | URL) -> Config:
    """An alembic Config on the packaged migrations, for `url`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = database_url(url)
    config.attributes["configure_logging"] = False
    return config


@contextmanager
def migration_connection(url: str | URL) -> Iterator[Connection]:
    """A connection fit for migrating: SQLite foreign keys off while tables are rebuilt.

    Batch mode on SQLite copies a table, drops the original and renames the
    copy; with foreign keys enforced the drop would cascade or fail. The pragma
    is a no-op inside a transaction, so it is set before alembic begins one.
    """
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
                connection.commit()
            yield connection
            connection.commit()
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys = ON")
                problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if problems:
                    raise RuntimeError(f"migration left dangling foreign keys: {problems[:5]}")
    finally:
        engine.dispose()


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision` (what `nurture db upgrade` runs)."""
    with migration_connection(url) as connection:
        config = alembic_config(url)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(url: str | URL, revision: str) -> None:
    """Migrate the database at `url` down to `revision` (``"base"`` empties it)."""
    with migration_connection(url) as connection:
        config = alembic_config(url)
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def current_revision(url: str | URL) -> str | None:
    """The revision the database is at; None for a database never migrated."""
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str | None:
    """The newest revision shipped with this nurture, to tell "behind" from "current"."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()

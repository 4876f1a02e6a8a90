"""Wiring from settings to live objects: the database, the project on disk.

Commands and servers get their engine and session factory here so there is one
place that decides "is the schema current?". An embedded SQLite database is
migrated on first use, so `nurture contacts import` works on a fresh machine;
a PostgreSQL database is never migrated behind the operator's back.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from nurture.definitions.loader import Project, load_project
from nurture.errors import ConfigurationError
from nurture.settings import Settings
from nurture.store import db


@dataclass
class Runtime:
    """A command's or a process's live objects, each built on first use from the settings.

    The one place that checks the schema: `engine` migrates embedded SQLite, refuses a stale
    PostgreSQL.
    """

    settings: Settings
    project_dir: Path

    @cached_property
    def project(self) -> Project:
        return load_project(self.project_dir)

    @cached_property
    def engine(self) -> Engine:
        url = self.settings.database_url
        if db.current_revision(url) != db.head_revision():
            if url.startswith("sqlite"):
                db.upgrade(url)
            else:
                raise ConfigurationError(
                    "NURTURE_DATABASE_URL: the database schema is not up to date; "
                    "run 'nurture db upgrade' first"
                )
        return db.create_engine_for(url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return db.session_factory(self.engine)


def settle_heap() -> None:
    """Leave what startup built out of every later garbage-collection pass.

    Modules, ORM mappers, compiled templates, the project and the engine live
    as long as a worker, a server or an import does, yet each full collection
    re-scans them all: about 8% of bulk ingest's CPU (`benchmarks/ingest.py`).
    `gc.freeze` moves them to a generation the collector skips; they are still
    freed by reference counting if they ever go.
    """
    gc.collect()
    gc.freeze()

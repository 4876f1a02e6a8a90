"""Persistence: the models, engines and sessions, named queries, migrations.

The database is nurture's source of truth (the broker only dispatches), so
everything durable lives behind this package: `models` for the tables, `db`
for connecting and migrating, `queries` for the operations themselves.
"""

from __future__ import annotations

from nurture.store.db import (
    create_engine_for,
    current_revision,
    downgrade,
    head_revision,
    session_factory,
    upgrade,
)
from nurture.store.models import (
    Base,
    Contact,
    Enrollment,
    Event,
    Handoff,
    ScoreEntry,
    Send,
    StageHistory,
    WorkflowVersion,
)

__all__ = [
    "Base",
    "Contact",
    "Enrollment",
    "Event",
    "Handoff",
    "ScoreEntry",
    "Send",
    "StageHistory",
    "WorkflowVersion",
    "create_engine_for",
    "current_revision",
    "downgrade",
    "head_revision",
    "session_factory",
    "upgrade",
]

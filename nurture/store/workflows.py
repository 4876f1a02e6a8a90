"""TODO: workflows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from sqlalchemy import (
    Table,
    select,
)
from sqlalchemy.orm import Session

from nurture.store.models import (
    WorkflowVersion,
)
from nurture.store.sql import insert_ignore


def workflow_version_id(session: Session, name: str, content_hash: str, source: str) -> int:
    """The id of this exact workflow content, stored on first use."""
    found = session.scalar(
        select(WorkflowVersion.id).where(
            WorkflowVersion.name == name, WorkflowVersion.content_hash == content_hash
        )
    )
    if found is not None:
        return found
    table = cast(Table, WorkflowVersion.__table__)
    values = {"name": name, "content_hash": content_hash, "source": source}
    statement = insert_ignore(session, table, values, ["name", "content_hash"])
    session.execute(statement)
    return session.scalars(
        select(WorkflowVersion.id).where(
            WorkflowVersion.name == name, WorkflowVersion.content_hash == content_hash
        )
    ).one()


def workflow_version_sources(session: Session, ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    rows = session.execute(
        select(WorkflowVersion.id, WorkflowVersion.name, WorkflowVersion.source).where(
            WorkflowVersion.id.in_(set(ids))
        )
    )
    return {row.id: (row.name, row.source) for row in rows}

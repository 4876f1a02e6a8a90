"""Workflow versions (`workflow_versions`): the source each enrollment runs, deployments."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from nurture.store.models import WorkflowVersion
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


def workflow_versions(session: Session) -> list[Any]:
    """Every stored version (id, name, content_hash, source, deployed_at), oldest first."""
    return list(
        session.execute(
            select(
                WorkflowVersion.id,
                WorkflowVersion.name,
                WorkflowVersion.content_hash,
                WorkflowVersion.source,
                WorkflowVersion.deployed_at,
            ).order_by(WorkflowVersion.id)
        )
    )


def mark_deployed(session: Session, version_id: int, now: datetime) -> None:
    session.execute(
        update(WorkflowVersion).where(WorkflowVersion.id == version_id).values(deployed_at=now)
    )


def withdraw(session: Session, names: Sequence[str]) -> None:
    """These workflows' files are gone: none of their versions is deployed any more."""
    session.execute(
        update(WorkflowVersion).where(WorkflowVersion.name.in_(names)).values(deployed_at=None)
    )

"""TODO: stages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import (
    Table,
    insert,
    select,
)
from sqlalchemy.orm import Session

from nurture.store.models import (
    StageHistory,
)

_history = cast(Table, StageHistory.__table__)


def insert_history(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        session.execute(insert(_history), list(rows))


def stage_history_of(session: Session, contact_id: int) -> list[StageHistory]:
    """A contact's stage moves, oldest first (explain, the sales inbox, handoff snapshots)."""
    return list(
        session.scalars(
            select(StageHistory)
            .where(StageHistory.contact_id == contact_id)
            .order_by(StageHistory.at, StageHistory.id)
        )
    )

"""Engagement you can trust: each event says whether a person, a machine (a mail
scanner, an image proxy, a prefetch) or a repeat of an earlier signal made it.

Existing events were never classified: they stay "human", as they were counted.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("traffic", sa.String(), nullable=False, server_default="human"))
        batch.add_column(sa.Column("traffic_reason", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("traffic_reason")
        batch.drop_column("traffic")

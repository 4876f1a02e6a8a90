"""Workflows as code: `workflow_versions.deployed_at` marks what `nurture apply`
deployed, so `nurture plan` can compare the files with it.

Existing databases had no notion of deploying: the newest version of each
workflow (the one contacts were last enrolled on) is taken as deployed, so the
first `plan` after upgrading shows real changes, not every workflow as new.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("workflow_versions") as batch:
        batch.add_column(sa.Column("deployed_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE workflow_versions SET deployed_at = created_at "
        "WHERE id IN (SELECT max(id) FROM workflow_versions GROUP BY name)"
    )


def downgrade() -> None:
    with op.batch_alter_table("workflow_versions") as batch:
        batch.drop_column("deployed_at")

"""Experiments: the variant each send of an A/B test used, the group (split arm or
holdout) each enrollment drew, and each variant test's winner once decided.

Existing sends were no test's: their variant stays NULL.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("sends") as batch:
        batch.add_column(sa.Column("variant", sa.String(), nullable=True))
    op.create_index(
        "ix_sends_variant",
        "sends",
        ["workflow", "step", "variant"],
        postgresql_where=sa.text("variant IS NOT NULL"),
        sqlite_where=sa.text("variant IS NOT NULL"),
    )
    op.create_table(
        "experiment_arms",
        sa.Column("id", _ID, nullable=False),
        sa.Column("enrollment_id", _ID, nullable=False),
        sa.Column("contact_id", _ID, nullable=False),
        sa.Column("workflow", sa.String(), nullable=False),
        sa.Column("experiment", sa.String(), nullable=False),
        sa.Column("arm", sa.String(), nullable=False),
        sa.Column("stage", sa.String(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name=op.f("fk_experiment_arms_enrollment_id_enrollments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_experiment_arms_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiment_arms")),
        sa.UniqueConstraint(
            "enrollment_id", "experiment", name=op.f("uq_experiment_arms_enrollment_id_experiment")
        ),
    )
    op.create_index(
        "ix_experiment_arms_workflow_experiment", "experiment_arms", ["workflow", "experiment"]
    )
    op.create_table(
        "experiment_winners",
        sa.Column("id", _ID, nullable=False),
        sa.Column("workflow", sa.String(), nullable=False),
        sa.Column("step", sa.String(), nullable=False),
        sa.Column("test", sa.String(), nullable=False),
        sa.Column("variant", sa.String(), nullable=False),
        sa.Column("metric", sa.String(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("details", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiment_winners")),
        sa.UniqueConstraint(
            "workflow", "step", "test", name=op.f("uq_experiment_winners_workflow_step_test")
        ),
    )


def downgrade() -> None:
    op.drop_table("experiment_winners")
    op.drop_index("ix_experiment_arms_workflow_experiment", "experiment_arms")
    op.drop_table("experiment_arms")
    op.drop_index("ix_sends_variant", "sends")
    with op.batch_alter_table("sends") as batch:
        batch.drop_column("variant")

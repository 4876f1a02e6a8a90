"""Sales handoff: SLA timestamps and an action log on handoffs, round-robin
positions, and the notifications outbox (webhooks and emails to sales).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _json(name: str, *, nullable: bool = False) -> sa.Column[object]:
    kind = sa.JSON(none_as_null=nullable).with_variant(
        postgresql.JSONB(none_as_null=nullable), "postgresql"
    )
    return sa.Column(name, kind, nullable=nullable)


def _ts(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("handoffs") as batch:
        batch.add_column(_ts("reminded_at"))
        batch.add_column(_ts("escalated_at"))
        batch.add_column(sa.Column("decided_by", sa.String(), nullable=True))
        batch.add_column(_json("actions", nullable=True))
    op.create_table(
        "round_robin",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_round_robin")),
    )
    op.create_table(
        "notifications",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("dedupe_key", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("topic", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("template", sa.String(), nullable=True),
        sa.Column("handoff_id", _BIG_ID, nullable=True),
        sa.Column("contact_id", _BIG_ID, nullable=True),
        _json("payload"),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("next_attempt_at"),
        _ts("lease_until"),
        _ts("created_at", nullable=False),
        _ts("sent_at"),
        sa.Column("last_error", sa.Text(), nullable=True),
        _json("log", nullable=True),
        sa.ForeignKeyConstraint(
            ["handoff_id"],
            ["handoffs.id"],
            name=op.f("fk_notifications_handoff_id_handoffs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_notifications_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_notifications_dedupe_key")),
    )
    op.create_index(
        "ix_notifications_due",
        "notifications",
        ["next_attempt_at"],
        postgresql_where=sa.text("next_attempt_at IS NOT NULL"),
        sqlite_where=sa.text("next_attempt_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_due", table_name="notifications")
    op.drop_table("notifications")
    op.drop_table("round_robin")
    with op.batch_alter_table("handoffs") as batch:
        batch.drop_column("actions")
        batch.drop_column("decided_by")
        batch.drop_column("escalated_at")
        batch.drop_column("reminded_at")

"""Consent and GDPR: contacts get `paused_until`, `soft_bounces` and `erased_at`;
the `suppressions` list, keyed by a hash of the normalised address so it
outlives an erased contact.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(_ts("paused_until"))
        batch.add_column(
            sa.Column("soft_bounces", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(_ts("erased_at"))
    op.create_table(
        "suppressions",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(), nullable=True),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("source", sa.String(), nullable=True),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
        sa.UniqueConstraint("email_hash", name=op.f("uq_suppressions_email_hash")),
    )


def downgrade() -> None:
    op.drop_table("suppressions")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("erased_at")
        batch.drop_column("soft_bounces")
        batch.drop_column("paused_until")

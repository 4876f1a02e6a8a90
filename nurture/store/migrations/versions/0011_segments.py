"""Segments: each contact's standing in each segment of nurture.yaml (member or
not, latest entry and exit), and when a counted event leaves a segment's window
(`recheck_at`), so the scheduler re-judges only the rows due.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "segment_members",
        sa.Column("id", _ID, nullable=False),
        sa.Column("contact_id", _ID, nullable=False),
        sa.Column("segment", sa.String(100), nullable=False),
        sa.Column("member", sa.Boolean(), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recheck_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_segment_members_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_members")),
        sa.UniqueConstraint(
            "contact_id", "segment", name=op.f("uq_segment_members_contact_id_segment")
        ),
    )
    op.create_index("ix_segment_members_segment_member", "segment_members", ["segment", "member"])
    op.create_index(
        "ix_segment_members_recheck_at",
        "segment_members",
        ["recheck_at"],
        postgresql_where=sa.text("recheck_at IS NOT NULL"),
        sqlite_where=sa.text("recheck_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_segment_members_recheck_at", "segment_members")
    op.drop_index("ix_segment_members_segment_member", "segment_members")
    op.drop_table("segment_members")

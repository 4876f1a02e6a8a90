"""The website script: browsers by their first-party cookie id, the contact each is
known to be, and the pages anonymous browsers viewed (kept for
`tracking.visitor_window`, then recorded for their contact or deleted).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "site_visitors",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("contact_id", _ID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site_visitors")),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_site_visitors_contact_id_contacts"),
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "site_visits",
        sa.Column("id", _ID, nullable=False),
        sa.Column("visitor_id", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("properties", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site_visits")),
        sa.ForeignKeyConstraint(
            ["visitor_id"],
            ["site_visitors.id"],
            name=op.f("fk_site_visits_visitor_id_site_visitors"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(op.f("ix_site_visits_visitor_id_at"), "site_visits", ["visitor_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_site_visits_visitor_id_at", "site_visits")
    op.drop_table("site_visits")
    op.drop_table("site_visitors")

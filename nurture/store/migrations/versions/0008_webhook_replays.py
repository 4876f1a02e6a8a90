"""Webhook replay protection shared by every web process: the signed requests
already accepted (a Mailgun signature token, an SNS message id, a SendGrid
signature), one row per key until it expires.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_replays",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_webhook_replays")),
    )
    op.create_index(op.f("ix_webhook_replays_expires_at"), "webhook_replays", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_replays_expires_at", "webhook_replays")
    op.drop_table("webhook_replays")

"""Initial schema.

Contacts, stage history, workflow versions, enrollments, the send ledger,
events, the score ledger and handoffs.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Portable: the same script runs on SQLite (batch mode) and PostgreSQL. Plain
SQLAlchemy types only, not nurture's model classes, so this script keeps
working when the models move on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import SchemaItem

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id() -> sa.Column[int]:
    return sa.Column("id", _BIG_ID, nullable=False)


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json(name: str, *, nullable: bool = False) -> sa.Column[object]:
    kind = sa.JSON(none_as_null=nullable).with_variant(
        postgresql.JSONB(none_as_null=nullable), "postgresql"
    )
    return sa.Column(name, kind, nullable=nullable)


def _str(name: str, *, nullable: bool = True) -> sa.Column[str]:
    return sa.Column(name, sa.String(), nullable=nullable)


def _contact_fk(table: str, *, nullable: bool = False) -> list[SchemaItem]:
    return [
        sa.Column("contact_id", _BIG_ID, nullable=nullable),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f(f"fk_{table}_contact_id_contacts"),
            ondelete="CASCADE",
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "contacts",
        _id(),
        _str("email", nullable=False),
        _str("first_name"),
        _str("last_name"),
        _str("company"),
        _str("timezone"),
        _str("owner"),
        _str("stage"),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("fit_score", sa.Float(), nullable=False, server_default="0"),
        sa.Column("engagement_score", sa.Float(), nullable=False, server_default="0"),
        _ts("score_updated_at", nullable=True),
        _ts("last_engaged_at", nullable=True),
        _str("consent_status", nullable=False),
        _str("consent_basis"),
        _str("consent_source"),
        _ts("consent_at", nullable=True),
        _json("consent_proof", nullable=True),
        _json("properties"),
        _json("tags"),
        _str("source"),
        _ts("suppressed_at", nullable=True),
        _str("suppression_reason"),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
        sa.UniqueConstraint("email", name=op.f("uq_contacts_email")),
    )
    op.create_table(
        "stage_history",
        _id(),
        *_contact_fk("stage_history"),
        _str("from_stage"),
        _str("to_stage", nullable=False),
        _ts("at"),
        _str("cause", nullable=False),
        _json("details", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stage_history")),
    )
    op.create_index("ix_stage_history_contact_id_at", "stage_history", ["contact_id", "at"])
    op.create_table(
        "workflow_versions",
        _id(),
        _str("name", nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_versions")),
        sa.UniqueConstraint(
            "name", "content_hash", name=op.f("uq_workflow_versions_name_content_hash")
        ),
    )
    op.create_table(
        "enrollments",
        _id(),
        *_contact_fk("enrollments"),
        _str("workflow", nullable=False),
        sa.Column("workflow_version_id", _BIG_ID, nullable=False),
        _str("step"),
        sa.Column("visit", sa.Integer(), nullable=False),
        _str("status", nullable=False),
        _json("waiting_for", nullable=True),
        _ts("next_run_at", nullable=True),
        _ts("lease_until", nullable=True),
        _ts("started_at"),
        _ts("ended_at", nullable=True),
        _str("exit_reason"),
        sa.ForeignKeyConstraint(
            ["workflow_version_id"],
            ["workflow_versions.id"],
            name=op.f("fk_enrollments_workflow_version_id_workflow_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollments")),
    )
    op.create_index(
        "ix_enrollments_due",
        "enrollments",
        ["next_run_at"],
        postgresql_where=sa.text("next_run_at IS NOT NULL"),
        sqlite_where=sa.text("next_run_at IS NOT NULL"),
    )
    op.create_index("ix_enrollments_contact_id_workflow", "enrollments", ["contact_id", "workflow"])
    op.create_table(
        "sends",
        _id(),
        _str("claim_key", nullable=False),
        sa.Column("enrollment_id", _BIG_ID, nullable=True),
        *_contact_fk("sends"),
        _str("workflow"),
        _str("step"),
        _str("template", nullable=False),
        _str("subject"),
        _str("status", nullable=False),
        _str("message_id"),
        sa.Column("error", sa.Text(), nullable=True),
        _ts("claimed_at"),
        _ts("sent_at", nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("next_attempt_at", nullable=True),
        _ts("lease_until", nullable=True),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name=op.f("fk_sends_enrollment_id_enrollments"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sends")),
        sa.UniqueConstraint("claim_key", name=op.f("uq_sends_claim_key")),
    )
    op.create_index("ix_sends_contact_id_claimed_at", "sends", ["contact_id", "claimed_at"])
    op.create_index("ix_sends_message_id", "sends", ["message_id"])
    op.create_index(
        "ix_sends_due",
        "sends",
        ["next_attempt_at"],
        postgresql_where=sa.text("next_attempt_at IS NOT NULL"),
        sqlite_where=sa.text("next_attempt_at IS NOT NULL"),
    )
    op.create_table(
        "events",
        _id(),
        _str("event_id", nullable=False),
        _str("type", nullable=False),
        _ts("at"),
        *_contact_fk("events", nullable=True),
        _json("properties"),
        _json("raw", nullable=True),
        _str("source"),
        _ts("received_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_events_event_id")),
    )
    op.create_index("ix_events_contact_id_at", "events", ["contact_id", "at"])
    op.create_table(
        "score_ledger",
        _id(),
        *_contact_fk("score_ledger"),
        _str("ledger_key", nullable=False),
        _str("event_id"),
        _str("rule", nullable=False),
        _str("kind", nullable=False),
        sa.Column("points", sa.Float(), nullable=False),
        sa.Column("score_after", sa.Float(), nullable=False),
        _ts("at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_score_ledger")),
        sa.UniqueConstraint("ledger_key", name=op.f("uq_score_ledger_ledger_key")),
    )
    op.create_index("ix_score_ledger_contact_id_at", "score_ledger", ["contact_id", "at"])
    op.create_table(
        "handoffs",
        _id(),
        *_contact_fk("handoffs"),
        _str("status", nullable=False),
        _str("owner"),
        _ts("created_at"),
        _ts("sla_due_at", nullable=True),
        _ts("accepted_at", nullable=True),
        _ts("rejected_at", nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        _json("snapshot", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoffs")),
    )
    op.create_index("ix_handoffs_contact_id", "handoffs", ["contact_id"])
    op.create_index("ix_handoffs_status_sla_due_at", "handoffs", ["status", "sla_due_at"])


def downgrade() -> None:
    for table in (
        "handoffs",
        "score_ledger",
        "events",
        "sends",
        "enrollments",
        "workflow_versions",
        "stage_history",
        "contacts",
    ):
        op.drop_table(table)

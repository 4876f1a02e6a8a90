"""Room on each enrollments page, so that a lease is a HOT update on PostgreSQL.

Every scheduler claim writes `lease_until`, which no index covers. On a full
page (fillfactor 100, how bulk loads leave it) PostgreSQL must put the new
row version on another page and add an entry to every index of the table,
which made a claim among 1M waiting enrollments twice as costly as among
10k (`benchmarks/scheduler_scale.py`). With free space on the page the
update stays on it and touches no index. Applies to pages written from now
on; `VACUUM FULL enrollments` rewrites an existing table.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE enrollments SET (fillfactor = 80)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE enrollments RESET (fillfactor)")

"""One leading scheduler: its fencing token, and the slot each periodic job last ran in.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "scheduler_leases",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("fence", BIG, nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduler_leases")),
    )
    op.create_table(
        "periodic_runs",
        sa.Column("task", sa.String(length=60), nullable=False),
        sa.Column("slot", BIG, nullable=False),
        sa.Column("fence", BIG, nullable=False),
        sa.Column("ran_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("task", "slot", name=op.f("pk_periodic_runs")),
    )
    op.create_index(
        op.f("ix_periodic_runs_ran_at"), "periodic_runs", ["ran_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_periodic_runs_ran_at"), table_name="periodic_runs")
    op.drop_table("periodic_runs")
    op.drop_table("scheduler_leases")

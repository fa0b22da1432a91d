"""The W3C trace context of each event, carried by the runs, steps and deliveries it causes.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("events", sa.Column("traceparent", sa.String(length=55)))
    op.add_column("runs", sa.Column("traceparent", sa.String(length=55)))
    op.add_column("steps", sa.Column("trace_id", sa.String(length=32)))
    op.add_column("deliveries", sa.Column("traceparent", sa.String(length=55)))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as table:
        table.drop_column("traceparent")
    with op.batch_alter_table("steps") as table:
        table.drop_column("trace_id")
    with op.batch_alter_table("runs") as table:
        table.drop_column("traceparent")
    with op.batch_alter_table("events") as table:
        table.drop_column("traceparent")

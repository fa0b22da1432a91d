"""Run state between advances; delivery kind, outcome details and deadline; event attempts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind", sa.String(length=16), nullable=False, server_default="send"
            )
        )
        batch_op.add_column(
            sa.Column(
                "holds_run", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch_op.add_column(sa.Column("response_status", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("latency_ms", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("state", JSON, nullable=False, server_default="{}")
        )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("attempts", sa.Integer(), nullable=False, server_default="0")
        )
    # Defaults were for rows that already existed; the application sets every value itself.
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.alter_column("kind", server_default=None)
        batch_op.alter_column("holds_run", server_default=None)
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.alter_column("state", server_default=None)
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.alter_column("attempts", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("attempts")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("state")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("deadline_at")
        batch_op.drop_column("latency_ms")
        batch_op.drop_column("response_status")
        batch_op.drop_column("holds_run")
        batch_op.drop_column("kind")

"""Pre-aggregated counters for analytics; the channels each customer has been seen on.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "counters",
        sa.Column("journey_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.String(length=100), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "journey_id",
            "metric",
            "bucket",
            "version_id",
            "node_id",
            "channel_id",
            "label",
            "shard",
            name=op.f("pk_counters"),
        ),
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("seen_channels", JSON, nullable=False, server_default="[]")
        )
    # Profiles that exist already: the channels their identities came from.
    identities = sa.table(
        "identities", sa.column("customer_id"), sa.column("channel_id")
    )
    customers = sa.table("customers", sa.column("id"), sa.column("seen_channels", JSON))
    connection = op.get_bind()
    seen: dict[int, set[int]] = {}
    for customer_id, channel_id in connection.execute(
        sa.select(identities.c.customer_id, identities.c.channel_id)
        .where(identities.c.channel_id.is_not(None))
        .distinct()
    ):
        seen.setdefault(customer_id, set()).add(channel_id)
    for customer_id, channels in seen.items():
        connection.execute(
            customers.update()
            .where(customers.c.id == customer_id)
            .values(seen_channels=sorted(channels))
        )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.alter_column("seen_channels", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("seen_channels")
    op.drop_table("counters")

"""Indexes for a channel's recent events and deliveries (its page and its health figures).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_events_channel_received", "events", ["channel_id", "received_at"]
    )
    op.create_index(
        "ix_deliveries_channel_created", "deliveries", ["channel_id", "created_at"]
    )
    op.create_index(
        "ix_deliveries_channel_finished", "deliveries", ["channel_id", "finished_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_channel_finished", table_name="deliveries")
    op.drop_index("ix_deliveries_channel_created", table_name="deliveries")
    op.drop_index("ix_events_channel_received", table_name="events")

"""Event schemas: one per event type with its versions, and the events they refused (kept
to be replayed) or flagged.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "event_schemas",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("channels", JSON, nullable=False),
        sa.Column("schema", JSON, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=254), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_schemas")),
        sa.UniqueConstraint("event_type", name=op.f("uq_event_schemas_event_type")),
    )
    op.create_table(
        "event_schema_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schema_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("channels", JSON, nullable=False),
        sa.Column("schema", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=254), nullable=True),
        sa.ForeignKeyConstraint(
            ["schema_id"],
            ["event_schemas.id"],
            name=op.f("fk_event_schema_versions_schema_id_event_schemas"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_schema_versions")),
        sa.UniqueConstraint(
            "schema_id",
            "version",
            name=op.f("uq_event_schema_versions_schema_id_version"),
        ),
    )
    op.create_table(
        "schema_violations",
        sa.Column("id", BIG, nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("webhook_id", sa.String(length=255), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("body", JSON, nullable=True),
        sa.Column("problems", JSON, nullable=False),
        sa.Column("event_id", BIG, nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_schema_violations_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schema_violations")),
    )
    op.create_index(
        "ix_schema_violations_type", "schema_violations", ["event_type", "id"]
    )
    op.create_index(
        "ix_schema_violations_channel", "schema_violations", ["channel_id", "id"]
    )
    op.create_index(
        "ix_schema_violations_expires_at", "schema_violations", ["expires_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_schema_violations_expires_at", table_name="schema_violations")
    op.drop_index("ix_schema_violations_channel", table_name="schema_violations")
    op.drop_index("ix_schema_violations_type", table_name="schema_violations")
    op.drop_table("schema_violations")
    op.drop_table("event_schema_versions")
    op.drop_table("event_schemas")

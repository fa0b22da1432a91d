"""Events, steps and deliveries partitioned by time on PostgreSQL; webhook ids kept apart.

A unique key of a partitioned table must hold the column it is partitioned by, so the key
that makes a repeated webhook harmless, (channel, webhook id), moves to a table of its own,
`event_keys`, filled from the events kept. The foreign keys that pointed into the three
tables (a run's trigger event, a delivery's fallback) go: a period may be dropped while the
rows naming it stay.

On PostgreSQL each table is rebuilt as a partitioned one and its rows copied over: one
partition per period (THROUGHLINE_PARTITION_PERIOD, a month by default) from its oldest row
to a few periods ahead, and a default partition. The copy takes as long as writing the table
again; the tables are locked meanwhile. SQLite keeps its tables whole.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

from engine import partitions
from engine.migrate import sqlite_foreign_keys_off
from engine.models import utcnow
from engine.settings import partition_period

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = {"events": "received_at", "steps": "at", "deliveries": "created_at"}


def _rows(sql: str, **params: object) -> list[sa.Row]:
    return list(op.get_bind().execute(sa.text(sql), params))


def _ranges(
    oldest: datetime | None, now: datetime, period: str
) -> list[tuple[datetime, datetime]]:
    """The partitions to copy rows into: a month each before the current month, whatever
    the period (years of days would be thousands of tables), then one per period up to a
    few periods ahead."""
    month = partitions.period_start(now, "month")
    wanted = [
        (lower, partitions.period_after(lower, "month"))
        for lower in partitions.periods(min(oldest or now, now), month, "month")
    ]
    horizon = partitions.period_start(now, period)
    for _ in range(partitions.AHEAD + 1):
        horizon = partitions.period_after(horizon, period)
    wanted += [
        (lower, partitions.period_after(lower, period))
        for lower in partitions.periods(month, horizon, period)
    ]
    made: list[partitions.Part] = []
    for lower, upper in wanted:
        for piece in partitions.gaps(lower, upper, made):
            made.append(partitions.Part("", *piece))
    return [(p.lower, p.upper) for p in made if p.lower and p.upper]


# The split branches each run still going took, which it now keeps (engine.execution.writes
# counts them when it converts, its steps perhaps dropped by then).
BRANCHES = {
    "postgresql": """
        UPDATE runs SET state = jsonb_set(state, '{branches}', coalesce((
            SELECT jsonb_agg(b) FROM (
                SELECT DISTINCT jsonb_build_array(s.node_id, s.outcome) AS b
                FROM steps s WHERE s.run_id = runs.id AND s.node_type = 'split') AS t),
            '[]'::jsonb))
        WHERE status IN ('active', 'waiting') AND NOT (state ? 'branches')
    """,
    "sqlite": """
        UPDATE runs SET state = json_set(state, '$.branches', json((
            SELECT json_group_array(json(b)) FROM (
                SELECT DISTINCT json_array(s.node_id, s.outcome) AS b
                FROM steps s WHERE s.run_id = runs.id AND s.node_type = 'split'))))
        WHERE status IN ('active', 'waiting')
          AND json_extract(state, '$.branches') IS NULL
    """,
}


def _rebuild(table: str, column: str, partitioned: bool) -> None:
    """Rebuild `table` on PostgreSQL as a partitioned table (or back as a plain one), its
    rows copied, its indexes and foreign keys made again from their definitions."""
    own = "WHERE conrelid = CAST(:t AS regclass)"
    constraints = _rows(
        f"SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint {own}",
        t=table,
    )
    keys = {name for name, kind, _ in constraints if kind in ("p", "u")}
    indexes = [
        definition
        for name, definition in _rows(
            "SELECT indexname, indexdef FROM pg_indexes"
            " WHERE schemaname = current_schema() AND tablename = :t",
            t=table,
        )
        if name not in keys
    ]
    foreign = [(name, d) for name, kind, d in constraints if kind == "f"]
    sequence = _rows("SELECT pg_get_serial_sequence(:t, 'id')", t=table)[0][0]

    like = f"LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
    if partitioned:
        op.execute(f"CREATE TABLE {table}_next ({like}) PARTITION BY RANGE ({column})")
        oldest = _rows(f"SELECT min({column}) FROM {table}")[0][0]
        for lower, upper in _ranges(oldest, utcnow(), partition_period()):
            op.execute(
                f"CREATE TABLE {partitions.partition_name(table, lower)}"
                f" PARTITION OF {table}_next"
                f" FOR VALUES FROM ('{lower.isoformat()}') TO ('{upper.isoformat()}')"
            )
        op.execute(
            f"CREATE TABLE {partitions.default_name(table)} PARTITION OF {table}_next"
            " DEFAULT"
        )
    else:
        op.execute(f"CREATE TABLE {table}_next ({like})")
    op.execute(f"INSERT INTO {table}_next SELECT * FROM {table}")
    if sequence:
        op.execute(f"ALTER SEQUENCE {sequence} OWNED BY {table}_next.id")
    op.execute(f"DROP TABLE {table}")
    op.execute(f"ALTER TABLE {table}_next RENAME TO {table}")
    key = f"id, {column}" if partitioned else "id"
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY ({key})")
    for definition in indexes:
        op.execute(definition)
    for name, definition in foreign:
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")


def _foreign_keys_into(table: str) -> list[sa.Row]:
    return _rows(
        "SELECT conrelid::regclass::text, conname FROM pg_constraint"
        " WHERE contype = 'f' AND confrelid = CAST(:t AS regclass)",
        t=table,
    )


def upgrade() -> None:
    op.create_table(
        "event_keys",
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("webhook_id", sa.String(length=255), nullable=False),
        sa.Column(
            "event_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_event_keys_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel_id", "webhook_id", name=op.f("pk_event_keys")),
    )
    op.create_index(
        "ix_event_keys_received_at",
        "event_keys",
        ["received_at"],
        postgresql_using="brin",
    )
    op.execute(
        "INSERT INTO event_keys (channel_id, webhook_id, event_id, received_at)"
        " SELECT channel_id, webhook_id, id, received_at FROM events"
    )
    op.execute(BRANCHES[op.get_bind().dialect.name])
    if op.get_bind().dialect.name != "postgresql":
        with sqlite_foreign_keys_off(op):
            with op.batch_alter_table("events", recreate="always") as batch:
                batch.drop_constraint("uq_events_channel_id_webhook_id", type_="unique")
            with op.batch_alter_table("runs", recreate="always") as batch:
                batch.drop_constraint(
                    "fk_runs_trigger_event_id_events", type_="foreignkey"
                )
            with op.batch_alter_table("deliveries", recreate="always") as batch:
                batch.drop_constraint(
                    "fk_deliveries_fallback_of_id_deliveries", type_="foreignkey"
                )
        return
    for table in TABLES:
        for owner, name in _foreign_keys_into(table):
            op.execute(f"ALTER TABLE {owner} DROP CONSTRAINT {name}")
    for table, column in TABLES.items():
        _rebuild(table, column, partitioned=True)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    # The rows the foreign keys name may have gone with a dropped period.
    op.execute(
        "UPDATE runs SET trigger_event_id = NULL WHERE trigger_event_id IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM events WHERE events.id = runs.trigger_event_id)"
    )
    op.execute(
        "UPDATE deliveries SET fallback_of_id = NULL WHERE fallback_of_id IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id = deliveries.fallback_of_id)"
    )
    if postgres:
        for table, column in TABLES.items():
            _rebuild(table, column, partitioned=False)
        op.create_unique_constraint(
            "uq_events_channel_id_webhook_id", "events", ["channel_id", "webhook_id"]
        )
        op.create_foreign_key(
            "fk_runs_trigger_event_id_events",
            "runs",
            "events",
            ["trigger_event_id"],
            ["id"],
            ondelete="SET NULL",
        )
        op.create_foreign_key(
            "fk_deliveries_fallback_of_id_deliveries",
            "deliveries",
            "deliveries",
            ["fallback_of_id"],
            ["id"],
            ondelete="SET NULL",
        )
    else:
        with sqlite_foreign_keys_off(op):
            with op.batch_alter_table("events", recreate="always") as batch:
                batch.create_unique_constraint(
                    "uq_events_channel_id_webhook_id", ["channel_id", "webhook_id"]
                )
            with op.batch_alter_table("runs", recreate="always") as batch:
                batch.create_foreign_key(
                    "fk_runs_trigger_event_id_events",
                    "events",
                    ["trigger_event_id"],
                    ["id"],
                    ondelete="SET NULL",
                )
            with op.batch_alter_table("deliveries", recreate="always") as batch:
                batch.create_foreign_key(
                    "fk_deliveries_fallback_of_id_deliveries",
                    "deliveries",
                    ["fallback_of_id"],
                    ["id"],
                    ondelete="SET NULL",
                )
    op.drop_index("ix_event_keys_received_at", table_name="event_keys")
    op.drop_table("event_keys")

"""Runs in flight by journey, status and node; each run counted once per node it reached.

The index on runs gains the node, so the runs in a journey now are counted by node from the
index (the canvas asks every few seconds), and a move finds its runs at a step by it too. The
`visited` counters (entered, went on, failed: each run once per node) are filled in from the
step records written before them, and each run in flight keeps the nodes it was counted at
(`state.counted`), so its next steps are not counted a second time.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The steps that count a run at their node, by label (as engine.execution counts them; a
# "moved" step only records a move, it is neither an arrival nor a way out).
COUNTED = {
    "entered": "outcome NOT IN ('converted', 'exited', 'moved')",
    "completed": "outcome NOT IN"
    " ('waiting', 'failed', 'converted', 'exited', 'not_entered', 'moved')",
    "failed": "outcome = 'failed'",
}
HOUR = {
    "postgresql": "date_trunc('hour', first_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
    "sqlite": "strftime('%Y-%m-%d %H:00:00.000000', first_at)",
}
IN_FLIGHT = "('active', 'waiting')"


def _count_visits(dialect: str) -> None:
    """One counter per journey, version, node, label and hour of each run's first such step."""
    for label, where in COUNTED.items():
        op.execute(
            text(
                "INSERT INTO counters (journey_id, metric, bucket, version_id, node_id,"
                " channel_id, label, shard, value)"
                f" SELECT r.journey_id, 'visited', {HOUR[dialect]}, r.version_id,"
                " f.node_id, 0, :label, 0, count(*)"
                " FROM (SELECT run_id, node_id, min(at) AS first_at FROM steps"
                f"  WHERE node_id <> '' AND {where} GROUP BY run_id, node_id) f"
                " JOIN runs r ON r.id = f.run_id"
                f" GROUP BY r.journey_id, {HOUR[dialect]}, r.version_id, f.node_id"
            ).bindparams(label=label)
        )


def _remember_counted(dialect: str) -> None:
    """Runs in flight keep the nodes they have been counted at, by label."""
    if dialect == "postgresql":
        nodes = "coalesce(jsonb_agg(DISTINCT s.node_id) FILTER (WHERE {}), '[]'::jsonb)"
        build = "jsonb_build_object"
        assign = "jsonb_set(coalesce(runs.state, '{}'::jsonb), '{counted}', c.counted)"
    else:
        nodes = "json_group_array(DISTINCT s.node_id) FILTER (WHERE {})"
        build = "json_object"
        assign = "json_set(coalesce(runs.state, '{}'), '$.counted', json(c.counted))"
    pairs = ", ".join(
        f"'{label}', " + nodes.format(where.replace("outcome", "s.outcome"))
        for label, where in COUNTED.items()
    )
    op.execute(
        text(
            f"UPDATE runs SET state = {assign}"
            f" FROM (SELECT s.run_id, {build}({pairs}) AS counted"
            "  FROM steps s JOIN runs r ON r.id = s.run_id"
            f"  WHERE r.status IN {IN_FLIGHT} AND s.node_id <> ''"
            "  GROUP BY s.run_id) c"
            " WHERE runs.id = c.run_id"
        )
    )


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    # On PostgreSQL the index is built without holding writes to runs for its length.
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_runs_journey_node",
            "runs",
            ["journey_id", "status", "current_node"],
            postgresql_concurrently=True,
            if_not_exists=True,
        )
        op.drop_index(
            "ix_runs_journey",
            table_name="runs",
            postgresql_concurrently=True,
            if_exists=True,
        )
    _count_visits(dialect)
    _remember_counted(dialect)


def downgrade() -> None:
    op.execute(text("DELETE FROM counters WHERE metric = 'visited'"))
    op.create_index("ix_runs_journey", "runs", ["journey_id", "status"])
    op.drop_index("ix_runs_journey_node", table_name="runs")

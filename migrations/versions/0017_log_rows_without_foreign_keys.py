"""Steps, deliveries, events and webhook keys name runs, journeys and channels without
foreign keys.

Each foreign key of these tables had PostgreSQL look up the row it names for every row
written: four steps, a delivery and an event per event applied, a dozen lookups that cost
more than the rows. What they named is never deleted by the product (journeys are
archived, channels disabled) or is deleted together with them (an erasure deletes a
profile's runs and then their steps). The keys to `customers` stay: they hold an event or a
delivery written for a profile while it is being erased, so none outlives it.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

from engine.migrate import sqlite_foreign_keys_off

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table: [(column, table named, on delete)]
DROPPED = {
    "steps": [("run_id", "runs", "CASCADE")],
    "deliveries": [
        ("run_id", "runs", "CASCADE"),
        ("journey_id", "journeys", "SET NULL"),
        ("channel_id", "channels", "SET NULL"),
    ],
    "events": [("channel_id", "channels", "CASCADE")],
    "event_keys": [("channel_id", "channels", "CASCADE")],
}


def _name(table: str, column: str, named: str) -> str:
    return f"fk_{table}_{column}_{named}"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        with sqlite_foreign_keys_off(op):
            for table, keys in DROPPED.items():
                with op.batch_alter_table(table, recreate="always") as batch:
                    for column, named, _ in keys:
                        batch.drop_constraint(
                            _name(table, column, named), type_="foreignkey"
                        )
        return
    for table, keys in DROPPED.items():
        for column, named, _ in keys:
            op.drop_constraint(_name(table, column, named), table, type_="foreignkey")


def downgrade() -> None:
    # Rows naming what is gone: as the keys would have left them.
    for table, keys in DROPPED.items():
        for column, named, on_delete in keys:
            missing = (
                f"{column} IS NOT NULL AND NOT EXISTS"
                f" (SELECT 1 FROM {named} WHERE {named}.id = {table}.{column})"
            )
            if on_delete == "CASCADE":
                op.execute(f"DELETE FROM {table} WHERE {missing}")
            else:
                op.execute(f"UPDATE {table} SET {column} = NULL WHERE {missing}")
    if op.get_bind().dialect.name == "postgresql":
        for table, keys in DROPPED.items():
            for column, named, on_delete in keys:
                op.create_foreign_key(
                    _name(table, column, named),
                    table,
                    named,
                    [column],
                    ["id"],
                    ondelete=on_delete,
                )
        return
    with sqlite_foreign_keys_off(op):
        for table, keys in DROPPED.items():
            with op.batch_alter_table(table, recreate="always") as batch:
                for column, named, on_delete in keys:
                    batch.create_foreign_key(
                        _name(table, column, named),
                        named,
                        [column],
                        ["id"],
                        ondelete=on_delete,
                    )

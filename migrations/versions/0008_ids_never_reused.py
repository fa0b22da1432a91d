"""Profile ids are never reused: an erased customer's id is not given to the next one.

PostgreSQL draws ids from a sequence, which never goes back. SQLite gives max + 1 unless the
table is AUTOINCREMENT, so the customers table is rebuilt as one, its counter starting after
the highest id it has held (including erased ones the audit log names). The rebuild copies
the table, which SQLite only allows without cascading deletes into identities, events and
runs when foreign keys are off, outside a transaction.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

from engine.migrate import sqlite_foreign_keys_off

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HIGHEST_ID = """
SELECT max(id) FROM (
    SELECT max(id) AS id FROM customers
    UNION ALL
    SELECT max(CAST(target_id AS INTEGER)) FROM audit_log WHERE target_type = 'customer'
)
"""


def _rebuild_customers(autoincrement: bool) -> None:
    with sqlite_foreign_keys_off(op) as raw:
        with op.batch_alter_table(
            "customers",
            recreate="always",
            table_kwargs={"sqlite_autoincrement": autoincrement},
        ):
            pass
        if autoincrement:
            raw.execute("DELETE FROM sqlite_sequence WHERE name = 'customers'")
            raw.execute(
                "INSERT INTO sqlite_sequence (name, seq)"
                f" SELECT 'customers', coalesce(({HIGHEST_ID}), 0)"
            )


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_customers(autoincrement=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_customers(autoincrement=False)

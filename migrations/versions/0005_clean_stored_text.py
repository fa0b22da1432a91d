"""Clean JSON that intake no longer takes: NUL characters and lone surrogates become U+FFFD,
NaN and Infinity become null.

Only SQLite could hold them (PostgreSQL's JSONB refuses all four), and a lone surrogate made
every page showing it fail to encode. Only rows whose text holds an escape or one of those
words are read.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from engine.intake.payload import scrubbed

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = {
    "customers": ("traits", "consent"),
    "events": ("payload",),
    "runs": ("context", "state"),
    "steps": ("detail",),
    "deliveries": ("payload",),
    "audit_log": ("detail",),
}
SUSPECT = ("%\\ud%", "%\\u0000%", "%NaN%", "%Infinity%")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    for table, columns in COLUMNS.items():
        for column in columns:
            suspect = " OR ".join(f"{column} LIKE :p{i}" for i in range(len(SUSPECT)))
            rows = bind.execute(
                sa.text(f"SELECT id, {column} FROM {table} WHERE {suspect}"),
                {f"p{i}": pattern for i, pattern in enumerate(SUSPECT)},
            ).all()
            for row_id, raw in rows:
                value = json.loads(raw)
                clean = scrubbed(value)
                if json.dumps(clean) != json.dumps(value):
                    bind.execute(
                        sa.text(f"UPDATE {table} SET {column} = :value WHERE id = :id"),
                        {"value": json.dumps(clean), "id": row_id},
                    )


def downgrade() -> None:
    """Nothing to restore: the replaced characters could not be shown or stored elsewhere."""

"""Alembic, driven from code: `throughline db upgrade` and the test fixtures call this."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from engine.settings import shipped_folder

MIGRATIONS = shipped_folder(Path(__file__).resolve().parent, "migrations")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database at `database_url` to `revision`."""
    command.upgrade(alembic_config(database_url), revision)


def heads() -> list[str]:
    return list(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def sqlite_foreign_keys_off(op: Any) -> Iterator[Any]:
    """Within a migration on SQLite: run the block with foreign keys off, in a transaction
    of its own, and check them before it commits.

    Rebuilding a table (batch mode copies it and drops the old one) deletes, with foreign
    keys on, every row that cascades from the old one; SQLite only allows turning them off
    outside a transaction. Yields the driver's connection."""
    with op.get_context().autocommit_block():
        raw = op.get_bind().connection.driver_connection
        raw.execute("PRAGMA foreign_keys=OFF")
        try:
            raw.execute("BEGIN IMMEDIATE")
            yield raw
            problems = raw.execute("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise RuntimeError(
                    f"foreign keys broken by the rebuild: {problems[:5]}"
                )
            raw.execute("COMMIT")
        except BaseException:
            if raw.in_transaction:
                raw.execute("ROLLBACK")
            raise
        finally:
            raw.execute("PRAGMA foreign_keys=ON")

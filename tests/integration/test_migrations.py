from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from engine.db import create_db_engine
from engine.migrate import current_revision, heads
from engine.models import Base


def test_there_is_one_migration_head():
    assert len(heads()) == 1


def test_upgrade_head_on_an_empty_database_matches_the_models(database_url):
    """The fixture built this database with `alembic upgrade head` (SQLite or PostgreSQL)."""
    engine = create_db_engine(database_url)
    with engine.connect() as connection:
        assert current_revision(connection) == heads()[0]
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == []

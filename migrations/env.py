"""Alembic environment: the URL comes from the config set by engine.migrate."""

from alembic import context

from engine.db import create_db_engine
from engine.models import Base
from engine.partitions import is_partition

config = context.config
target_metadata = Base.metadata


def _described(name: str | None, kind: str, _parents: object) -> bool:
    """What autogenerate compares: the models describe the partitioned tables, not each
    partition the scheduler makes (engine.partitions)."""
    return not (kind == "table" and name is not None and is_partition(name))


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = create_db_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_name=_described,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()

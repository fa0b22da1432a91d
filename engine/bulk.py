"""Many rows in one statement, for the engine's hot paths.

A drain batch writes four or more step rows per event, a counter row per figure it moved, and
settles its deliveries. Sent as "many parameter sets", each row is a statement of its own for
the driver to bind and for PostgreSQL to plan and run; on PostgreSQL the rows here travel as one
JSON document instead and the database spreads it over the table's own row type
(`jsonb_populate_recordset`), so one statement, the same text whatever the number of rows
(prepared once by the driver), writes them all. Values are the columns' JSON forms: datetimes
as ISO 8601 with their offset, enums as their values, documents as they are.

SQLite runs in process, where a statement costs no round trip: there the rows go as many
parameter sets through SQLAlchemy Core.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, TextClause, insert, select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql import bindparam

from engine import jsontext

_STATEMENTS: dict[tuple[Any, ...], TextClause] = {}


def _document(rows: Sequence[dict[str, Any]]) -> str:
    return jsontext.dumps(rows)


def _columns(rows: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    columns = tuple(rows[0])
    if any(tuple(row) != columns for row in rows):
        raise ValueError("every row names the same columns, in the same order")
    return columns


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def insert_rows(
    connection: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    on_conflict: tuple[Sequence[str], dict[str, str]] | None = None,
) -> int:
    """Insert `rows` (dicts naming the same columns) into `table`; returns how many.

    `on_conflict`: (key columns, {column: SQL expression}) turns the insert into an upsert; the
    expressions may name `excluded.<column>` and `<table>.<column>`.
    """
    if not rows:
        return 0
    columns = _columns(rows)
    if connection.dialect.name != "postgresql":
        statement: Any = insert(table)
        if on_conflict is not None:
            keys, updates = on_conflict
            statement = sqlite_insert(table).on_conflict_do_update(
                index_elements=list(keys),
                set_={
                    column: text(expression) for column, expression in updates.items()
                },
            )
        connection.execute(statement, rows[0] if len(rows) == 1 else list(rows))
        return len(rows)
    key = ("insert", table.name, columns, _conflict_key(on_conflict))
    found = _STATEMENTS.get(key)
    if found is None:
        found = _STATEMENTS[key] = text(
            _insert_sql(table, columns, on_conflict, "rows")
        )
    connection.execute(found, {"rows": _document(rows)})
    return len(rows)


Conflict = tuple[Sequence[str], dict[str, str]]


def _conflict_key(on_conflict: Conflict | None) -> Any:
    if on_conflict is None:
        return None
    return (tuple(on_conflict[0]), tuple(sorted(on_conflict[1].items())))


def _insert_sql(
    table: Table, columns: Sequence[str], on_conflict: Conflict | None, name: str
) -> str:
    sql = (
        f'INSERT INTO "{table.name}" ({_quoted(columns)}) '
        f"SELECT {_quoted(columns)} FROM jsonb_populate_recordset("
        f'NULL::"{table.name}", CAST(:{name} AS jsonb))'
    )
    if on_conflict is not None:
        keys, updates = on_conflict
        sets = ", ".join(f'"{c}" = {e}' for c, e in updates.items())
        sql += f" ON CONFLICT ({_quoted(keys)}) DO UPDATE SET {sets}"
    return sql


def _update_sql(
    table: Table,
    key: str,
    changed: Sequence[str],
    name: str,
    match: Sequence[str] = (),
) -> str:
    sets = ", ".join(f'"{column}" = v."{column}"' for column in changed)
    found = " AND ".join(f't."{column}" = v."{column}"' for column in (key, *match))
    return (
        f'UPDATE "{table.name}" AS t SET {sets} '
        f'FROM jsonb_populate_recordset(NULL::"{table.name}", CAST(:{name} AS jsonb)) AS v '
        f"WHERE {found}"
    )


@dataclass(frozen=True)
class Write:
    """Rows for one table: inserted (an upsert with `on_conflict`), or, with `key`, updated
    by that column (and the `match` columns, which find the row without being set: the
    time a partitioned table is partitioned by lets PostgreSQL look in one partition)."""

    table: Table
    rows: Sequence[dict[str, Any]]
    key: str | None = None
    on_conflict: Conflict | None = None
    match: tuple[str, ...] = ()


def write_all(connection: Connection, writes: Sequence[Write]) -> None:
    """Carry out the writes; on PostgreSQL in one statement (each a data-modifying part of
    one WITH), so a batch's rows in every table cost one round trip. Its parts cannot see
    each other's rows, and need not: foreign keys are checked when the statement ends."""
    writes = [write for write in writes if write.rows]
    if connection.dialect.name != "postgresql" or len(writes) < 2:
        for write in writes:
            if write.key is None:
                insert_rows(connection, write.table, write.rows, write.on_conflict)
            else:
                update_rows(
                    connection, write.table, write.key, write.rows, match=write.match
                )
        return
    shapes = tuple(
        (
            write.table.name,
            _columns(write.rows),
            write.key,
            _conflict_key(write.on_conflict),
            write.match,
        )
        for write in writes
    )
    found = _STATEMENTS.get(("all", shapes))
    if found is None:
        parts = []
        for n, (write, (_, columns, key, _c, match)) in enumerate(
            zip(writes, shapes, strict=True)
        ):
            if key is None:
                sql = _insert_sql(write.table, columns, write.on_conflict, f"rows{n}")
            else:
                changed = [c for c in columns if c != key and c not in match]
                sql = _update_sql(write.table, key, changed, f"rows{n}", match)
            parts.append(f"w{n} AS ({sql})")
        found = _STATEMENTS[("all", shapes)] = text(
            "WITH " + ", ".join(parts) + " SELECT 1"
        )
    connection.execute(
        found, {f"rows{n}": _document(write.rows) for n, write in enumerate(writes)}
    )


def update_rows(
    connection: Connection,
    table: Table,
    key: str,
    rows: Sequence[dict[str, Any]],
    where: tuple[str, Any] | None = None,
    match: tuple[str, ...] = (),
) -> list[Any]:
    """Set, in each row of `table` whose `key` column equals a row's `key`, that row's other
    columns (every row names the same columns); returns the keys of the rows changed.

    `where`: (column, value) a row must still hold to be changed (read under its lock, so
    of two writers racing on a row the second sees what the first wrote). `match`: columns
    the rows give that must equal too, and are not set (see `Write`); only PostgreSQL,
    which partitions tables, compares them.
    """
    if not rows:
        return []
    columns = _columns(rows)
    changed = [column for column in columns if column != key and column not in match]
    if key not in columns or not changed:
        raise ValueError(f"rows name {key!r} and at least one column to set")
    if where is not None and connection.dialect.name != "postgresql":
        # SQLite: the writer holds the database's lock, so what it reads stays true.
        still = set(
            connection.execute(
                select(table.c[key]).where(
                    table.c[key].in_([row[key] for row in rows]),
                    table.c[where[0]] == where[1],
                )
            ).scalars()
        )
        rows = [row for row in rows if row[key] in still]
        if not rows:
            return []
    if connection.dialect.name != "postgresql":
        statement = (
            update(table)
            .where(table.c[key] == bindparam("_key"))
            .values({column: bindparam(f"_v_{column}") for column in changed})
        )
        connection.execute(
            statement,
            [
                {**{f"_v_{c}": row[c] for c in changed}, "_key": row[key]}
                for row in rows
            ],
        )
        return [row[key] for row in rows]
    statement_key = ("update", table.name, key, columns, where and where[0], match)
    found = _STATEMENTS.get(statement_key)
    if found is None:
        condition = f' AND t."{where[0]}" = :where' if where is not None else ""
        found = _STATEMENTS[statement_key] = text(
            _update_sql(table, key, changed, "rows", match)
            + f'{condition} RETURNING t."{key}"'
        )
    parameters: dict[str, Any] = {"rows": _document(rows)}
    if where is not None:
        value = where[1]
        parameters["where"] = value.value if isinstance(value, enum.Enum) else value
    return list(connection.execute(found, parameters).scalars())

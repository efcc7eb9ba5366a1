"""Replacing a read model's tables wholesale inside a transaction: fresh tables, filled with COPY, swapped in.

A rebuild that writes every row anew is fastest into an empty table without indexes: COPY streams the
rows, and each index is then built once, sorted, instead of row by row. The fresh table has the old
one's columns, defaults and constraints (`LIKE ... INCLUDING ALL EXCLUDING INDEXES`), then the old
one's indexes and primary key under temporary names. Only at the end are the old tables dropped and
the fresh ones renamed into their place, so readers use the old rows until the transaction commits and
wait only for the swap itself (a lock held from the drop to the commit).

A transaction whose snapshot predates the commit would find the swapped-in table empty (its rows are
newer than the snapshot): the one repeatable-read reader (`LiveCalendars.load`) locks the tables before
its first read, so its snapshot is taken after any swap it waited for.

Only for tables nothing else depends on (no views, no foreign keys): the drop refuses otherwise. What
`LIKE` does not copy is lost with the old table: grants, row-level security policies, triggers, comments,
publication membership and replica identity. The read models have none today; one that gains any must
re-apply it after the swap (or be rebuilt by replay instead). And any future reader that reads a read
model in more than one statement under one snapshot (repeatable read) must lock it first, as the load does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg

_SUFFIX = "__fresh"

# Each index of a table: its name, its definition, and the constraint it backs (primary key, unique), if any.
_INDEXES = """
    select i.relname, pg_get_indexdef(x.indexrelid), c.conname, pg_get_constraintdef(c.oid)
      from pg_index x join pg_class i on i.oid = x.indexrelid
      left join pg_constraint c on c.conindid = x.indexrelid and c.conrelid = x.indrelid
     where x.indrelid = $1::regclass order by i.relname
"""


async def replace_tables(conn: asyncpg.Connection, rows: Mapping[str, Iterable[tuple[Any, ...]]]) -> None:
    """Make each table hold exactly the given rows (in its column order), all swapped in at once at the end.

    Run inside the caller's transaction; the tables are swapped in the mapping's order, which is the order
    their locks are taken in.
    """
    renames: list[tuple[str, str]] = []
    for table, records in rows.items():
        fresh = f"{table}{_SUFFIX}"
        await conn.execute(f"create table {fresh} (like {table} including all excluding indexes)")
        await conn.copy_records_to_table(fresh, records=records)
        for name, definition, constraint, constraint_definition in await conn.fetch(_INDEXES, table):
            temporary = f"{name}{_SUFFIX}"
            if constraint is not None:
                await conn.execute(f"alter table {fresh} add constraint {temporary} {constraint_definition}")
            else:
                await conn.execute(_index_on(definition, temporary, fresh))
            renames.append((temporary, name))
        await conn.execute(f"analyze {fresh}")  # plans over the fresh rows from the first query on
    for table in rows:
        await conn.execute(f"drop table {table}")
        await conn.execute(f"alter table {table}{_SUFFIX} rename to {table}")
    for temporary, name in renames:
        await conn.execute(f"alter index {temporary} rename to {name}")  # a constraint's index: the constraint too


def _index_on(definition: str, name: str, table: str) -> str:
    """`CREATE [UNIQUE] INDEX old ON [ONLY] schema.table USING ...` as the same index `name` on `table`."""
    head, _, tail = definition.partition(" ON ")
    create = head.rsplit(" ", 1)[0]  # CREATE [UNIQUE] INDEX
    tail = tail.removeprefix("ONLY ")
    _, _, method = tail.partition(" ")  # drop the old table's name
    return f"{create} {name} ON {table} {method}"

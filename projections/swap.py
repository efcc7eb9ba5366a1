"""Replacing a read model's tables wholesale inside a transaction: fresh tables, filled, swapped in.

A rebuild that writes every row anew is fastest into an empty table without indexes: COPY streams the
rows (or an INSERT ... SELECT computes them in Postgres), and each index is then built once, sorted,
instead of row by row. The fresh table has the old one's columns, defaults and constraints (`LIKE ...
INCLUDING ALL EXCLUDING INDEXES`), then the old one's indexes and primary key under temporary names. Only at the end are the old tables dropped and
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

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

import asyncpg

_SUFFIX = "__fresh"
T = TypeVar("T")

# Each index of a table: its name, its definition, and the constraint it backs (primary key, unique), if any.
_INDEXES = """
    select i.relname, pg_get_indexdef(x.indexrelid), c.conname, pg_get_constraintdef(c.oid)
      from pg_index x join pg_class i on i.oid = x.indexrelid
      left join pg_constraint c on c.conindid = x.indexrelid and c.conrelid = x.indrelid
     where x.indrelid = $1::regclass order by i.relname
"""


async def replace_tables(conn: asyncpg.Connection, tables: Sequence[str],
                         fill: Callable[[Mapping[str, str]], Awaitable[T]]) -> T:
    """Make the tables hold exactly what `fill` writes into their fresh twins, all swapped in at once at the end.

    `fill` gets each table's fresh name (empty, without indexes) and fills them all, by COPY or by INSERT ...
    SELECT; what it returns is returned. Run inside the caller's transaction; the tables are swapped in the
    order given, which is the order their locks are taken in.
    """
    fresh = {table: f"{table}{_SUFFIX}" for table in tables}
    for table in tables:
        await conn.execute(f"create table {fresh[table]} (like {table} including all excluding indexes)")
    filled = await fill(fresh)
    renames: list[tuple[str, str]] = []
    for table in tables:
        for name, definition, constraint, constraint_definition in await conn.fetch(_INDEXES, table):
            temporary = f"{name}{_SUFFIX}"
            if constraint is not None:
                await conn.execute(f"alter table {fresh[table]} add constraint {temporary} {constraint_definition}")
            else:
                await conn.execute(_index_on(definition, temporary, fresh[table]))
            renames.append((temporary, name))
        await conn.execute(f"analyze {fresh[table]}")  # plans over the fresh rows from the first query on
    for table in tables:
        await conn.execute(f"drop table {table}")
        await conn.execute(f"alter table {fresh[table]} rename to {table}")
    for temporary, name in renames:
        await conn.execute(f"alter index {temporary} rename to {name}")  # a constraint's index: the constraint too
    return filled


def _index_on(definition: str, name: str, table: str) -> str:
    """`CREATE [UNIQUE] INDEX old ON [ONLY] schema.table USING ...` as the same index `name` on `table`."""
    head, _, tail = definition.partition(" ON ")
    create = head.rsplit(" ", 1)[0]  # CREATE [UNIQUE] INDEX
    tail = tail.removeprefix("ONLY ")
    _, _, method = tail.partition(" ")  # drop the old table's name
    return f"{create} {name} ON {table} {method}"

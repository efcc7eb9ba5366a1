"""Numbered SQL migrations, applied at start-up and recorded in `schema_migrations`."""

from __future__ import annotations

from importlib import resources

import asyncpg

# Any fixed number: serialises concurrent start-ups of several services on one database.
MIGRATION_LOCK = 7_310_001


def migration_files() -> list[tuple[int, str, str]]:
    """(number, name, sql) of every bundled migration, in order."""
    found = []
    for entry in resources.files("shared.eventstore").joinpath("migrations").iterdir():
        if entry.name.endswith(".sql"):
            number = int(entry.name.split("_", 1)[0])
            found.append((number, entry.name, entry.read_text()))
    return sorted(found)


async def migrate(conn: asyncpg.Connection, extra: list[tuple[int, str, str]] | None = None) -> list[str]:
    """Apply every migration not yet recorded; return the names applied now."""
    applied_now: list[str] = []
    await conn.execute("select pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(
            "create table if not exists schema_migrations ("
            " version integer primary key, name text not null, applied_at timestamptz not null default now())"
        )
        done = {row["version"] for row in await conn.fetch("select version from schema_migrations")}
        for number, name, sql in sorted(migration_files() + (extra or [])):
            if number in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("insert into schema_migrations (version, name) values ($1, $2)", number, name)
            applied_now.append(name)
    finally:
        await conn.execute("select pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied_now

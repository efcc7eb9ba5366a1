"""Webhook signing secrets, kept outside the event log (table webhook_secrets, migration 0004).

The command service stores a secret before it appends the event that names it (`secret_id`), so
the dispatcher always finds it; the relay never publishes it, and the idempotency record keeps
the reply without it. Nothing here logs a secret.
"""

from __future__ import annotations

from typing import TypeAlias

import asyncpg

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection


async def keep_secret(db: Executor, webhook_id: str, secret_id: str, secret: str) -> None:
    """Store a new secret (a retried command makes a new id, so this never overwrites one)."""
    await db.execute("insert into webhook_secrets (secret_id, webhook_id, secret) values ($1, $2, $3)"
                     " on conflict (secret_id) do nothing", secret_id, webhook_id, secret)


async def secrets_by_id(db: Executor, secret_ids: list[str]) -> dict[str, str]:
    """secret_id -> secret for the ids that exist."""
    rows = await db.fetch("select secret_id, secret from webhook_secrets where secret_id = any($1)", secret_ids)
    return {row["secret_id"]: row["secret"] for row in rows}


async def forget_secrets(db: Executor, webhook_id: str) -> None:
    """Drop every secret of a deleted webhook."""
    await db.execute("delete from webhook_secrets where webhook_id = $1", webhook_id)

"""Reading the dispatcher's tables (migration 0004): which webhooks fail, and each webhook's deliveries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg

from projections.pagination import keyset_page


async def failing(pool: asyncpg.Pool, webhook_ids: list[str]) -> set[str]:
    """The webhooks among `webhook_ids` whose last delivery died."""
    rows = await pool.fetch("select webhook_id from webhook_subscriptions where webhook_id = any($1)"
                            " and state = 'failing'", webhook_ids)
    return {row["webhook_id"] for row in rows}


async def deliveries_page(pool: asyncpg.Pool, webhook_id: str, *, before: str | None, after: str | None, limit: int,
                          key_from_cursor: Callable[[str, str], Any]) -> tuple[list[asyncpg.Record], dict]:
    """One page of a webhook's deliveries, newest first (`after` pages on to older ones)."""
    return await keyset_page(
        pool, select="select seq, id, event_id, type, state, attempt_count, next_attempt_at, created_at, finished_at"
                     " from webhook_deliveries",
        conditions=["webhook_id = $1"], params=[webhook_id], keys=("created_at", "seq"), before=before,
        after=after, limit=limit, newest_first=True, key_from_cursor=key_from_cursor)


async def attempts_of(pool: asyncpg.Pool, delivery_seqs: list[int]) -> list[asyncpg.Record]:
    """Every attempt of the given deliveries, in order."""
    return await pool.fetch("select delivery_seq, attempt, attempted_at, duration_ms, status_code, error"
                            " from webhook_attempts where delivery_seq = any($1) order by delivery_seq, attempt",
                            delivery_seqs)

"""Webhook queries: the account's webhooks (read model rm_resources) and a webhook's delivery log.

Whether a webhook is `failing` is the dispatcher's knowledge (webhook_subscriptions); the delivery
log is its outbox and attempts (migration 0004). A deleted webhook, or another account's, is 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg

from projections.pagination import keyset_page
from projections.resources import queries as resources
from shared.domain.webhooks import WebhookState, webhook_resource
from shared.errors import NotFound, ValidationFailed


def _iso_ms(moment: datetime | None) -> str | None:
    """ISO-8601 UTC with milliseconds: attempts are often less than a second apart."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


async def _failing(pool: asyncpg.Pool, webhook_ids: list[str]) -> set[str]:
    rows = await pool.fetch("select webhook_id from webhook_subscriptions where webhook_id = any($1)"
                            " and state = 'failing'", webhook_ids)
    return {row["webhook_id"] for row in rows}


async def _resource(pool: asyncpg.Pool, state: WebhookState) -> dict[str, Any]:
    failing = await _failing(pool, [state.webhook_id])
    return webhook_resource(state, "failing" if failing else None)


async def webhooks_list(pool: asyncpg.Pool, account_id: str, *, before: str | None, after: str | None,
                        limit: int) -> dict[str, Any]:
    """The account's webhooks, oldest first, without their secrets."""
    states, metadata = await resources.page(pool, "webhook", account_id, before=before, after=after, limit=limit)
    failing = await _failing(pool, [s.webhook_id for s in states])
    return {"entries": [webhook_resource(s, "failing" if s.webhook_id in failing else None) for s in states],
            "metadata": metadata}


async def webhook_get(pool: asyncpg.Pool, account_id: str, webhook_id: str) -> dict[str, Any]:
    state = await resources.get_state(pool, "webhook", webhook_id, account_id)
    if state is None:
        raise NotFound("webhook")
    return await _resource(pool, state)


def _sequence(field: str, value: str) -> int:
    """The delivery-sequence half of a deliveries cursor."""
    if not value.isdigit():
        raise ValidationFailed.on(field, "is not a valid cursor")
    return int(value)


async def webhook_deliveries(pool: asyncpg.Pool, account_id: str, webhook_id: str, *, before: str | None,
                             after: str | None, limit: int) -> dict[str, Any]:
    """The webhook's deliveries, newest first, each with every attempt (time, status code or error, duration).

    `after` pages on to older deliveries and `before` back to newer ones.
    """
    if await resources.get_state(pool, "webhook", webhook_id, account_id) is None:
        raise NotFound("webhook")
    rows, metadata = await keyset_page(
        pool, select="select seq, id, event_id, type, state, attempt_count, next_attempt_at, created_at, finished_at"
                     " from webhook_deliveries",
        conditions=["webhook_id = $1"], params=[webhook_id], keys=("created_at", "seq"), before=before,
        after=after, limit=limit, newest_first=True, key_from_cursor=_sequence)
    attempts: dict[int, list[dict[str, Any]]] = {}
    for row in await pool.fetch("select delivery_seq, attempt, attempted_at, duration_ms, status_code, error"
                                " from webhook_attempts where delivery_seq = any($1) order by delivery_seq, attempt",
                                [r["seq"] for r in rows]):
        attempts.setdefault(row["delivery_seq"], []).append({
            "attempt": row["attempt"], "attempted_at": _iso_ms(row["attempted_at"]),
            "status_code": row["status_code"], "error": row["error"], "duration_ms": round(row["duration_ms"], 1)})
    entries = [{
        "id": r["id"], "webhook_id": webhook_id, "event_id": r["event_id"], "type": r["type"], "state": r["state"],
        "attempt_count": r["attempt_count"], "created_at": _iso_ms(r["created_at"]),
        "next_attempt_at": _iso_ms(r["next_attempt_at"]) if r["state"] == "pending" else None,
        "finished_at": _iso_ms(r["finished_at"]), "attempts": attempts.get(r["seq"], []),
    } for r in rows]
    return {"entries": entries, "metadata": metadata}

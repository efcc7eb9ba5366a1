"""Webhook queries: the account's webhooks (read model rm_resources) and a webhook's delivery log.

Whether a webhook is `failing` is the dispatcher's knowledge (webhook_subscriptions); the delivery
log is its outbox and attempts. A deleted webhook, or another account's, is 404.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from projections.resources import queries as resources
from projections.webhooks import queries as deliveries
from services.query.reads import Reads, page_limit
from shared.domain.webhooks import webhook_resource
from shared.errors import NotFound, ValidationFailed
from shared.messages.queries import GetById, ListQuery, WebhookDeliveries


def _iso_ms(moment: datetime | None) -> str | None:
    """ISO-8601 UTC with milliseconds: attempts are often less than a second apart."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


async def webhooks_list(reads: Reads, query: ListQuery) -> dict[str, Any]:
    """The account's webhooks, oldest first, without their secrets."""
    states, metadata = await resources.page(reads.pool, "webhook", query.account_id, before=query.before,
                                            after=query.after, limit=page_limit(query.limit))
    failing = await deliveries.failing(reads.pool, [s.webhook_id for s in states])
    return {"entries": [webhook_resource(s, "failing" if s.webhook_id in failing else None) for s in states],
            "metadata": metadata}


async def webhook_get(reads: Reads, query: GetById) -> dict[str, Any]:
    """One webhook, without its secret."""
    state = await resources.get_state(reads.pool, "webhook", query.id, query.account_id)
    if state is None:
        raise NotFound("webhook")
    failing = await deliveries.failing(reads.pool, [state.webhook_id])
    return webhook_resource(state, "failing" if failing else None)


def _sequence(field: str, value: str) -> int:
    """The delivery-sequence half of a deliveries cursor."""
    if not value.isdigit():
        raise ValidationFailed.on(field, "is not a valid cursor")
    return int(value)


async def webhook_deliveries(reads: Reads, query: WebhookDeliveries) -> dict[str, Any]:
    """The webhook's deliveries, newest first, each with every attempt (time, status code or error, duration).

    `after` pages on to older deliveries and `before` back to newer ones.
    """
    limit = page_limit(query.limit)
    if await resources.get_state(reads.pool, "webhook", query.webhook_id, query.account_id) is None:
        raise NotFound("webhook")
    rows, metadata = await deliveries.deliveries_page(reads.pool, query.webhook_id, before=query.before,
                                                      after=query.after, limit=limit, key_from_cursor=_sequence)
    attempts: dict[int, list[dict[str, Any]]] = {}
    for row in await deliveries.attempts_of(reads.pool, [r["seq"] for r in rows]):
        attempts.setdefault(row["delivery_seq"], []).append({
            "attempt": row["attempt"], "attempted_at": _iso_ms(row["attempted_at"]),
            "status_code": row["status_code"], "error": row["error"], "duration_ms": round(row["duration_ms"], 1)})
    entries = [{
        "id": r["id"], "webhook_id": query.webhook_id, "event_id": r["event_id"], "type": r["type"],
        "state": r["state"], "attempt_count": r["attempt_count"], "created_at": _iso_ms(r["created_at"]),
        "next_attempt_at": _iso_ms(r["next_attempt_at"]) if r["state"] == "pending" else None,
        "finished_at": _iso_ms(r["finished_at"]), "attempts": attempts.get(r["seq"], []),
    } for r in rows]
    return {"entries": entries, "metadata": metadata}


HANDLERS: dict[str, Callable[[Any, Any], Awaitable[Any]]]
HANDLERS = {"webhooks_list": webhooks_list, "webhook_get": webhook_get, "webhook_deliveries": webhook_deliveries}

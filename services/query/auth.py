"""Who is calling: the account and user of a token, and whether a public account exists."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from projections.resources import queries as resources
from services.query.reads import Reads
from shared.errors import Unauthorized
from shared.messages.queries import PublicAccount, WhoAmI


async def whoami(reads: Reads, query: WhoAmI) -> dict[str, Any]:
    """The account and user of a token. A miss waits once for the read models to reach the log's head:
    a token issued a moment ago (by the CLI, over NATS) works at once."""
    row = await resources.user_of_token(reads.pool, query.token_hash)
    if row is None:
        await reads.wait_for_head()
        row = await resources.user_of_token(reads.pool, query.token_hash)
    if row is None:
        raise Unauthorized("missing or unknown API token")
    return {"account_id": row["account_id"], "user_id": row["user_id"]}


async def account_exists(reads: Reads, query: PublicAccount) -> dict[str, Any]:
    """The account of a public request, or unauthorized (after waiting once for the log's head)."""
    if await resources.get_state(reads.pool, "account", query.account_id, query.account_id) is None:
        await reads.wait_for_head()
    if await resources.get_state(reads.pool, "account", query.account_id, query.account_id) is None:
        raise Unauthorized("unknown account")
    return {"account_id": query.account_id}


HANDLERS: dict[str, Callable[[Any, Any], Awaitable[Any]]]
HANDLERS = {"whoami": whoami, "account_exists": account_exists}

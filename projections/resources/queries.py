"""Reading resources: one by id (within its account), or a page of a list with opaque cursors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from projections.pagination import keyset_page
from projections.resources.projector import decode_state
from shared.domain.registry import STREAM_KINDS, StreamKind

_KINDS: dict[str, StreamKind] = {k.kind: k for k in STREAM_KINDS}


async def get_state(pool: asyncpg.Pool, kind: str, resource_id: str, account_id: str) -> Any | None:
    """The resource's domain state, or None when missing, deleted or another account's."""
    row = await pool.fetchrow("select state from rm_resources where kind = $1 and id = $2 and account_id = $3"
                              " and not deleted", kind, resource_id, account_id)
    return decode_state(_KINDS[kind], row["state"]) if row else None


async def get_any(pool: asyncpg.Pool, kind: str, resource_id: str) -> tuple[Any, str, int] | None:
    """A resource of any account with its account and stream version (signed links carry no account)."""
    row = await pool.fetchrow("select state, account_id, version from rm_resources where kind = $1 and id = $2"
                              " and not deleted", kind, resource_id)
    return (decode_state(_KINDS[kind], row["state"]), row["account_id"], row["version"]) if row else None


async def link_by_slugs(pool: asyncpg.Pool, scope_slug: str, link_slug: str) -> tuple[Any, str] | None:
    """The link at `…/book/<scope slug>/<link slug>` with its account, or None."""
    rows = await pool.fetch("select state, account_id from rm_resources where kind = 'link' and not deleted"
                            " and state->'scope'->>'slug' = $1 and state->'settings'->>'slug' = $2 limit 2",
                            scope_slug, link_slug)
    if len(rows) != 1:
        return None
    return decode_state(_KINDS["link"], rows[0]["state"]), rows[0]["account_id"]


async def provider_bookings(pool: asyncpg.Pool, provider_id: str, upcoming_from: datetime,
                            limit: int = 500) -> list[tuple[str, Any, int]]:
    """A provider's confirmed events and appointments ending after `upcoming_from`: (kind, state, version)."""
    rows = await pool.fetch(
        "select kind, state, version from rm_resources where not deleted and status = 'confirmed' and ("
        " (kind = 'event' and state->'created'->'provider_ids' ? $1 and (state->>'end_at')::timestamptz > $2)"
        " or (kind = 'appointment' and state->'created'->>'provider_id' = $1"
        " and coalesce(state->>'moved_end_at', state->'created'->>'end_at')::timestamptz > $2)) order by sort_at, id limit $3",
        provider_id, upcoming_from, limit)
    return [(r["kind"], decode_state(_KINDS[r["kind"]], r["state"]), r["version"]) for r in rows]


async def page(pool: asyncpg.Pool, kind: str, account_id: str, *, where: str = "", args: tuple[Any, ...] = (),
               before: str | None = None, after: str | None = None, limit: int = 20) -> tuple[list[Any], dict]:
    """One page of a kind's resources ordered by (sort_at, id), as domain states, plus its metadata."""
    rows, metadata = await keyset_page(
        pool, select="select id, sort_at, state from rm_resources",
        conditions=["kind = $1", "account_id = $2", "not deleted"] + ([where] if where else []),
        params=[kind, account_id, *args], keys=("sort_at", "id"), before=before, after=after, limit=limit)
    return [decode_state(_KINDS[kind], r["state"]) for r in rows], metadata


async def user_of_token(pool: asyncpg.Pool, token_hash: str) -> asyncpg.Record | None:
    """The account and user of an API token's hash, or None."""
    return await pool.fetchrow("select account_id, user_id from rm_tokens where token_hash = $1", token_hash)


async def events_page(pool: asyncpg.Pool, account_id: str, *, state: str | None, upcoming_from: datetime | None,
                      past_before: datetime | None, before: str | None, after: str | None,
                      limit: int) -> tuple[list[Any], dict]:
    """One page of the account's events, optionally by status and by start before or after an instant."""
    conditions: list[str] = []
    args: list[Any] = []
    for value, condition in ((state, "status = $%d"), (upcoming_from, "sort_at >= $%d"),
                             (past_before, "sort_at < $%d")):
        if value is not None:
            args.append(value)
            conditions.append(condition % (len(args) + 2))
    return await page(pool, "event", account_id, where=" and ".join(conditions), args=tuple(args), before=before,
                      after=after, limit=limit)


async def links_hosted_page(pool: asyncpg.Pool, account_id: str, provider_id: str | None, *, after: str | None,
                            limit: int) -> tuple[list[Any], dict]:
    """One page of the account's links, or of those `provider_id` hosts."""
    where, args = ("state->'settings'->'hosts' ? $3", (provider_id,)) if provider_id else ("", ())
    return await page(pool, "link", account_id, where=where, args=args, after=after, limit=limit)


async def scheduled_events_page(pool: asyncpg.Pool, account_id: str, *, provider_id: str | None,
                                status: str | None, min_start: datetime | None, max_start: datetime | None,
                                invitee_email: str | None, before: str | None, after: str | None, limit: int,
                                newest_first: bool) -> tuple[list[Any], dict]:
    """One page of the account's events for Calendly's scheduled_events: by host, status, start and invitee."""
    conditions: list[str] = ["kind = $1", "account_id = $2"]
    args: list[Any] = ["event", account_id]
    for value, condition in ((provider_id, "state->'created'->'provider_ids' ? ${}"), (status, "status = ${}"),
                             (min_start, "sort_at >= ${}"), (max_start, "sort_at < ${}"),
                             (invitee_email, "lower(state->'created'->'scheduler'->>'email') = lower(${})")):
        if value is not None:
            args.append(value)
            conditions.append(condition.format(len(args)))
    rows, metadata = await keyset_page(pool, select="select id, sort_at, state from rm_resources",
                                       conditions=conditions, params=args, keys=("sort_at", "id"), before=before,
                                       after=after, limit=limit, newest_first=newest_first)
    return [decode_state(_KINDS["event"], r["state"]) for r in rows], metadata


async def all_states(pool: asyncpg.Pool, kind: str, account_id: str) -> list[Any]:
    """Every live resource of a kind in the account (for the short lists Calendly sorts and pages itself)."""
    rows = await pool.fetch("select state from rm_resources where kind = $1 and account_id = $2 and not deleted"
                            " order by sort_at, id", kind, account_id)
    return [decode_state(_KINDS[kind], r["state"]) for r in rows]


def decode_kind(kind: str, data: bytes) -> Any:
    """A stored state of `kind` (a row's `state` column) as its domain state."""
    return decode_state(_KINDS[kind], data)

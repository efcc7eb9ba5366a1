"""Reading resources: one by id (within its account), or a page of a list with opaque cursors."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from projections.resources.projector import decode_state
from shared.domain.registry import STREAM_KINDS, StreamKind
from shared.errors import ValidationFailed

_KINDS: dict[str, StreamKind] = {k.kind: k for k in STREAM_KINDS}


async def get_state(pool: asyncpg.Pool, kind: str, resource_id: str, account_id: str) -> Any | None:
    """The resource's domain state, or None when missing, deleted or another account's."""
    row = await pool.fetchrow("select state from rm_resources where kind = $1 and id = $2 and account_id = $3"
                              " and not deleted", kind, resource_id, account_id)
    return decode_state(_KINDS[kind], row["state"]) if row else None


class Cursor(msgspec.Struct, array_like=True):
    sort_at: str
    id: str


def encode_cursor(sort_at: datetime, resource_id: str) -> str:
    raw = msgspec.msgpack.encode(Cursor(sort_at.isoformat(), resource_id))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(field: str, value: str) -> tuple[datetime, str]:
    """A cursor this service made, or a 422 on the field that carried it."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        cursor = msgspec.msgpack.decode(raw, type=Cursor)
        return datetime.fromisoformat(cursor.sort_at), cursor.id
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise ValidationFailed.on(field, "is not a valid cursor") from None


async def page(pool: asyncpg.Pool, kind: str, account_id: str, *, where: str = "", args: tuple[Any, ...] = (),
               before: str | None = None, after: str | None = None, limit: int = 20) -> tuple[list[Any], dict]:
    """One page of a list ordered by (sort_at, id), plus its metadata {before, after, limit}.

    `after` continues forward from a cursor and `before` backward, so walking `after` then `before`
    visits every item once.
    """
    if before and after:
        raise ValidationFailed.on("before", "cannot be combined with after")
    params: list[Any] = [kind, account_id, *args]
    conditions = ["kind = $1", "account_id = $2", "not deleted"] + ([where] if where else [])
    backwards = before is not None
    if before or after:
        sort_at, resource_id = decode_cursor("before" if backwards else "after", before or after or "")
        params += [sort_at, resource_id]
        op = "<" if backwards else ">"
        conditions.append(f"(sort_at, id) {op} (${len(params) - 1}, ${len(params)})")
    order = "desc" if backwards else "asc"
    params.append(limit + 1)
    rows = await pool.fetch(
        f"select id, sort_at, state from rm_resources where {' and '.join(conditions)}"
        f" order by sort_at {order}, id {order} limit ${len(params)}", *params)
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    states = [decode_state(_KINDS[kind], r["state"]) for r in rows]
    first, last = (rows[0], rows[-1]) if rows else (None, None)
    has_before = (more if backwards else bool(after)) and first is not None
    has_after = (bool(before) if backwards else more) and last is not None
    metadata = {
        "before": encode_cursor(first["sort_at"], first["id"]) if has_before and first else None,
        "after": encode_cursor(last["sort_at"], last["id"]) if has_after and last else None,
        "limit": limit,
    }
    return states, metadata


async def user_of_token(pool: asyncpg.Pool, token_hash: str) -> asyncpg.Record | None:
    return await pool.fetchrow("select account_id, user_id from rm_tokens where token_hash = $1", token_hash)

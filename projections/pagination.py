"""Keyset pagination with opaque cursors, shared by every list the query service answers."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from shared.errors import ValidationFailed


class Cursor(msgspec.Struct, array_like=True):
    """What an opaque list cursor holds: the row's sort timestamp and its id as the tie-breaker."""

    sort_at: str
    id: str


def encode_cursor(sort_at: datetime, key: str) -> str:
    """The opaque cursor of the row at (sort_at, key), as lists return it."""
    raw = msgspec.msgpack.encode(Cursor(sort_at.isoformat(), key))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(field: str, value: str) -> tuple[datetime, str]:
    """A cursor this service made, or a 422 on the field that carried it."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        cursor = msgspec.msgpack.decode(raw, type=Cursor)
        return datetime.fromisoformat(cursor.sort_at), cursor.id
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise ValidationFailed.on(field, "is not a valid cursor") from None


async def keyset_page(
    pool: asyncpg.Pool, *, select: str, conditions: list[str], params: list[Any], keys: tuple[str, str],
    before: str | None, after: str | None, limit: int, newest_first: bool = False,
    key_from_cursor: Callable[[str, str], Any] = lambda field, value: value,
) -> tuple[list[asyncpg.Record], dict[str, Any]]:
    """One page of rows ordered by `keys` (a timestamp, then a tie-breaker), and its {before, after, limit}.

    `after` continues in list order from a cursor and `before` goes back, so walking `after` then
    `before` visits every row once. `select` is the query up to its WHERE; `conditions` use `params`.
    """
    if before and after:
        raise ValidationFailed.on("before", "cannot be combined with after")
    backwards = before is not None
    conditions, params = list(conditions), list(params)
    if before or after:
        field = "before" if backwards else "after"
        sort_at, key = decode_cursor(field, before or after or "")
        params += [sort_at, key_from_cursor(field, key)]
        onward = "<" if newest_first else ">"
        op = {"<": ">", ">": "<"}[onward] if backwards else onward
        conditions.append(f"({keys[0]}, {keys[1]}) {op} (${len(params) - 1}, ${len(params)})")
    order = "asc" if newest_first == backwards else "desc"
    params.append(limit + 1)
    rows = await pool.fetch(f"{select} where {' and '.join(conditions)}"
                            f" order by {keys[0]} {order}, {keys[1]} {order} limit ${len(params)}", *params)
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    has_before = bool(rows) and (more if backwards else bool(after))
    has_after = bool(rows) and (bool(before) if backwards else more)
    metadata = {
        "before": encode_cursor(rows[0][keys[0]], str(rows[0][keys[1]])) if has_before else None,
        "after": encode_cursor(rows[-1][keys[0]], str(rows[-1][keys[1]])) if has_after else None,
        "limit": limit,
    }
    return rows, metadata

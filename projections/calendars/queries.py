"""Reading provider calendars for a time window: what the engine needs, nothing older."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
import msgspec

from shared.availability import Busy, HostCalendar, ProviderSchedule

# Buffers are at most a day: a booking that ended this much before the window cannot touch it.
_MARGIN = timedelta(days=1, minutes=1)
_schedule = msgspec.json.Decoder(ProviderSchedule)


def _ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


async def providers(conn: asyncpg.Connection | asyncpg.Pool, provider_ids: list[str]) -> dict[str, asyncpg.Record]:
    rows = await conn.fetch("select * from rm_providers where provider_id = any($1)", provider_ids)
    return {r["provider_id"]: r for r in rows}


async def host_calendars(conn: asyncpg.Connection | asyncpg.Pool, provider_ids: list[str], now: int, start: int,
                         end: int, extra_busy: dict[str, list[Busy]] | None = None) -> list[HostCalendar]:
    """The engine's view of each provider (in the given order) for [start, end) at `now`."""
    if not provider_ids:
        return []
    found = await providers(conn, provider_ids)
    window_start, window_end = _ts(start) - _MARGIN, _ts(end) + _MARGIN
    reservations = await conn.fetch(
        "select provider_id, kind, start_at, end_at, buffer_before, buffer_after, expires_at from rm_reservations"
        " where provider_id = any($1) and end_at > $2 and start_at < $3",
        provider_ids, window_start, window_end)
    external = await conn.fetch(
        "select provider_id, start_at, end_at from rm_external_busy"
        " where provider_id = any($1) and end_at > $2 and start_at < $3", provider_ids, window_start, window_end)
    busy: dict[str, list[Busy]] = defaultdict(list)
    starts: dict[str, list[int]] = defaultdict(list)
    for r in reservations:
        if r["expires_at"] is not None and r["expires_at"].timestamp() <= now:
            continue  # an expired hold occupies nothing, swept or not
        a, b = int(r["start_at"].timestamp()), int(r["end_at"].timestamp())
        busy[r["provider_id"]].append(Busy(a, b, r["buffer_before"] * 60, r["buffer_after"] * 60))
        if r["kind"] in ("event", "appointment"):
            starts[r["provider_id"]].append(a)
    for r in external:
        busy[r["provider_id"]].append(Busy(int(r["start_at"].timestamp()), int(r["end_at"].timestamp())))
    for provider_id, more in (extra_busy or {}).items():
        busy[provider_id].extend(more)
    return [HostCalendar(provider_id=p, schedule=_schedule.decode(found[p]["schedule"]), busy=busy[p],
                         booking_starts=starts[p])
            for p in provider_ids if p in found]


async def busy_rows(conn: asyncpg.Pool, provider_id: str, start: int, end: int) -> list[dict[str, Any]]:
    """Reservations and external busy times overlapping [start, end), for the busy-times endpoints."""
    rows = await conn.fetch(
        "select kind, reservation_id, start_at, end_at, buffer_before, buffer_after, expires_at from rm_reservations"
        " where provider_id = $1 and end_at > $2 and start_at < $3 order by start_at",
        provider_id, _ts(start) - _MARGIN, _ts(end) + _MARGIN)
    external = await conn.fetch("select start_at, end_at from rm_external_busy where provider_id = $1"
                                " and end_at > $2 and start_at < $3 order by start_at", provider_id, _ts(start),
                                _ts(end))
    return [dict(r) for r in rows] + [{"kind": "external", **dict(r)} for r in external]

"""Reading provider calendars for a time window: what the engine needs, nothing older."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from shared.availability import Busy, HostCalendar, ProviderSchedule
from shared.availability.occupancy import EXTERNAL, Occupancy, Reservation, occupancy, occupants

# Buffers are at most a day: a booking that ended this much before the window cannot touch it.
_MARGIN = timedelta(days=1, minutes=1)
_schedule = msgspec.json.Decoder(ProviderSchedule)


def _ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


async def providers(conn: asyncpg.Connection | asyncpg.Pool, provider_ids: list[str]) -> dict[str, asyncpg.Record]:
    """The rm_providers rows of these providers, by provider id (unknown ids are left out)."""
    rows = await conn.fetch("select * from rm_providers where provider_id = any($1)", provider_ids)
    return {r["provider_id"]: r for r in rows}


# One round trip for everything the engine needs of some providers in a window. Instants come back
# as epoch seconds: building a datetime per row would cost more than the query itself.
_WINDOW = """
    select provider_id, 'schedule' as kind, null as reservation_id, 0::bigint, 0::bigint, 0, 0, null::bigint,
           schedule
      from rm_providers where provider_id = any($1)
    union all
    select provider_id, kind, reservation_id, extract(epoch from start_at)::bigint,
           extract(epoch from end_at)::bigint, buffer_before, buffer_after, extract(epoch from expires_at)::bigint,
           null
      from rm_reservations where provider_id = any($1) and end_at > $2 and start_at < $3
    union all
    select provider_id, 'external', null, extract(epoch from start_at)::bigint, extract(epoch from end_at)::bigint,
           0, 0, null, null
      from rm_external_busy where provider_id = any($1) and end_at > $2 and start_at < $3
"""


def window_occupancy(rows: list[Any], now: float) -> tuple[dict[str, ProviderSchedule], dict[str, Occupancy]]:
    """`_WINDOW` rows turned into reservation values, and what occupies each provider at `now`
    (shared.availability.occupancy, the rule the command side calls on its fold)."""
    schedules: dict[str, ProviderSchedule] = {}
    held: dict[str, list[Reservation]] = defaultdict(list)
    external: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for provider_id, kind, reservation_id, a, b, before, after, expires_at, schedule in rows:
        if kind == "schedule":
            schedules[provider_id] = _schedule.decode(schedule)
        elif kind == EXTERNAL:
            external[provider_id].append((a, b))
        else:
            held[provider_id].append(Reservation(reservation_id, kind, a, b, before * 60, after * 60, expires_at))
    return schedules, {p: occupancy(held[p], external[p], now) for p in schedules}


async def host_calendars(conn: asyncpg.Connection | asyncpg.Pool, provider_ids: list[str], now: int, start: int,
                         end: int, extra_busy: dict[str, list[Busy]] | None = None,
                         exclude: str | None = None) -> list[HostCalendar]:
    """The engine's view of each provider (in the given order) for [start, end) at `now`.

    `exclude` names a reservation that does not count (a booking being rescheduled frees its own time).
    """
    if not provider_ids:
        return []
    rows = await conn.fetch(_WINDOW, provider_ids, _ts(start) - _MARGIN, _ts(end) + _MARGIN)
    if exclude is not None:
        rows = [row for row in rows if row[2] != exclude]
    schedules, occupied = window_occupancy(rows, now)
    for provider_id, more in (extra_busy or {}).items():
        if provider_id in occupied:
            occupied[provider_id].busy.extend(more)
    return [HostCalendar(provider_id=p, schedule=schedules[p], busy=occupied[p].busy,
                         booking_starts=occupied[p].booking_starts)
            for p in provider_ids if p in schedules]


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


async def busy_times(conn: asyncpg.Pool, provider_id: str, now: float, start: int, end: int) -> list[Reservation]:
    """What occupies a provider at `now` with its buffer zones overlapping [start, end), by start (the
    busy-times endpoints): `busy_rows` turned into reservation values and given to the occupancy rule."""
    held: list[Reservation] = []
    external: list[tuple[int, int]] = []
    for row in await busy_rows(conn, provider_id, start, end):
        a, b = int(row["start_at"].timestamp()), int(row["end_at"].timestamp())
        if row["kind"] == EXTERNAL:
            external.append((a, b))
        else:
            expires_at = row["expires_at"]
            held.append(Reservation(row["reservation_id"], row["kind"], a, b, 60 * row["buffer_before"],
                                    60 * row["buffer_after"],
                                    None if expires_at is None else int(expires_at.timestamp())))
    return occupants(held, external, now, during=(start, end))

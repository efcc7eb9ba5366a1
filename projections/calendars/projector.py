"""Projector of provider calendars: each event touches only its own provider's rows."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import msgspec

from projections.runner import Projection
from shared.availability import ProviderSchedule, parse_instant
from shared.domain.core import UnfoldedEvent
from shared.domain.reservations import replace_window
from shared.eventstore import RecordedEvent
from shared.messages.events import (
    Event,
    ExternalBusyTimesSynced,
    ProviderCreated,
    ProviderScheduleSet,
    ReservationMoved,
    TimeReleased,
    TimeReserved,
)


def _at(text: str) -> datetime:
    return datetime.fromtimestamp(parse_instant(text), UTC)


async def apply(conn: asyncpg.Connection, recorded: RecordedEvent, event: Event) -> None:
    """Write one event into its provider's rows of the calendars read model."""
    match event:
        case ProviderCreated():
            schedule = ProviderSchedule(time_zone=event.time_zone)
            await conn.execute(
                "insert into rm_providers values ($1, $2, $3, $4, $5, $6, $7, false) on conflict do nothing",
                event.provider_id, event.account_id, event.display_name, event.email, event.user_id,
                event.created_at, msgspec.json.encode(schedule))
        case ProviderScheduleSet():
            await conn.execute("update rm_providers set schedule = $2, public_bookings = $3 where provider_id = $1",
                               event.provider_id, msgspec.json.encode(event.schedule),
                               event.schedule.public_bookings.enabled)
        case TimeReserved():
            await conn.execute(
                "insert into rm_reservations values ($1, $2, $3, $4, $5, $6, $7, $8)"
                " on conflict (provider_id, reservation_id) do update set kind = excluded.kind,"
                " start_at = excluded.start_at, end_at = excluded.end_at, buffer_before = excluded.buffer_before,"
                " buffer_after = excluded.buffer_after, expires_at = excluded.expires_at",
                event.provider_id, event.reservation_id, event.kind, _at(event.start_at), _at(event.end_at),
                event.buffer_before, event.buffer_after, _at(event.expires_at) if event.expires_at else None)
        case TimeReleased():
            await conn.execute("delete from rm_reservations where provider_id = $1 and reservation_id = $2",
                               event.provider_id, event.reservation_id)
        case ReservationMoved():
            await conn.execute("update rm_reservations set start_at = $3, end_at = $4"
                               " where provider_id = $1 and reservation_id = $2",
                               event.provider_id, event.reservation_id, _at(event.start_at), _at(event.end_at))
        case ExternalBusyTimesSynced():
            start, end = parse_instant(event.from_at), parse_instant(event.until_at)
            rows = await conn.fetch(
                "delete from rm_external_busy where provider_id = $1 and end_at > $2 and start_at < $3"
                " returning start_at, end_at", event.provider_id, _ts(start), _ts(end))
            current = [(int(r[0].timestamp()), int(r[1].timestamp())) for r in rows]
            new = [(parse_instant(b.start_at), parse_instant(b.end_at)) for b in event.busy_times]
            kept = replace_window(current, start, end, new)
            await conn.executemany("insert into rm_external_busy values ($1, $2, $3)",
                                   [(event.provider_id, _ts(a), _ts(b)) for a, b in kept])
        case _:
            # Only PROJECTION.event_types reach here; one without its case is a bug, not an event to drop.
            raise UnfoldedEvent(f"calendars read {recorded.type} but have no case for it")


def _ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


_Row = tuple[str, str, str, datetime, datetime, int, int, datetime | None]


async def apply_batch(conn: asyncpg.Connection, batch: list[tuple[RecordedEvent, Event]]) -> None:
    """Apply a batch in order, with the reservations' changes folded into one write per reservation.

    Each reservation ends the batch in one of three ways: a whole row (reserved, perhaps moved after),
    deleted (released last), or only moved (its row was written by an earlier batch). Those are written
    with three statements over arrays; every other event is applied as `apply` does, in order (they
    touch other tables). Replaying the batch writes the same rows.
    """
    rows: dict[tuple[str, str], _Row] = {}
    deleted: set[tuple[str, str]] = set()
    moved: dict[tuple[str, str], tuple[datetime, datetime]] = {}
    for recorded, event in batch:
        match event:
            case TimeReserved():
                key = (event.provider_id, event.reservation_id)
                deleted.discard(key)
                moved.pop(key, None)
                rows[key] = (event.provider_id, event.reservation_id, event.kind, _at(event.start_at),
                             _at(event.end_at), event.buffer_before, event.buffer_after,
                             _at(event.expires_at) if event.expires_at else None)
            case TimeReleased():
                key = (event.provider_id, event.reservation_id)
                rows.pop(key, None)
                moved.pop(key, None)
                deleted.add(key)
            case ReservationMoved():
                key = (event.provider_id, event.reservation_id)
                if key in rows:
                    row = rows[key]
                    rows[key] = (*row[:3], _at(event.start_at), _at(event.end_at), *row[5:])  # type: ignore[assignment]
                elif key not in deleted:
                    moved[key] = (_at(event.start_at), _at(event.end_at))
            case _:
                await apply(conn, recorded, event)
    if deleted:
        await conn.execute("delete from rm_reservations r using unnest($1::text[], $2::text[]) as d(p, id)"
                           " where r.provider_id = d.p and r.reservation_id = d.id",
                           [k[0] for k in deleted], [k[1] for k in deleted])
    if rows:
        columns = list(zip(*rows.values(), strict=True))
        await conn.execute(
            "insert into rm_reservations select * from unnest($1::text[], $2::text[], $3::text[],"
            " $4::timestamptz[], $5::timestamptz[], $6::int[], $7::int[], $8::timestamptz[])"
            " on conflict (provider_id, reservation_id) do update set kind = excluded.kind,"
            " start_at = excluded.start_at, end_at = excluded.end_at, buffer_before = excluded.buffer_before,"
            " buffer_after = excluded.buffer_after, expires_at = excluded.expires_at", *map(list, columns))
    if moved:
        await conn.execute(
            "update rm_reservations r set start_at = m.a, end_at = m.b from unnest($1::text[], $2::text[],"
            " $3::timestamptz[], $4::timestamptz[]) as m(p, id, a, b) where r.provider_id = m.p"
            " and r.reservation_id = m.id", [k[0] for k in moved], [k[1] for k in moved],
            [v[0] for v in moved.values()], [v[1] for v in moved.values()])


PROJECTION = Projection(
    name="calendars",
    tables=("rm_providers", "rm_reservations", "rm_external_busy"),
    event_types=frozenset({"provider_created", "provider_schedule_set", "time_reserved", "time_released",
                           "reservation_moved", "external_busy_times_synced"}),
    apply=apply_batch,
    kinds=frozenset({"provider"}),  # every event of a provider stream is applied, none ignored
)

"""Projector of provider calendars: each event touches only its own provider's rows."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import msgspec

from projections.runner import Projection, one_by_one
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


PROJECTION = Projection(
    name="calendars",
    tables=("rm_providers", "rm_reservations", "rm_external_busy"),
    event_types=frozenset({"provider_created", "provider_schedule_set", "time_reserved", "time_released",
                           "reservation_moved", "external_busy_times_synced"}),
    apply=one_by_one(apply),
    kinds=frozenset({"provider"}),  # every event of a provider stream is applied, none ignored
)

"""Projector of provider calendars: each event touches only its own provider's rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from projections.runner import Projection, events_up_to
from projections.swap import replace_tables
from shared.availability import ProviderSchedule, parse_instant
from shared.domain.core import UnfoldedEvent
from shared.domain.reservations import replace_window
from shared.eventstore import LogCursor, RecordedEvent
from shared.messages.events import (
    Event,
    ExternalBusyTimesSynced,
    ProviderCreated,
    ProviderScheduleSet,
    ReservationMoved,
    TimeReleased,
    TimeReserved,
    decode_event,
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


class FoldedCalendars:
    """The calendars read model's rows folded in memory, as `apply`'s statements would leave the tables.

    Each case mirrors its statement: a provider is inserted once (a later ProviderCreated changes nothing)
    and only an existing one takes a schedule; a reservation is upserted whole, deleted, or moved when it
    exists; external busy times are replaced inside the synced window. Rows need no provider, as in SQL.
    Instants stay epoch seconds until the rows are written.
    """

    def __init__(self) -> None:
        self.providers: dict[str, list[Any]] = {}
        self.reservations: dict[tuple[str, str], list[Any]] = {}
        self.external: dict[str, list[tuple[int, int]]] = {}

    def apply(self, event: Event) -> None:
        """Fold one calendars event."""
        match event:
            case TimeReserved():
                self.reservations[(event.provider_id, event.reservation_id)] = [
                    event.kind, parse_instant(event.start_at), parse_instant(event.end_at), event.buffer_before,
                    event.buffer_after, parse_instant(event.expires_at) if event.expires_at else None]
            case TimeReleased():
                self.reservations.pop((event.provider_id, event.reservation_id), None)
            case ReservationMoved():
                row = self.reservations.get((event.provider_id, event.reservation_id))
                if row is not None:
                    row[1], row[2] = parse_instant(event.start_at), parse_instant(event.end_at)
            case ProviderCreated():
                if event.provider_id not in self.providers:
                    self.providers[event.provider_id] = [
                        event.account_id, event.display_name, event.email, event.user_id, event.created_at,
                        msgspec.json.encode(ProviderSchedule(time_zone=event.time_zone)), False]
            case ProviderScheduleSet():
                provider = self.providers.get(event.provider_id)
                if provider is not None:
                    provider[5] = msgspec.json.encode(event.schedule)
                    provider[6] = event.schedule.public_bookings.enabled
            case ExternalBusyTimesSynced():
                self.external[event.provider_id] = replace_window(
                    self.external.get(event.provider_id, []), parse_instant(event.from_at),
                    parse_instant(event.until_at),
                    [(parse_instant(b.start_at), parse_instant(b.end_at)) for b in event.busy_times])
            case _:
                raise UnfoldedEvent(f"calendars read {type(event).__name__} but have no case for it")

    async def write(self, conn: asyncpg.Connection) -> None:
        """Make the tables hold exactly these rows (fresh tables filled with COPY, swapped in)."""
        await replace_tables(conn, {
            "rm_providers": [(provider_id, *row) for provider_id, row in self.providers.items()],
            "rm_reservations": [
                (provider_id, reservation_id, kind, _ts(start), _ts(end), before, after,
                 _ts(expires) if expires is not None else None)
                for (provider_id, reservation_id), (kind, start, end, before, after, expires)
                in self.reservations.items()],
            "rm_external_busy": [(provider_id, _ts(start), _ts(end))
                                 for provider_id, busy in self.external.items() for start, end in busy],
        })


async def rebuild(conn: asyncpg.Connection, end: LogCursor) -> int:
    """The whole read model from the log up to `end`: folded in memory, then written with COPY."""
    folded, read = FoldedCalendars(), 0
    async for batch in events_up_to(conn, PROJECTION.event_types, end):
        for data in batch:
            folded.apply(decode_event(data))
        read += len(batch)
    await folded.write(conn)
    return read


PROJECTION = Projection(
    name="calendars",
    tables=("rm_providers", "rm_reservations", "rm_external_busy"),
    event_types=frozenset({"provider_created", "provider_schedule_set", "time_reserved", "time_released",
                           "reservation_moved", "external_busy_times_synced"}),
    apply=apply_batch,
    kinds=frozenset({"provider"}),  # every event of a provider stream is applied, none ignored
    rebuild=rebuild,
)

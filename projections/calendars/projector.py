"""Projector of provider calendars: each event touches only its own provider's rows."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

import asyncpg
import msgspec

from projections.runner import Projection
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
    Instants stay epoch seconds until the rows are written. The rebuild folds only the external busy times
    here (their windows are replaced in order, and they are few); the tests fold everything, as a third
    opinion beside the incremental projector and the rebuild.
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

    def rows(self) -> dict[str, list[tuple[Any, ...]]]:
        """Each table's rows, in its column order, as `apply` would have written them."""
        return {
            "rm_providers": [(provider_id, *row) for provider_id, row in self.providers.items()],
            "rm_reservations": [
                (provider_id, reservation_id, kind, _ts(start), _ts(end), before, after,
                 _ts(expires) if expires is not None else None)
                for (provider_id, reservation_id), (kind, start, end, before, after, expires)
                in self.reservations.items()],
            "rm_external_busy": [(provider_id, _ts(start), _ts(end))
                                 for provider_id, busy in self.external.items() for start, end in busy],
        }


# The rebuild: one statement reads the calendars' events up to the rebuild's end cursor once (one scan of
# the log: the same bound as `events_up_to`, $1 tx_id and $2 position), folds providers and reservations
# set-based into the fresh tables, and returns what Python writes itself (see `_fill`). Commit order is
# (tx_id, position). Ids are compared bytewise (collate "C"): equality is the same under any deterministic
# collation, and sorting by it is cheaper.
#
# Reservations: the newest TimeReserved or TimeReleased of each decides (`settled`). A TimeReleased: no row
# (it deleted the row, and a move after it finds none). A TimeReserved: its row, with the times of the
# newest ReservationMoved if that came after it (`moved`; one before it was overwritten by it). Events
# before a reservation's first TimeReserved find no row and change nothing, here too.
#
# Providers: the first ProviderCreated, with a schedule of only its time zone; the last ProviderScheduleSet
# after that one replaces it (one before it is ignored, as the UPDATE of no row is). A schedule is the
# event's JSON as stored; `_normalize_schedules` then writes each distinct one as `apply` encodes it.
#
# Instants Postgres reads exactly as `parse_instant` does are the shape every command writes (`iso_utc`):
# "YYYY-MM-DDTHH:MM:SSZ". For a text of that shape that Python parsed (every one in the log), both give the
# same second. A reservation with any other instant (an offset, a fraction, another ISO form) is returned
# as texts and written through `parse_instant`, so no parser has to agree with Python's on those.
_FOLD = """
    with calendar_events as materialized (
        select type, tx_id, position, data->>'provider_id' collate "C" as provider_id,
               data->>'reservation_id' collate "C" as reservation_id, data->>'kind' as kind,
               data->>'start_at' as start_at, data->>'end_at' as end_at,
               (data->>'buffer_before')::int as buffer_before, (data->>'buffer_after')::int as buffer_after,
               nullif(data->>'expires_at', '') as expires_at,
               case when type in ('provider_created', 'provider_schedule_set', 'external_busy_times_synced')
                    then data end as data
          from events
         where type = any($3::text[]) and (tx_id, position) <= ($1::text::xid8, $2)
    ), settled as (
        select distinct on (provider_id, reservation_id) *
          from calendar_events where type in ('time_reserved', 'time_released')
         order by provider_id, reservation_id, tx_id desc, position desc
    ), moved as (
        select distinct on (provider_id, reservation_id) *
          from calendar_events where type = 'reservation_moved'
         order by provider_id, reservation_id, tx_id desc, position desc
    ), reservations as (
        select r.provider_id, r.reservation_id, r.kind, coalesce(m.start_at, r.start_at) as start_at,
               coalesce(m.end_at, r.end_at) as end_at, coalesce(r.buffer_before, 0) as buffer_before,
               coalesce(r.buffer_after, 0) as buffer_after, r.expires_at
          from settled r left join moved m on m.provider_id = r.provider_id and m.reservation_id = r.reservation_id
           and (m.tx_id, m.position) > (r.tx_id, r.position)
         where r.type = 'time_reserved'
         order by r.provider_id, r.reservation_id  -- the primary key's order (in a C or C.UTF-8 database)
    ), other_events as materialized (  -- providers' and busy times' events: a small fraction, scanned once
        select type, tx_id, position, provider_id, data from calendar_events
         where type in ('provider_created', 'provider_schedule_set', 'external_busy_times_synced')
    ), created as (
        select distinct on (provider_id) provider_id, tx_id, position, data
          from other_events where type = 'provider_created'
         order by provider_id, tx_id, position
    ), scheduled as (
        select distinct on (c.provider_id) c.provider_id, e.data->'schedule' as schedule
          from other_events e join created c on c.provider_id = e.provider_id
           and (e.tx_id, e.position) > (c.tx_id, c.position)
         where e.type = 'provider_schedule_set'
         order by c.provider_id, e.tx_id desc, e.position desc
    ), written_reservations as (
        insert into {rm_reservations}
        select provider_id, reservation_id, kind, start_at::timestamptz, end_at::timestamptz, buffer_before,
               buffer_after, expires_at::timestamptz
          from reservations where {canonical}
    ), written_providers as (
        insert into {rm_providers}
        select c.provider_id, c.data->>'account_id', c.data->>'display_name', c.data->>'email',
               c.data->>'user_id', c.data->>'created_at',
               coalesce(s.schedule, jsonb_build_object('time_zone', c.data->'time_zone')),
               coalesce((s.schedule->'public_bookings'->>'enabled')::boolean, false)
          from created c left join scheduled s using (provider_id)
    )
    select 'count' as what, count(*) as number, null::jsonb as data, null::xid8 as tx_id, null::bigint as position,
           null::text[] as reservation from calendar_events
    union all
    select 'busy', null, data, tx_id, position, null from other_events where type = 'external_busy_times_synced'
    union all
    select 'reservation', null, null, null, null, array[provider_id, reservation_id, kind, start_at, end_at,
           buffer_before::text, buffer_after::text, expires_at]
      from reservations where not ({canonical})
"""
_CANONICAL = ("start_at like '____-__-__T__:__:__Z' and end_at like '____-__-__T__:__:__Z'"
              " and (expires_at is null or expires_at like '____-__-__T__:__:__Z')")
_schedule = msgspec.json.Decoder(ProviderSchedule)


async def _fill(conn: asyncpg.Connection, end: LogCursor, fresh: Mapping[str, str]) -> int:
    """Fill the fresh tables with the read model as of `end`; return how many calendars events it covers."""
    rows = await conn.fetch(_FOLD.format(canonical=_CANONICAL, **fresh), str(end.tx_id), end.position,
                            sorted(PROJECTION.event_types))
    busy = FoldedCalendars()  # external busy times replace each other's windows in order: folded here
    for row in sorted((r for r in rows if r["what"] == "busy"), key=lambda r: (int(r["tx_id"]), r["position"])):
        busy.apply(decode_event(row["data"]))
    await conn.copy_records_to_table(fresh["rm_external_busy"], records=busy.rows()["rm_external_busy"])
    await conn.copy_records_to_table(fresh["rm_reservations"], records=[
        (p, r, kind, _at(start), _at(until), int(before), int(after), _at(expires) if expires else None)
        for p, r, kind, start, until, before, after, expires in
        (row["reservation"] for row in rows if row["what"] == "reservation")])
    await _normalize_schedules(conn, fresh["rm_providers"])
    return next(int(row["number"]) for row in rows if row["what"] == "count")


async def _normalize_schedules(conn: asyncpg.Connection, table: str) -> None:
    """Each distinct schedule as `apply` writes it: decoded into ProviderSchedule (defaults filled in, and
    a created provider's bare {"time_zone": ...} made whole) and encoded again. Schedules are few, shared."""
    changed = []
    for (raw,) in await conn.fetch(f"select distinct schedule from {table}"):
        normal = msgspec.json.encode(_schedule.decode(raw))
        if msgspec.json.decode(normal) != msgspec.json.decode(raw):
            changed.append((raw.decode(), normal.decode()))
    if changed:
        await conn.execute(f"update {table} t set schedule = n.normal::jsonb"
                           " from unnest($1::text[], $2::text[]) as n(raw, normal) where t.schedule = n.raw::jsonb",
                           *map(list, zip(*changed, strict=True)))


async def rebuild(conn: asyncpg.Connection, end: LogCursor) -> int:
    """The whole read model from the log up to `end`, folded in Postgres into fresh tables swapped in.

    Returns how many calendars events the fold covered.
    """
    # Each sort and materialized set of the fold in memory up to this, then on disk: at 1M events the
    # largest (the reservations' events, sorted) takes about 100 MB.
    await conn.execute("set local work_mem = '256MB'")
    return await replace_tables(conn, PROJECTION.tables, partial(_fill, conn, end))


PROJECTION = Projection(
    name="calendars",
    tables=("rm_providers", "rm_reservations", "rm_external_busy"),
    event_types=frozenset({"provider_created", "provider_schedule_set", "time_reserved", "time_released",
                           "reservation_moved", "external_busy_times_synced"}),
    apply=apply_batch,
    kinds=frozenset({"provider"}),  # every event of a provider stream is applied, none ignored
    rebuild=rebuild,
)

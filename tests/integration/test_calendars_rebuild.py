"""The calendars rebuild (folded in Postgres into fresh tables, swapped in) equals the incremental projector.

Stories: random provider histories (reservations made, released, moved, re-made; holds with expiry;
busy times synced over overlapping windows; schedules set; a provider created twice, one never
created) projected incrementally in small batches by partitioned units equal the rebuild row by row,
and a replay through the projector; seeded histories full of the fold's edge cases (instants with
offsets, fractions and other ISO forms, moves before any reservation, schedules before their provider
and stored without their defaults) equal the incremental projector and the memory fold
(`FoldedCalendars`); the fold follows commit order (tx_id, position), not positions, and stops before
a transaction still running; a reader that loads the calendars while the rebuild swaps its tables in
sees the old rows or the new ones, never empty tables.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import random
import time
from datetime import UTC, datetime, timedelta, timezone

import asyncpg
import msgspec
import pytest

from projections.calendars.memory import LiveCalendars
from projections.calendars.projector import PROJECTION as CALENDARS
from projections.calendars.projector import FoldedCalendars
from projections.runner import ProjectionRunner, partitioned, rebuild, status
from shared.availability.model import ProviderSchedule, PublicBookings, WeeklyRule
from shared.eventstore import EventStore, NewEvent, StreamAppend
from shared.messages import events as ev
from shared.messages.events import decode_event, encode_event, event_type

pytestmark = pytest.mark.integration

BASE = 1_900_000_000  # 2030-03-17, a fixed future
UNCREATED = "prov_3"  # has reservations and busy times, but no ProviderCreated
_ids = itertools.count()


def _iso(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _new(event: ev.Event) -> NewEvent:
    return NewEvent(f"evt_{next(_ids)}_{time.time_ns()}", event_type(event), encode_event(event))


def _random_event(rng: random.Random, provider: str) -> ev.Event:
    """One calendars event on `provider`: ids and times drawn from small sets, so they collide."""
    reservation = f"res_{rng.randrange(8)}"
    start = BASE + 900 * rng.randrange(200)
    choice = rng.random()
    if choice < 0.35:
        kind = rng.choice(["event", "appointment", "block", "hold"])
        return ev.TimeReserved(provider_id=provider, reservation_id=reservation, kind=kind, start_at=_iso(start),
                               end_at=_iso(start + 1800), buffer_before=rng.choice([0, 10]),
                               buffer_after=rng.choice([0, 5]),
                               expires_at=_iso(start - 600) if kind == "hold" else None)
    if choice < 0.5:
        return ev.TimeReleased(provider_id=provider, reservation_id=reservation)
    if choice < 0.65:
        return ev.ReservationMoved(provider_id=provider, reservation_id=reservation, start_at=_iso(start),
                                   end_at=_iso(start + 2700))
    if choice < 0.85:
        busy = [ev.BusyInterval(start_at=_iso(a), end_at=_iso(a + 900 * rng.randrange(1, 8)))
                for a in (start + 900 * rng.randrange(-4, 30) for _ in range(rng.randrange(4)))]
        return ev.ExternalBusyTimesSynced(provider_id=provider, from_at=_iso(start),
                                          until_at=_iso(start + 900 * rng.randrange(4, 40)), busy_times=busy)
    if choice < 0.95:
        return ev.ProviderScheduleSet(provider_id=provider, schedule=ProviderSchedule(
            time_zone=rng.choice(["Etc/UTC", "Europe/Berlin"]),
            weekly_rules=[WeeklyRule(day_of_week="monday", start_time="09:00",
                                     end_time=f"{rng.randrange(10, 18)}:00")],
            public_bookings=PublicBookings(enabled=rng.random() < 0.5)))
    if provider == UNCREATED:
        return ev.TimeReleased(provider_id=provider, reservation_id=reservation)
    return _created(provider, "a second ProviderCreated changes nothing")


def _created(provider: str, name: str) -> ev.ProviderCreated:
    return ev.ProviderCreated(provider_id=provider, account_id="acct_rebuild", display_name=name, email=None,
                              user_id=None, time_zone="America/New_York", created_at="2026-01-01T00:00:00Z")


async def _random_history(store: EventStore, seed: int, appends: int = 120) -> None:
    """Appends of 1-6 events on one of four provider streams, `UNCREATED` among them."""
    rng = random.Random(seed)
    versions = {f"prov_{i}": 0 for i in range(4)}
    for provider in ("prov_0", "prov_1", "prov_2"):
        await store.append([StreamAppend(f"provider-{provider}", 0, [_new(_created(provider, provider))])],
                           command_id=None, command_name="test", account_id="acct_rebuild")
        versions[provider] = 1
    for _ in range(appends):
        provider = rng.choice(list(versions))
        events = [_random_event(rng, provider) for _ in range(rng.randrange(1, 7))]
        await store.append([StreamAppend(f"provider-{provider}", versions[provider], [_new(e) for e in events])],
                           command_id=None, command_name="test", account_id="acct_rebuild")
        versions[provider] += len(events)


async def _calendar_rows(pool: asyncpg.Pool) -> dict[str, list[tuple[str, ...]]]:
    return {table: sorted(tuple(str(v) for v in row.values()) for row in await pool.fetch(f"select * from {table}"))
            for table in CALENDARS.tables}


async def _oid(pool: asyncpg.Pool, table: str) -> int:
    return int(await pool.fetchval("select $1::regclass::oid", table))


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_rebuild_equals_the_incremental_projector_row_by_row(pool: asyncpg.Pool, seed: int):
    await _random_history(EventStore(pool), seed)
    units = partitioned(CALENDARS, 3)
    await ProjectionRunner(pool, units, batch=7).catch_up()  # incremental, batches cut through the appends
    incremental = await _calendar_rows(pool)
    assert len(incremental["rm_reservations"]) >= 5 and incremental["rm_external_busy"]
    assert len(incremental["rm_providers"]) == 3
    assert UNCREATED in {row[0] for row in incremental["rm_reservations"]}  # rows need no provider, as in SQL
    before = await _oid(pool, "rm_reservations")

    read = await rebuild(pool, CALENDARS)

    assert await _oid(pool, "rm_reservations") != before  # the fold-and-swap path ran, not a replay
    assert read == await pool.fetchval("select count(*) from events")  # every event here is a calendars one
    assert await _calendar_rows(pool) == incremental
    assert all(row["lag"] == 0 for row in await status(pool, [CALENDARS, *units]))
    indexes = {r[0] for r in await pool.fetch("select indexname from pg_indexes where tablename like 'rm_%'")}
    assert {"rm_providers_pkey", "rm_providers_account", "rm_reservations_pkey", "rm_reservations_window",
            "rm_external_busy_window"} <= indexes
    await rebuild(pool, dataclasses.replace(CALENDARS, rebuild=None))  # the projector's own replay agrees
    assert await _calendar_rows(pool) == incremental


def _written(rng: random.Random, seconds: int) -> str:
    """The instant `seconds` as a client may write it: UTC with Z (the commands' own shape), an offset, a
    fraction of a second (up to seven digits, which Python cuts to six), a comma, the basic ISO form."""
    moment = datetime.fromtimestamp(seconds, UTC)
    shape = rng.randrange(8)
    if shape < 2:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if shape == 2:
        return moment.astimezone(timezone(timedelta(hours=5, minutes=45))).isoformat()
    if shape == 3:
        return moment.astimezone(timezone(-timedelta(hours=3, minutes=30))).isoformat()
    if shape == 4:
        return (moment + timedelta(microseconds=rng.choice([1, 500_000, 999_999]))).isoformat().replace("+00:00", "Z")
    if shape == 5:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.9999999Z")
    if shape == 6:
        return moment.astimezone(timezone(timedelta(hours=1))).strftime("%Y-%m-%dT%H:%M:%S,5+01:00")
    return moment.strftime("%Y%m%dT%H%M%SZ")


def _edge_event(rng: random.Random, provider: str) -> tuple[str, bytes]:
    """(type, stored JSON) of one calendars event on `provider`, drawn towards the fold's edge cases."""
    reservation = f"res_{rng.randrange(6)}"
    start = BASE + 900 * rng.randrange(100)
    choice = rng.random()
    event: ev.Event
    if choice < 0.3:
        kind = rng.choice(["event", "block", "hold"])
        expires = rng.choice([None, "", _written(rng, start - 600)]) if kind == "hold" else None
        event = ev.TimeReserved(provider_id=provider, reservation_id=reservation, kind=kind,
                                start_at=_written(rng, start), end_at=_written(rng, start + 1800),
                                buffer_before=rng.choice([0, 15]), buffer_after=rng.choice([0, 5]), expires_at=expires)
    elif choice < 0.45:
        event = ev.TimeReleased(provider_id=provider, reservation_id=reservation)
    elif choice < 0.6:  # sometimes of a reservation never made: a move before any TimeReserved
        event = ev.ReservationMoved(provider_id=provider, reservation_id=rng.choice([reservation, "res_never"]),
                                    start_at=_written(rng, start), end_at=_written(rng, start + 2700))
    elif choice < 0.7:
        busy = [ev.BusyInterval(start_at=_written(rng, a), end_at=_written(rng, a + 900))
                for a in (start + 900 * rng.randrange(-2, 12) for _ in range(rng.randrange(3)))]
        event = ev.ExternalBusyTimesSynced(provider_id=provider, from_at=_written(rng, start),
                                           until_at=_written(rng, start + 900 * rng.randrange(2, 16)), busy_times=busy)
    elif choice < 0.8:
        event = ev.ProviderScheduleSet(provider_id=provider, schedule=ProviderSchedule(
            time_zone=rng.choice(["Etc/UTC", "Asia/Kathmandu"]),
            public_bookings=PublicBookings(enabled=rng.random() < 0.5)))
    elif choice < 0.9:  # a schedule stored without its defaults, as an older version wrote it
        schedule = {"time_zone": "Europe/Berlin", "public_bookings": {"enabled": True}} \
            if rng.random() < 0.5 else {"time_zone": "Europe/Berlin"}
        return "provider_schedule_set", msgspec.json.encode(
            {"type": "provider_schedule_set", "provider_id": provider, "schedule": schedule})
    else:  # the first ProviderCreated wins; before it, a schedule finds no provider
        event = ev.ProviderCreated(provider_id=provider, account_id="acct_rebuild", display_name=f"{provider} {choice}",
                                   email=rng.choice([None, "p@example.com"]), user_id=rng.choice([None, "user_1"]),
                                   time_zone=rng.choice(["America/New_York", "Asia/Kathmandu"]),
                                   created_at="2026-01-01T00:00:00Z")
    return event_type(event), encode_event(event)


async def _edge_history(store: EventStore, seed: int, appends: int = 60) -> None:
    """Appends of 1-5 events on one or two of three provider streams (none of them created first), after
    a provider whose only schedule came before it was created (twice)."""
    rng = random.Random(seed)
    late = [ev.ProviderScheduleSet(provider_id="prov_late", schedule=ProviderSchedule(
        public_bookings=PublicBookings(enabled=True))), _created("prov_late", "first"), _created("prov_late", "second")]
    await store.append([StreamAppend("provider-prov_late", 0, [_new(e) for e in late])], command_id=None,
                       command_name="test", account_id="acct_rebuild")
    versions = {f"prov_{i}": 0 for i in range(3)}
    for _ in range(appends):
        streams = []
        for provider in rng.sample(list(versions), rng.choice([1, 1, 2])):
            events = [NewEvent(f"evt_{next(_ids)}_{time.time_ns()}", *_edge_event(rng, provider))
                      for _ in range(rng.randrange(1, 6))]
            streams.append(StreamAppend(f"provider-{provider}", versions[provider], events))
            versions[provider] += len(events)
        await store.append(streams, command_id=None, command_name="test", account_id="acct_rebuild")


def _as_rows(folded: FoldedCalendars) -> dict[str, list[tuple[str, ...]]]:
    """The memory fold's rows as `_calendar_rows` shows the tables' (schedules as Postgres prints jsonb)."""
    rows = folded.rows()
    rows["rm_providers"] = [(*row[:6], json_text(row[6]), row[7]) for row in rows["rm_providers"]]
    return {table: sorted(tuple(str(v) for v in row) for row in table_rows) for table, table_rows in rows.items()}


def json_text(schedule: bytes) -> bytes:
    """A JSON document as Postgres prints it back from jsonb: keys sorted by length then bytes, ", " and ": "."""
    def canonical(value: object) -> object:
        if isinstance(value, dict):
            return {k: canonical(value[k]) for k in sorted(value, key=lambda k: (len(k.encode()), k.encode()))}
        if isinstance(value, list):
            return [canonical(v) for v in value]
        return value
    return json.dumps(canonical(json.loads(schedule)), separators=(", ", ": "), ensure_ascii=False).encode()


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
async def test_rebuild_equals_incremental_and_memory_folds_on_edge_case_histories(pool: asyncpg.Pool, seed: int):
    await _edge_history(EventStore(pool), seed)
    await ProjectionRunner(pool, [CALENDARS], batch=random.Random(seed).randrange(1, 9)).catch_up()
    incremental = await _calendar_rows(pool)
    folded = FoldedCalendars()
    for (data,) in await pool.fetch("select data from events order by tx_id, position"):
        folded.apply(decode_event(data))
    assert _as_rows(folded) == incremental  # the memory fold is the third opinion
    assert incremental["rm_reservations"]
    late = next(row for row in incremental["rm_providers"] if row[0] == "prov_late")
    assert late[2] == "first" and late[-1] == "False" and '"enabled": false' in late[6]

    read = await rebuild(pool, CALENDARS)

    assert read == await pool.fetchval("select count(*) from events")
    assert await _calendar_rows(pool) == incremental


async def test_rebuild_follows_commit_order_where_positions_disagree(pool: asyncpg.Pool):
    """A transaction that took its id first but writes last: its TimeReleased has the higher position, yet
    comes first in the log's commit order (tx_id, position), which the projector follows. So the
    reservation a later transaction made stays, in the incremental read model and in the rebuild."""
    def event_row(stream: str, event: ev.Event) -> tuple[str, str, str, bytes]:
        return f"evt_{next(_ids)}_{time.time_ns()}", stream, event_type(event), encode_event(event)

    insert = "insert into events (id, stream_id, version, type, account_id, data) values ($1, $2, 1, $3, 'acct', $4)"
    async with pool.acquire() as early:
        transaction = early.transaction()
        await transaction.start()
        await early.execute("select pg_current_xact_id()")  # its transaction id, taken now
        await pool.execute(insert, *event_row("provider-prov_0", ev.TimeReserved(
            provider_id="prov_0", reservation_id="res_0", kind="event", start_at=_iso(BASE), end_at=_iso(BASE + 1800))))
        await early.execute(insert, *event_row("other-prov_0", ev.TimeReleased(provider_id="prov_0",
                                                                                reservation_id="res_0")))
        await transaction.commit()
    by_position = [r[0] for r in await pool.fetch("select type from events order by position")]
    by_commit = [r[0] for r in await pool.fetch("select type from events order by tx_id, position")]
    assert by_position == ["time_reserved", "time_released"] and by_commit == ["time_released", "time_reserved"]
    await ProjectionRunner(pool, [CALENDARS]).catch_up()
    incremental = await _calendar_rows(pool)
    assert len(incremental["rm_reservations"]) == 1

    await rebuild(pool, CALENDARS)

    assert await _calendar_rows(pool) == incremental


async def test_rebuild_stops_before_a_transaction_still_running(pool: asyncpg.Pool):
    """A transaction that took its id and has not committed: a reservation committed after it is beyond the
    rebuild's end (the gap-safe bound), so neither the rebuilt rows nor the checkpoint include it yet; the
    live projector applies it once the older transaction ends."""
    store = EventStore(pool)
    await store.append([StreamAppend("provider-prov_0", 0, [_new(_created("prov_0", "prov_0"))])],
                       command_id=None, command_name="test", account_id="acct_rebuild")
    async with pool.acquire() as running:
        transaction = running.transaction()
        await transaction.start()
        await running.execute("select pg_current_xact_id()")
        await store.append([StreamAppend("provider-prov_0", 1, [_new(ev.TimeReserved(
            provider_id="prov_0", reservation_id="res_0", kind="event", start_at=_iso(BASE),
            end_at=_iso(BASE + 1800)))])], command_id=None, command_name="test", account_id="acct_rebuild")

        assert await rebuild(pool, CALENDARS) == 1

        assert await pool.fetchval("select count(*) from rm_providers") == 1
        assert await pool.fetchval("select count(*) from rm_reservations") == 0
        await transaction.rollback()
    await ProjectionRunner(pool, [CALENDARS]).catch_up()
    assert await pool.fetchval("select count(*) from rm_reservations") == 1


async def test_a_load_racing_the_swap_sees_old_or_new_rows_never_empty_tables(pool: asyncpg.Pool):
    """The rebuild is held just before it drops rm_reservations (a reader holds that table), having already
    taken rm_providers; a calendars load starts then. It must wait and read the rebuilt tables after the
    commit: with its snapshot taken before the commit it would find the fresh tables empty."""
    await _random_history(EventStore(pool), seed=4, appends=40)
    await ProjectionRunner(pool, [CALENDARS]).catch_up()
    expected = await _calendar_rows(pool)
    async with pool.acquire() as holder:
        reading = holder.transaction()
        await reading.start()
        await holder.execute("lock table rm_reservations in access share mode")
        rebuilding = asyncio.create_task(rebuild(pool, CALENDARS))
        await _until_waiting(pool, 1)  # the rebuild, on its drop of rm_reservations
        live = LiveCalendars()
        loading = asyncio.create_task(live.load(pool))
        await _until_waiting(pool, 2)  # and the load, on rm_providers (the rebuild dropped it)
        await reading.rollback()
    await asyncio.wait_for(rebuilding, 30)
    await asyncio.wait_for(loading, 30)
    assert set(live.providers) == {row[0] for row in expected["rm_providers"]}
    assert sum(len(p.calendar.reservations) for p in live.providers.values()) == len(
        [row for row in expected["rm_reservations"] if row[0] in live.providers])
    assert await _calendar_rows(pool) == expected


async def _until_waiting(pool: asyncpg.Pool, sessions: int) -> None:
    """Until this many sessions of this database wait on a lock."""
    for _ in range(1000):
        if await pool.fetchval("select count(*) from pg_stat_activity where wait_event_type = 'Lock'"
                               " and datname = current_database()") >= sessions:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"fewer than {sessions} sessions wait on a lock")

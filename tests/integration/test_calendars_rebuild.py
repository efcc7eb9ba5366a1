"""The calendars rebuild (fold in memory, COPY into fresh tables, swap in) equals the incremental projector.

Stories: random provider histories (reservations made, released, moved, re-made; holds with expiry;
busy times synced over overlapping windows; schedules set; a provider created twice, one never
created) projected incrementally in small batches by partitioned units equal the rebuild row by row,
and a replay through the projector; a reader that loads the calendars while the rebuild swaps its
tables in sees the old rows or the new ones, never empty tables.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
import time

import asyncpg
import pytest

from projections.calendars.memory import LiveCalendars
from projections.calendars.projector import PROJECTION as CALENDARS
from projections.runner import ProjectionRunner, partitioned, rebuild, status
from shared.availability.model import ProviderSchedule, PublicBookings, WeeklyRule
from shared.eventstore import EventStore, NewEvent, StreamAppend
from shared.messages import events as ev
from shared.messages.events import encode_event, event_type

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

"""Single-active roles: one lease holder; a standby takes over from a dead or paused holder; a stale holder is fenced."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import nats
import pytest

from services.relay.relay import FeedOutOfStep, Relay
from shared.eventstore import EventStore, LogCursor
from shared.lease import Lease, LeaseLost
from shared.settings import Settings
from tests.integration.test_relay import _at_least, append_many, read_stream, wait_for

pytestmark = pytest.mark.integration

PATIENCE = 120.0  # waits are for what must happen, never for how fast


async def test_a_holder_paused_past_its_lease_can_write_no_checkpoint(pool: asyncpg.Pool, store: EventStore) -> None:
    """A holds the lease and stops renewing (paused); B takes it over; A's fenced checkpoint write is refused."""
    a, b = Lease(pool, "role", ttl=1.0, holder="a"), Lease(pool, "role", ttl=1.0, holder="b")
    assert await a.try_acquire() and a.held()
    assert not await b.try_acquire()  # one holder at a time
    await wait_for(b.try_acquire, timeout=PATIENCE)  # A never renews: its lease runs out, B takes over
    assert (a.token, b.token) == (1, 2)
    a.valid_until = float("inf")  # even a holder whose local clock has not noticed the pause
    with pytest.raises(LeaseLost):
        async with pool.acquire() as conn, conn.transaction():
            await a.fence(conn)
            await store.save_checkpoint("role", LogCursor(99, 99), conn)
    assert await store.load_checkpoint("role") == LogCursor()
    assert not a.held()
    async with pool.acquire() as conn, conn.transaction():  # the new holder writes
        await b.fence(conn)
        await store.save_checkpoint("role", LogCursor(5, 5), conn)
    assert await store.load_checkpoint("role") == LogCursor(5, 5)


async def test_a_fenced_batch_longer_than_the_lease_keeps_it_and_no_standby_takes_over(
    pool: asyncpg.Pool, store: EventStore,
) -> None:
    """The holder's renewals go on while its own fenced transaction runs three lease lengths; B never gets in."""
    stop = asyncio.Event()
    a, b = Lease(pool, "long", ttl=1.0, holder="a"), Lease(pool, "long", ttl=1.0, holder="b")
    keeping = asyncio.create_task(a.keep(stop))
    await asyncio.wait_for(a.acquired.wait(), PATIENCE)
    standby_got_it: list[bool] = []

    async def standby() -> None:
        while not stop.is_set():
            standby_got_it.append(await b.try_acquire())
            await asyncio.sleep(0.1)

    trying = asyncio.create_task(standby())
    try:
        async with pool.acquire() as conn, conn.transaction():
            await a.fence(conn)
            await conn.execute("select pg_sleep(3)")  # a long batch, busy all along (not idle)
            await a.fence(conn)  # still ours: the renewals did not wait for this transaction
            await store.save_checkpoint("long", LogCursor(3, 3), conn)
        assert a.held() and a.token == 1
    finally:
        stop.set()
        await trying
        await keeping
    assert standby_got_it and not any(standby_got_it)
    assert await store.load_checkpoint("long") == LogCursor(3, 3)


async def test_a_holder_stuck_mid_transaction_blocks_the_takeover_until_postgres_ends_its_session(
    pool: asyncpg.Pool, store: EventStore,
) -> None:
    """A's lease expires inside its fenced transaction: no takeover while it lasts; once it is cut, none of it commits."""
    a, b = Lease(pool, "stuck", ttl=2.0, holder="a"), Lease(pool, "stuck", ttl=2.0, holder="b")
    assert await a.try_acquire()
    conn = await pool.acquire()
    try:
        transaction = conn.transaction()
        await transaction.start()
        await a.fence(conn)
        await store.save_checkpoint("stuck", LogCursor(7, 7), conn)
        assert await a.renew()  # a renewal meanwhile (a new row version) keeps the fence's lock in force
        await conn.execute("select pg_sleep(2.5)")  # then A renews nothing: its lease is past its expiry now
        assert not await b.try_acquire()  # expired, but A is mid-transaction: B must wait
        await wait_for(b.try_acquire, timeout=PATIENCE)  # A stays idle: Postgres ends its session, B takes over
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, ConnectionError)):
            await transaction.commit()
    finally:
        await pool.release(conn)
    assert (a.token, b.token) == (1, 2)
    assert await store.load_checkpoint("stuck") == LogCursor()


async def test_a_session_holding_an_expired_leases_lock_without_being_idle_is_ended_by_the_standby(
    pool: asyncpg.Pool, database_url: str,
) -> None:
    """A holder's backend that no idle timeout ends (here: timeouts off, as for one blocked sending a
    result to a paused process) still holds the fence's lock long after the lease expired: the standby
    terminates that session and takes over; a session holding the lock of a lease still valid is left."""
    from shared.lease import LOCK_CLASS
    a, b = Lease(pool, "stuck-active", ttl=1.0, holder="a"), Lease(pool, "stuck-active", ttl=1.0, holder="b")
    assert await a.try_acquire()
    stuck = await asyncpg.connect(database_url)
    try:
        await stuck.execute("begin")
        await stuck.execute("select pg_advisory_xact_lock_shared($1, hashtext($2))", LOCK_CLASS, a.name)
        assert not await b.try_acquire()  # A's lease is valid: nothing to take, nobody ended
        assert not stuck.is_closed() and await stuck.fetchval("select 1") == 1
        await asyncio.sleep(1.2)  # expired, but not one lease length ago: B waits on the lock, ends nobody
        assert not await b.try_acquire()
        assert await stuck.fetchval("select 1") == 1
        await wait_for(b.try_acquire, timeout=PATIENCE)  # then B ends the stuck session and takes over
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError)):
            await stuck.fetchval("select 1")
    finally:
        with contextlib.suppress(Exception):
            await stuck.close()
    assert b.token == a.token + 1  # type: ignore[operator]


async def test_runner_restarts_reuse_membership_seats_so_the_lease_rows_stay_bounded(pool: asyncpg.Pool) -> None:
    """Six runners in turn, each killed (no release): lease rows are the units plus at most two seats."""
    from projections.calendars.projector import PROJECTION as calendars
    from projections.runner import ProjectionRunner, partitioned

    units = partitioned(calendars, 2)
    for life in range(6):
        runner = ProjectionRunner(pool, units, shared=True, lease_ttl=1.0, holder=f"runner-{life}")
        task = asyncio.create_task(runner.run())

        async def holds_every_unit(runner: ProjectionRunner = runner) -> bool:
            return len(runner.leases) == 2 and all(lease.held() for lease in runner.leases.values())

        await wait_for(holds_every_unit, timeout=PATIENCE)
        await asyncio.sleep(1.0)  # live one lease length, so the seat of the runner before has expired
        task.cancel()  # a kill: nothing released
        with contextlib.suppress(asyncio.CancelledError):
            await task
    names = {row["name"] for row in await pool.fetch("select name from leases")}
    seats = {n for n in names if n.startswith("projection-runner#")}
    assert names - seats == {u.checkpoint for u in units}
    assert seats <= {"projection-runner#0", "projection-runner#1"}, names


def _start_relay(env: dict[str, str], instance: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "services.relay"], env={**env, "SCHED_INSTANCE": str(instance)},
                                stdout=out, stderr=subprocess.STDOUT)


async def test_standby_relay_takes_over_from_a_sigstopped_holder_which_then_publishes_nothing(
    pool: asyncpg.Pool, store: EventStore, nc: nats.NATS, settings: Settings, settings_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """Two relays: SIGSTOP the holder, the standby takes over; SIGCONT it: the stream still holds the log once, in order."""
    js = nc.jetstream()
    relays = [_start_relay(settings_env, i + 1, tmp_path / f"relay{i + 1}.log") for i in range(2)]
    try:
        await append_many(store, 200)
        await wait_for(lambda: _at_least(js, settings.events_stream, 200), timeout=PATIENCE)
        holder = await pool.fetchrow("select holder, token from leases where name = 'relay'")
        paused = next(r for r in relays if f":{r.pid}:" in holder["holder"])
        standby = next(r for r in relays if r is not paused)
        os.kill(paused.pid, signal.SIGSTOP)
        try:
            await append_many(store, 200)  # published by the standby once it holds the lease

            async def taken_over() -> bool:
                row = await pool.fetchrow("select holder, token from leases where name = 'relay'")
                return f":{standby.pid}:" in row["holder"] and row["token"] > holder["token"]

            await wait_for(taken_over, timeout=PATIENCE)
            await wait_for(lambda: _at_least(js, settings.events_stream, 400), timeout=PATIENCE)
        finally:
            os.kill(paused.pid, signal.SIGCONT)
        await append_many(store, 200)
        await wait_for(lambda: _at_least(js, settings.events_stream, 600), timeout=PATIENCE)
        await asyncio.sleep(1)  # room for a stale publish to show up, were there one
        await append_many(store, 10)
        await wait_for(lambda: _at_least(js, settings.events_stream, 610), timeout=PATIENCE)
    finally:
        for relay in relays:
            relay.send_signal(signal.SIGTERM)
        for relay in relays:
            relay.wait(timeout=30)
    logged = await store.read_all(LogCursor(), limit=100_000)
    received = await read_stream(js, settings, len(logged))
    assert [m["id"] for m in received] == [e.id for e in logged]  # every event once, in log order
    resumed_log = (tmp_path / f"relay{relays.index(paused) + 1}.log").read_text()
    assert "lease relay lost" in resumed_log  # it noticed, and stood down


async def test_a_stale_relays_publish_is_refused_by_the_stream_which_keeps_the_log_once_in_order(
    pool: asyncpg.Pool, store: EventStore, nc: nats.NATS, settings: Settings,
) -> None:
    """A reads its next batch, passes its lease check, pauses; B takes over and publishes; A's publish is refused."""
    js = nc.jetstream()
    a_lease, b_lease = Lease(pool, "relay", ttl=1.0, holder="a"), Lease(pool, "relay", ttl=1.0, holder="b")
    a = Relay(store, js, settings, batch_size=100, lease=a_lease)
    b = Relay(store, js, settings, batch_size=100, lease=b_lease)
    await a.start()
    await b.start()
    assert await a_lease.try_acquire()
    await append_many(store, 30)
    assert await a.publish_batch() == 30
    await append_many(store, 20)
    stale = await store.read_all(a.cursor, 100)  # A is active, has read its batch... and is paused here
    # Give A ids JetStream's duplicate window would not catch (as after a repair of its own): only the
    # sequence fence can stop these.
    a.msg_id_suffix = ":r1"
    await wait_for(b_lease.try_acquire, timeout=PATIENCE)  # A renews nothing: B takes over
    assert await b.publish_batch() == 20
    a_lease.valid_until = float("inf")  # A resumes, its local clock none the wiser
    with pytest.raises(FeedOutOfStep):
        await a.publish(stale)
    await append_many(store, 10)
    assert await b.publish_batch() == 10  # B goes on in place
    logged = await store.read_all(LogCursor(), limit=1000)
    assert (await js.stream_info(settings.events_stream)).state.messages == len(logged) == 60
    received = await read_stream(js, settings, len(logged))
    assert [m["id"] for m in received] == [e.id for e in logged]  # every event once, in log order

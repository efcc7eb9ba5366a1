"""Event store appends: ours vs a bare-table asyncpg ceiling vs the `eventsourcing` library (a peer).

For 1 and 8 concurrent writers and 1- and 10-event appends, against one durable Postgres (fsync
and synchronous_commit on), each system appends back to back for BENCH_SECONDS in total (default
5) after a short untimed warm-up:

  ceiling         plain asyncpg INSERTs into a bare table with the events' columns (no keys, no
                  indexes, no version checks, no position/tx_id), each writer on its own
                  connection held for the whole run. 1-event: one INSERT ... VALUES. 10-event:
                  both `INSERT ... SELECT FROM unnest($1..$6)` (one statement) and `executemany`
                  in one transaction are measured; the faster one is the ceiling.
  ours/new        EventStore.append to a new stream per append (expected version 0, no command id),
                  through the asyncpg pool that shared.eventstore.create_pool builds for services.
  ours/existing   EventStore.append to existing streams (expected version n, 64 streams per
                  writer in turn) with a fresh command id, so the idempotency row is written too -
                  what a command does.
  peer            eventsourcing's PostgresApplicationRecorder.insert_events, a new aggregate
                  (uuid4) per append; synchronous psycopg 3, so 8 writers are 8 threads.

The disk under this VM changes speed over time (bursts of fast flushes, then throttled ones), so
the systems of one (writers, events) case are *interleaved*: BENCH_ROUNDS (default 5) rounds, each
giving every system BENCH_SECONDS/BENCH_ROUNDS, and each system's numbers are the sum over its
slices. Pools hold one connection per writer. Event bodies are the same ~300-byte JSON for all.

Two diagnostics explain the latency numbers: the disk's own synchronous-write latency (8 kB
sequential writes + fdatasync next to the data directory: what every commit waits for), and the
1-writer cases again with `synchronous_commit=off` (no wait for the WAL flush), i.e. what an
append costs apart from the disk.

Run alone: python -m tests.benchmarks.bench_event_store
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from shared.eventstore import EventStore, NewEvent, StreamAppend, create_pool, init_connection, migrate
from shared.ids import new_id
from tests.benchmarks.common import (
    LoadMonitor,
    Result,
    Servers,
    bench_seconds,
    embedded_servers,
    run_async_writers,
    run_thread_writers,
    table,
    warmup_seconds,
)

WRITERS = (1, 8)
EVENTS_PER_APPEND = (1, 10)
STREAMS_PER_WRITER = 64
ACCOUNT = "acct_01HZBENCHMARK0000000000000"
EVENT_TYPE = "link_created"
PAYLOAD = (
    b'{"type":"link_created","link_id":"link_01HZX3M4Q5R6S7T8V9W0XYZABC","account_id":"acct_01HZBENCH",'
    b'"scope_id":"scope_01HZX3M4Q5R6S7T8V9W0XYZABD","name":"Quick chat","slug":"quick-chat",'
    b'"durations":[30],"default_duration":30,"increment":15,"hosts":["prov_01HZX3M4Q5R6S7T8V9W0XYZ"],'
    b'"host_mode":"any","time_zone":"Europe/Berlin","created_at":"2026-01-01T00:00:00Z"}'
)
REPLY = b'{"ok":true,"result":{"link_id":"link_01HZX3M4Q5R6S7T8V9W0XYZABC"},"events":[],"position":0}'

CEILING_DDL = """
create table if not exists ceiling_events (
    id text not null, stream_id text not null, version integer not null, type text not null,
    account_id text not null, data jsonb not null, occurred_at timestamptz not null default now()
)"""
CEILING_INSERT = ("insert into ceiling_events (id, stream_id, version, type, account_id, data)"
                  " values ($1, $2, $3, $4, $5, $6)")
CEILING_UNNEST = ("insert into ceiling_events (id, stream_id, version, type, account_id, data)"
                  " select * from unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::jsonb[])")


def new_events(n: int) -> list[NewEvent]:
    return [NewEvent(new_id("evt"), EVENT_TYPE, PAYLOAD) for _ in range(n)]


async def create_database(servers: Servers, name: str) -> str:
    admin = await asyncpg.connect(servers.database_url)
    await admin.execute(f"create database {name}")
    await admin.close()
    return servers.database(name)


async def connection_pool(url: str, size: int, synchronous_commit: bool = True) -> asyncpg.Pool:
    """A pool like create_pool's (raw jsonb codec), optionally without waiting for WAL flushes."""
    settings = {} if synchronous_commit else {"synchronous_commit": "off"}
    pool = await asyncpg.create_pool(url, min_size=size, max_size=size, init=init_connection,
                                     server_settings=settings)
    assert pool is not None
    return pool


# ---------------------------------------------------------------------------------------------
# The systems: each runs `writers` concurrent appenders of `n` events for a slice of time.


@dataclass
class System:
    name: str
    n: int
    writers: int
    run_slice: Callable[[float, float], Awaitable[tuple[int, float, list[float], int]]]
    ops: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    warmed: bool = False

    async def run(self, seconds: float, warmup: float) -> None:
        ops, elapsed, lat, errors = await self.run_slice(seconds, 0.0 if self.warmed else warmup)
        self.warmed = True
        self.ops += ops
        self.elapsed += elapsed
        self.latencies += lat
        self.errors += errors

    def result(self) -> Result:
        return Result(self.name, self.ops, self.elapsed, self.latencies, self.n, self.errors)


def async_system(name: str, n: int, writers: int,
                 make_op: Callable[[int], Callable[[], Awaitable[Any]]]) -> System:
    async def run_slice(seconds: float, warmup: float) -> tuple[int, float, list[float], int]:
        return await run_async_writers(writers, seconds, make_op, warmup)
    return System(name, n, writers, run_slice)


# (a) the ceiling: each writer keeps one connection (no pool acquire/reset per append)

def ceiling_system(pool: asyncpg.Pool, n: int, writers: int, variant: str) -> System:
    connections: list[asyncpg.Connection] = []

    def make_op(i: int) -> Callable[[], Awaitable[Any]]:
        async def values() -> None:
            conn = connections[i]
            await conn.execute(CEILING_INSERT, new_id("evt"), new_id("s"), 1, EVENT_TYPE, ACCOUNT, PAYLOAD)

        async def unnest() -> None:
            conn = connections[i]
            stream = new_id("s")
            ids = [new_id("evt") for _ in range(n)]
            await conn.execute(CEILING_UNNEST, ids, [stream] * n, list(range(1, n + 1)), [EVENT_TYPE] * n,
                               [ACCOUNT] * n, [PAYLOAD] * n)

        async def executemany() -> None:
            conn = connections[i]
            stream = new_id("s")
            rows = [(new_id("evt"), stream, v, EVENT_TYPE, ACCOUNT, PAYLOAD) for v in range(1, n + 1)]
            async with conn.transaction():
                await conn.executemany(CEILING_INSERT, rows)

        return {"values": values, "unnest": unnest, "executemany": executemany}[variant]

    async def run_slice(seconds: float, warmup: float) -> tuple[int, float, list[float], int]:
        connections[:] = [await pool.acquire() for _ in range(writers)]
        try:
            return await run_async_writers(writers, seconds, make_op, warmup)
        finally:
            for conn in connections:
                await pool.release(conn)
            connections.clear()

    return System(f"ceiling: asyncpg {variant}", n, writers, run_slice)


# (b) ours

def ours_new_stream_system(store: EventStore, n: int, writers: int, prefix: str = "") -> System:
    def make_op(_: int) -> Callable[[], Awaitable[Any]]:
        async def op() -> None:
            await store.append([StreamAppend(new_id("bench"), 0, new_events(n))], command_id=None,
                               command_name="bench", account_id=ACCOUNT)
        return op

    return async_system(f"{prefix}ours: new stream", n, writers, make_op)


async def ours_existing_stream_system(store: EventStore, n: int, writers: int, prefix: str = "") -> System:
    """Appends with a command id to STREAMS_PER_WRITER existing streams per writer, in turn."""
    versions: list[dict[str, int]] = []
    for _ in range(writers):
        streams = {new_id("bench"): 1 for _ in range(STREAMS_PER_WRITER)}
        for stream in streams:
            await store.append([StreamAppend(stream, 0, new_events(1))], command_id=None, command_name="bench",
                               account_id=ACCOUNT)
        versions.append(streams)

    def make_op(i: int) -> Callable[[], Awaitable[Any]]:
        mine = versions[i]
        cycle = itertools.cycle(list(mine))

        async def op() -> None:
            stream = next(cycle)
            expected = mine[stream]
            await store.append([StreamAppend(stream, expected, new_events(n))],
                               command_id=f"cmd-{uuid.uuid4().hex}", command_name="bench", account_id=ACCOUNT,
                               reply=REPLY)
            mine[stream] = expected + n
        return op

    return async_system(f"{prefix}ours: existing stream + command id", n, writers, make_op)


# (c) the peer

class Peer:
    """eventsourcing's PostgreSQL application recorder with a pool of `writers` connections."""

    def __init__(self, servers: Servers, dbname: str, writers: int) -> None:
        from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

        assert servers.postgres is not None
        self.datastore = PostgresDatastore(dbname, "127.0.0.1", servers.postgres.port, "postgres", "",
                                           pool_size=writers)
        self.recorder = PostgresApplicationRecorder(self.datastore, events_table_name="peer_events")
        self.recorder.create_table()

    def system(self, n: int, writers: int) -> System:
        from eventsourcing.persistence import StoredEvent

        recorder = self.recorder

        def make_op(_: int) -> Callable[[], Any]:
            def op() -> None:
                originator = uuid.uuid4()
                recorder.insert_events([
                    StoredEvent(originator_id=originator, originator_version=v, topic="bench:LinkCreated",
                                state=PAYLOAD)
                    for v in range(1, n + 1)
                ])
            return op

        async def run_slice(seconds: float, warmup: float) -> tuple[int, float, list[float], int]:
            return await asyncio.to_thread(run_thread_writers, writers, seconds, make_op, warmup)

        return System("peer: eventsourcing", n, writers, run_slice)

    def close(self) -> None:
        self.datastore.close()


# ---------------------------------------------------------------------------------------------
# diagnostics


def disk_flush_probe(directory: os.PathLike[str] | str, seconds: float) -> Result:
    """Sequential 8 kB writes, each followed by fdatasync: the floor under any durable commit."""
    path = os.path.join(directory, "flush-probe.bin")
    block = os.urandom(8192)
    latencies: list[float] = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        started = time.perf_counter()
        while (now := time.perf_counter()) - started < seconds:
            os.write(fd, block)
            os.fdatasync(fd)
            latencies.append(time.perf_counter() - now)
        elapsed = time.perf_counter() - started
    finally:
        os.close(fd)
        os.unlink(path)
    return Result("disk: 8 kB write + fdatasync", len(latencies), elapsed, latencies)


# ---------------------------------------------------------------------------------------------


async def interleave(systems: list[System], seconds: float, warmup: float, rounds: int) -> list[Result]:
    """Every system runs `rounds` slices of seconds/rounds, in turn, so drift hits all alike."""
    for _ in range(rounds):
        for system in systems:
            await system.run(seconds / rounds, warmup)
    return [s.result() for s in systems]


async def run_cases(servers: Servers, seconds: float, warmup: float, rounds: int) -> tuple[
        list[tuple[int, int, list[Result]]], list[Result]]:
    ceiling_url = await create_database(servers, "bench_ceiling")
    ours_url = await create_database(servers, "bench_ours")
    await create_database(servers, "bench_peer")
    conn = await asyncpg.connect(ceiling_url)
    await conn.execute(CEILING_DDL)
    await conn.close()
    conn = await asyncpg.connect(ours_url)
    await migrate(conn)
    await conn.close()

    diagnostics = [await asyncio.to_thread(disk_flush_probe, servers.root, max(1.0, seconds / 2))]

    out: list[tuple[int, int, list[Result]]] = []
    for writers in WRITERS:
        ceiling_pool = await connection_pool(ceiling_url, writers)
        ours_pool = await create_pool(ours_url, min_size=writers, max_size=writers)
        store = EventStore(ours_pool)
        peer = await asyncio.to_thread(Peer, servers, "bench_peer", writers)
        try:
            for n in EVENTS_PER_APPEND:
                print(f"  writers={writers} events/append={n} ...", file=sys.stderr, flush=True)
                systems = [ceiling_system(ceiling_pool, n, writers, v)
                           for v in (["values"] if n == 1 else ["unnest", "executemany"])]
                systems += [ours_new_stream_system(store, n, writers),
                            await ours_existing_stream_system(store, n, writers),
                            peer.system(n, writers)]
                out.append((writers, n, await interleave(systems, seconds, warmup, rounds)))
        finally:
            await ceiling_pool.close()
            await ours_pool.close()
            await asyncio.to_thread(peer.close)

    # The 1-writer cases without waiting for the WAL flush: the append's own cost.
    print("  diagnostics: 1 writer, synchronous_commit=off ...", file=sys.stderr, flush=True)
    ceiling_pool = await connection_pool(ceiling_url, 1, synchronous_commit=False)
    ours_pool = await connection_pool(ours_url, 1, synchronous_commit=False)
    store = EventStore(ours_pool)
    try:
        for n in EVENTS_PER_APPEND:
            systems = [ceiling_system(ceiling_pool, n, 1, v)
                       for v in (["values"] if n == 1 else ["unnest", "executemany"])]
            for s in systems:
                s.name = "no-flush " + s.name
            systems += [ours_new_stream_system(store, n, 1, "no-flush "),
                        await ours_existing_stream_system(store, n, 1, "no-flush ")]
            diagnostics += await interleave(systems, max(1.0, seconds / 2), warmup, rounds)
    finally:
        await ceiling_pool.close()
        await ours_pool.close()
    return out, diagnostics


def ceiling_of(results: list[Result]) -> Result:
    return max((r for r in results if r.name.startswith("ceiling")), key=lambda r: r.rate)


def report(cases: list[tuple[int, int, list[Result]]], diagnostics: list[Result], seconds: float, rounds: int,
           load: LoadMonitor) -> str:
    rows = []
    for writers, n, results in cases:
        best = ceiling_of(results)
        for r in results:
            marker = " *" if r is best and n > 1 else ""
            rows.append([r.name + marker, writers, n, r.rate, r.item_rate, r.p(50), r.p(99), r.p(99.9), r.errors])
    parts = [table(
        ["system", "writers", "events/append", "appends/s", "events/s", "p50 ms", "p99 ms", "p99.9 ms", "errors"],
        rows,
        title=f"Event store appends (durable Postgres 16, fsync on; {seconds:g} s per system and case, "
              f"interleaved in {rounds} rounds; * = the faster 10-event ceiling, used for the ratios)",
    )]

    target_rows = []
    for writers, n, results in cases:
        ceiling = ceiling_of(results)
        peer = next(r for r in results if r.name.startswith("peer"))
        for ours in (r for r in results if r.name.startswith("ours")):
            to_ceiling, to_peer = ours.rate / ceiling.rate, ours.rate / peer.rate
            if writers == 8:
                verdict = "PASS" if to_ceiling >= 0.5 and to_peer >= 2.0 else "MISS"
            else:
                verdict = "PASS" if ours.p(99) <= 5.0 else "MISS"
            target_rows.append([ours.name, writers, n, to_ceiling, to_peer, ours.p(99), verdict])
    parts.append(table(
        ["ours", "writers", "events/append", "ours/ceiling", "ours/peer", "p99 ms", "target"],
        target_rows,
        title="Targets: at 8 writers ours/ceiling >= 0.50 and ours/peer >= 2.00 (throughput); "
              "at 1 writer p99 append latency <= 5 ms",
    ))
    choice = [f"{writers} writer(s): {ceiling_of(results).name.split()[-1]}"
              for writers, n, results in cases if n > 1]
    parts.append("The faster 10-event ceiling (unnest = one INSERT ... SELECT FROM unnest(...); executemany = "
                 "one INSERT per event, pipelined, in one transaction): " + "; ".join(choice) + ".")

    diag_rows = [[r.name, "-" if r.name.startswith("disk") else r.items_per_op, r.rate, r.p(50), r.p(99),
                  r.p(99.9)] for r in diagnostics]
    parts.append(table(
        ["diagnostic (1 writer)", "events/append", "ops/s", "p50 ms", "p99 ms", "p99.9 ms"], diag_rows,
        title="Diagnostics: the disk's own flush latency (measured before the cases), and the 1-writer "
              "appends again with synchronous_commit=off (no WAL flush wait)",
    ))
    parts.append(load.summary())
    return "\n\n".join(parts)


def main() -> None:
    seconds = bench_seconds()
    warmup = warmup_seconds(seconds)
    rounds = max(1, int(os.environ.get("BENCH_ROUNDS", "5")))
    load = LoadMonitor().start()
    with embedded_servers(postgres=True) as servers:
        cases, diagnostics = asyncio.run(run_cases(servers, seconds, warmup, rounds))
    load.stop()
    print(report(cases, diagnostics, seconds, rounds, load))


if __name__ == "__main__":
    main()

"""Event store appends: ours vs a bare-table asyncpg ceiling vs the `eventsourcing` library (a peer).

For 1 and 8 concurrent writers and 1- and 10-event appends, each case runs BENCH_SECONDS (default
5) after a short untimed warm-up, against one durable Postgres (fsync on):

  ceiling         plain asyncpg INSERTs into a bare table with the events' columns (no keys, no
                  indexes, no version checks, no position/tx_id). 1-event: one INSERT ... VALUES.
                  10-event: both `INSERT ... SELECT FROM unnest($1..$6)` (one statement) and
                  `executemany` in one transaction are measured; the faster is the ceiling.
  ours/new        EventStore.append to a new stream per append (expected version 0, no command id).
  ours/existing   EventStore.append to existing streams (expected version n) with a command id
                  (so the idempotency row is written too) - what a command actually does.
  peer            eventsourcing's PostgresApplicationRecorder.insert_events, a new aggregate
                  (uuid4) per append; synchronous psycopg 3, so 8 writers are 8 threads.

Every writer has its own pooled connection (pool size = writers). Event bodies are the same
~300-byte JSON document for all three.

Two diagnostics explain the latency numbers: the disk's own synchronous-write latency (8 kB
sequential writes + fdatasync next to the data directory, which is what every commit waits for),
and the 1-writer cases again with `synchronous_commit=off` (no wait for the WAL flush), which
shows what the append costs apart from the disk.

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
from typing import Any

import asyncpg

from shared.eventstore import EventStore, NewEvent, StreamAppend, create_pool, init_connection, migrate
from shared.ids import new_id
from tests.benchmarks.common import (
    LoadMonitor, Result, Servers, bench_seconds, embedded_servers, run_async_writers,
    run_thread_writers, table, warmup_seconds,
)

WRITERS = (1, 8)
EVENTS_PER_APPEND = (1, 10)
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


# ---------------------------------------------------------------------------------------------
# (a) the ceiling


def ceiling_op(pool: asyncpg.Pool, n: int, variant: str) -> Callable[[], Awaitable[Any]]:
    async def single() -> None:
        stream = new_id("s")
        async with pool.acquire() as conn:
            await conn.execute(CEILING_INSERT, new_id("evt"), stream, 1, EVENT_TYPE, ACCOUNT, PAYLOAD)

    async def unnest() -> None:
        stream = new_id("s")
        ids = [new_id("evt") for _ in range(n)]
        async with pool.acquire() as conn:
            await conn.execute(CEILING_UNNEST, ids, [stream] * n, list(range(1, n + 1)), [EVENT_TYPE] * n,
                               [ACCOUNT] * n, [PAYLOAD] * n)

    async def executemany() -> None:
        stream = new_id("s")
        rows = [(new_id("evt"), stream, v, EVENT_TYPE, ACCOUNT, PAYLOAD) for v in range(1, n + 1)]
        async with pool.acquire() as conn, conn.transaction():
            await conn.executemany(CEILING_INSERT, rows)

    return {"values": single, "unnest": unnest, "executemany": executemany}[variant]


# ---------------------------------------------------------------------------------------------
# (b) ours


def ours_new_stream_op(store: EventStore, n: int) -> Callable[[], Awaitable[Any]]:
    async def op() -> None:
        await store.append([StreamAppend(new_id("bench"), 0, new_events(n))], command_id=None,
                           command_name="bench", account_id=ACCOUNT)

    return op


async def prepare_existing_streams(store: EventStore, writers: int, per_writer: int) -> list[dict[str, int]]:
    """`per_writer` streams for each writer, each already holding one event."""
    versions: list[dict[str, int]] = []
    for _ in range(writers):
        streams = {new_id("bench"): 1 for _ in range(per_writer)}
        for stream in streams:
            await store.append([StreamAppend(stream, 0, new_events(1))], command_id=None, command_name="bench",
                               account_id=ACCOUNT)
        versions.append(streams)
    return versions


def ours_existing_stream_op(store: EventStore, n: int, versions: dict[str, int]) -> Callable[[], Awaitable[Any]]:
    cycle = itertools.cycle(list(versions))

    async def op() -> None:
        stream = next(cycle)
        expected = versions[stream]
        await store.append([StreamAppend(stream, expected, new_events(n))], command_id=f"cmd-{uuid.uuid4().hex}",
                           command_name="bench", account_id=ACCOUNT, reply=REPLY)
        versions[stream] = expected + n

    return op


# ---------------------------------------------------------------------------------------------
# (c) the peer


def peer_case(servers: Servers, dbname: str, writers: int, n: int, seconds: float, warmup: float) -> Result:
    from eventsourcing.persistence import StoredEvent
    from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

    assert servers.postgres is not None
    datastore = PostgresDatastore(dbname, "127.0.0.1", servers.postgres.port, "postgres", "", pool_size=writers)
    try:
        recorder = PostgresApplicationRecorder(datastore, events_table_name="peer_events")
        recorder.create_table()

        def make_op(_: int) -> Callable[[], Any]:
            def op() -> None:
                originator = uuid.uuid4()
                recorder.insert_events([
                    StoredEvent(originator_id=originator, originator_version=v, topic="bench:LinkCreated",
                                state=PAYLOAD)
                    for v in range(1, n + 1)
                ])
            return op

        ops, elapsed, lat, errors = run_thread_writers(writers, seconds, make_op, warmup)
    finally:
        datastore.close()
    return Result("peer (eventsourcing)", ops, elapsed, lat, n, errors)


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


async def async_pool(url: str, size: int, synchronous_commit: bool = True) -> asyncpg.Pool:
    settings = {} if synchronous_commit else {"synchronous_commit": "off"}
    pool = await asyncpg.create_pool(url, min_size=size, max_size=size, init=init_connection,
                                     server_settings=settings)
    assert pool is not None
    return pool


# ---------------------------------------------------------------------------------------------


async def async_case(name: str, writers: int, n: int, seconds: float, warmup: float,
                     make_op: Callable[[int], Callable[[], Awaitable[Any]]]) -> Result:
    ops, elapsed, lat, errors = await run_async_writers(writers, seconds, make_op, warmup)
    return Result(name, ops, elapsed, lat, n, errors)


async def run_cases(servers: Servers, seconds: float, warmup: float) -> tuple[
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

    diagnostics = [await asyncio.to_thread(disk_flush_probe, servers.root, max(2.0, seconds / 2))]

    out: list[tuple[int, int, list[Result]]] = []
    for writers in WRITERS:
        ceiling_pool = await create_pool(ceiling_url, min_size=writers, max_size=writers)
        ours_pool = await create_pool(ours_url, min_size=writers, max_size=writers)
        store = EventStore(ours_pool)
        try:
            for n in EVENTS_PER_APPEND:
                print(f"  writers={writers} events/append={n} ...", file=sys.stderr, flush=True)
                results: list[Result] = []
                variants = ["values"] if n == 1 else ["unnest", "executemany"]
                for variant in variants:
                    results.append(await async_case(
                        f"ceiling: asyncpg {variant}", writers, n, seconds, warmup,
                        lambda _, v=variant: ceiling_op(ceiling_pool, n, v)))  # type: ignore[misc]
                results.append(await async_case("ours: new stream", writers, n, seconds, warmup,
                                                lambda _: ours_new_stream_op(store, n)))
                versions = await prepare_existing_streams(store, writers, 64)
                results.append(await async_case("ours: existing stream + command id", writers, n, seconds, warmup,
                                                lambda i: ours_existing_stream_op(store, n, versions[i])))
                results.append(await asyncio.to_thread(peer_case, servers, "bench_peer", writers, n, seconds, warmup))
                out.append((writers, n, results))
        finally:
            await ceiling_pool.close()
            await ours_pool.close()

    # The 1-writer cases without waiting for the WAL flush: the append's own cost.
    print("  diagnostics: 1 writer, synchronous_commit=off ...", file=sys.stderr, flush=True)
    short = max(1.0, seconds / 2)
    ceiling_pool = await async_pool(ceiling_url, 1, synchronous_commit=False)
    ours_pool = await async_pool(ours_url, 1, synchronous_commit=False)
    store = EventStore(ours_pool)
    try:
        for n in EVENTS_PER_APPEND:
            for variant in ["values"] if n == 1 else ["unnest", "executemany"]:
                diagnostics.append(await async_case(
                    f"no-flush ceiling: asyncpg {variant}", 1, n, short, warmup,
                    lambda _, v=variant: ceiling_op(ceiling_pool, n, v)))  # type: ignore[misc]
            diagnostics.append(await async_case("no-flush ours: new stream", 1, n, short, warmup,
                                                lambda _: ours_new_stream_op(store, n)))
            versions = await prepare_existing_streams(store, 1, 64)
            diagnostics.append(await async_case("no-flush ours: existing stream + command id", 1, n, short, warmup,
                                                lambda i: ours_existing_stream_op(store, n, versions[i])))
    finally:
        await ceiling_pool.close()
        await ours_pool.close()
    return out, diagnostics


def ceiling_of(results: list[Result]) -> Result:
    return max((r for r in results if r.name.startswith("ceiling")), key=lambda r: r.rate)


def report(cases: list[tuple[int, int, list[Result]]], diagnostics: list[Result], seconds: float,
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
        title=f"Event store appends (durable Postgres 16, fsync on; {seconds:g} s per case; "
              f"* = the faster 10-event ceiling, used for the ratios)",
    )]

    target_rows = []
    verdicts = []
    for writers, n, results in cases:
        ceiling = ceiling_of(results)
        peer = next(r for r in results if r.name.startswith("peer"))
        for ours in (r for r in results if r.name.startswith("ours")):
            if writers == 8:
                to_ceiling = ours.rate / ceiling.rate
                to_peer = ours.rate / peer.rate
                ok = to_ceiling >= 0.5 and to_peer >= 2.0
                target_rows.append([ours.name, writers, n, f"{to_ceiling:.2f}", f"{to_peer:.2f}", "-",
                                    "PASS" if ok else "MISS"])
            else:
                ok = ours.p(99) <= 5.0
                target_rows.append([ours.name, writers, n, f"{ours.rate / ceiling.rate:.2f}",
                                    f"{ours.rate / peer.rate:.2f}", f"{ours.p(99):.2f}", "PASS" if ok else "MISS"])
            verdicts.append(ok)
    parts.append(table(
        ["ours", "writers", "events/append", "ours/ceiling", "ours/peer", "p99 ms", "target"],
        target_rows,
        title="Targets: at 8 writers ours/ceiling >= 0.50 and ours/peer >= 2.00; at 1 writer p99 <= 5 ms",
    ))
    ceiling_choice = [f"{writers} writer(s): {ceiling_of(results).name.split()[-1]}"
                      for writers, n, results in cases if n > 1]
    parts.append("10-event ceiling variant that was faster: " + "; ".join(ceiling_choice))

    diag_rows = [[r.name, r.items_per_op if not r.name.startswith("disk") else "-", r.rate, r.p(50), r.p(99),
                  r.p(99.9)] for r in diagnostics]
    parts.append(table(
        ["diagnostic (1 writer)", "events/append", "ops/s", "p50 ms", "p99 ms", "p99.9 ms"], diag_rows,
        title="Diagnostics: the disk's flush latency, and 1-writer appends with synchronous_commit=off",
    ))
    parts.append(load.summary())
    return "\n\n".join(parts)


def main() -> None:
    seconds = bench_seconds()
    warmup = warmup_seconds(seconds)
    load = LoadMonitor().start()
    with embedded_servers(postgres=True) as servers:
        cases, diagnostics = asyncio.run(run_cases(servers, seconds, warmup))
    load.stop()
    print(report(cases, diagnostics, seconds, load))


if __name__ == "__main__":
    main()

"""Only the rebuild part of bench_queries, at BENCH_EVENTS (default 1M): for working on the rebuild.

The log is filled as bench_queries fills it (system.History: the queried host's history, then tenants of
100 providers with two years of bookings), without the set-up through commands and with no services
running; then `bench_queries.rebuild_all` runs as in the benchmark (VACUUM (ANALYZE), each projection
rebuilt, the calendars rebuild between reads of the same events it reads and plain reads of the log).

BENCH_REBUILD_ROOT=DIR keeps the server's data in DIR: a second run finds the log filled and only
rebuilds (BENCH_REBUILD_ROUNDS times, default 1). Without it the data goes with the run.
BENCH_REBUILD_PROJECTIONS=calendars rebuilds only the named projections (comma-separated).

Run: python -m tests.benchmarks.rebuild_only
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

from projections import migrations
from shared.eventstore import EventStore, create_pool, migrate
from shared.servers import EmbeddedPostgres
from tests.benchmarks import bench_queries
from tests.benchmarks.bench_queries import Rebuilt, Setup, bench_events, fill, rebuild_all
from tests.benchmarks.common import LoadMonitor
from tests.benchmarks.system import History


class LogOnly:
    """What `fill` and `rebuild_all` use of bench_queries' System: a pool, its store, notes."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.notes: list[str] = []

    @property
    def store(self) -> EventStore:
        return EventStore(self.pool)

    async def event_count(self) -> int:
        return int(await self.pool.fetchval("select count(*) from events"))


def report(rebuilt: list[Rebuilt]) -> str:
    lines = []
    for r in rebuilt:
        line = f"{r.projection}: {r.events:,} log events ({r.read:,} read) in {r.seconds:.2f} s = {r.rate:,.0f}/s"
        if r.same_reads_around:
            same = sum(r.same_reads_around) / 2
            line += (f"; same read {r.same_reads_around[0]:,.0f} / {r.same_reads_around[1]:,.0f}/s:"
                     f" {r.rate / same:.2f} of it")
        lines.append(line)
    return "\n".join(lines)


async def run(root: Path, events: int, rounds: int) -> None:
    server = EmbeddedPostgres(root / "pg", durable=True).start()
    assert server.proc is not None
    try:
        pool = await create_pool(server.url, min_size=2, max_size=8)
        async with pool.acquire() as conn:
            await migrate(conn, migrations())
        system = LogOnly(pool)
        current = await system.event_count()
        if current < events * 0.99:
            history = History()
            host_account, batch = history.new_account(1)
            await system.store.append(batch.appends, command_id=None, command_name="bench_bulk_load",
                                      account_id=batch.account_id)
            setup = Setup({}, host_account.providers[0], "", "", [], (0, 0))
            t0 = time.perf_counter()
            loaded, _ = await fill(system, history, setup, current, events)  # type: ignore[arg-type]
            print(f"  {loaded:,} events appended in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        for _ in range(rounds):
            monitor = LoadMonitor().start()
            rebuilt = await rebuild_all(system, server.proc.pid, 0)  # type: ignore[arg-type]
            monitor.stop()
            print(report(rebuilt), flush=True)
            print(monitor.summary(), flush=True)
        await pool.close()
    finally:
        server.stop()


def main() -> None:
    if names := os.environ.get("BENCH_REBUILD_PROJECTIONS"):
        wanted = {name.strip() for name in names.split(",")}
        bench_queries.PROJECTIONS = {k: v for k, v in bench_queries.PROJECTIONS.items() if k in wanted}
    kept = os.environ.get("BENCH_REBUILD_ROOT")
    root = Path(kept) if kept else Path(tempfile.mkdtemp(prefix="sched-rebuild-"))
    try:
        asyncio.run(run(root, bench_events(), int(os.environ.get("BENCH_REBUILD_ROUNDS", "1"))))
    finally:
        if not kept:
            EmbeddedPostgres(root / "pg").remove()


if __name__ == "__main__":
    main()

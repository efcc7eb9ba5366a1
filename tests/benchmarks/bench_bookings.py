"""Booking throughput through NATS: create_event on 1 provider (all contending) and on 100 providers.

The command service runs as its own process(es) (`python -m services.commands`, 1 and then 2 of
them in the NATS queue group) against a durable embedded Postgres (fsync on) and an embedded
NATS. Each case gets a fresh database and NATS prefix and is set up through commands:

  1 provider     one account whose provider works 7 days a week 00:00-24:00 UTC and one 30-minute
                 link on it (maximum_days_ahead 365). Every booking takes the next free 30-minute
                 slot of that provider, so all 16 clients append to the same provider stream: each
                 booking that loses the race gets a version conflict, re-loads, re-decides and
                 retries (MAX_ATTEMPTS 30 in services/commands/service.py).
  100 providers  the account's provider plus 99 created with create_provider, each with the same
                 schedule and its own link; bookings go round-robin over the 100 links, so
                 concurrent bookings almost never touch the same stream.

16 client tasks in this process send create_event request/replies back to back (each a distinct
slot, a fresh command id) for BENCH_SECONDS (default 5) after a 1 s untimed warm-up. Reported:
bookings/s and latency percentiles of the accepted bookings; the rejections by error code (a
distinct free slot should never be rejected; `conflict` would mean 30 attempts lost in a row);
and the version conflicts the service retried. Those are not in the reply, so they are counted
from Postgres: sched_append raises `version conflict`, which the server logs as an ERROR line,
one per lost race (the rolled-back transactions of the database, from pg_stat_database, are shown
next to them as a cross-check). CPU per process group shows where the time went.

BENCH_PROFILE=1 runs the command services under cProfile and prints their top functions to stderr.

Run alone: python -m tests.benchmarks.bench_bookings
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import time
import uuid
from typing import Any

from tests.benchmarks.common import LoadMonitor, Servers, bench_seconds, embedded_servers, table
from tests.benchmarks.system import (
    ALL_DAYS,
    DAY,
    CpuMeter,
    Outcome,
    System,
    closed_loop,
    gather_limited,
    iso,
    new_account,
    schedule_body,
)

CONCURRENCY = 16
PROCESSES = (1, 2)
SCENARIOS = (1, 100)  # providers
SLOT = 1800


async def set_up(system: System, providers: int) -> tuple[dict[str, str], list[str]]:
    """The account, its providers (scheduled around the clock) and one link per provider."""
    ids = await new_account(system)
    who = {"account_id": ids["account_id"], "user_id": ids["user_id"]}
    provider_ids = [ids["provider_id"]]
    created = await gather_limited(system.ok("create_provider", {**who, "display_name": f"Provider {i}",
                                                                  "email": f"p{i}@example.com"})
                                   for i in range(1, providers))
    provider_ids += [r["result"]["id"] for r in created]
    await gather_limited(system.ok("set_provider_schedule", schedule_body(ids, p, ALL_DAYS, "00:00", "24:00"))
                         for p in provider_ids)
    links = await gather_limited(system.ok("create_link", {
        **who, "name": f"Booking {i}", "durations": [30], "hosts": [p], "time_zone": "Etc/UTC",
        "maximum_days_ahead": 365}) for i, p in enumerate(provider_ids))
    return who, [r["result"]["id"] for r in links]


def conflict_lines(log_path: Any, offset: int) -> tuple[int, int]:
    """('version conflict' ERROR lines in the Postgres log after `offset`, the new offset)."""
    with open(log_path, "rb") as f:
        f.seek(offset)
        data = f.read()
    return data.count(b"ERROR:  version conflict"), offset + len(data)


async def rollbacks(system: System) -> int:
    assert system.pool is not None
    return int(await system.pool.fetchval(
        "select xact_rollback from pg_stat_database where datname = current_database()"))


async def run_case(servers: Servers, providers: int, processes: int, seconds: float,
                   profile: bool = False) -> dict[str, Any]:
    assert servers.postgres is not None and servers.nats is not None
    system = await System(servers, f"book{providers}p{processes}").open()
    try:
        procs = await system.run("commands", processes, profile)
        who, links = await set_up(system, providers)
        base = (int(time.time()) // DAY + 2) * DAY  # the day after tomorrow, 00:00 UTC
        counter = itertools.count()
        samples: dict[str, Any] = {}
        subject = f"{system.prefix}.cmd.create_event"

        async def book() -> str | None:
            k = next(counter)
            start = base + (k // len(links)) * SLOT
            reply = await system.request(subject, {
                "command_id": f"cmd-{uuid.uuid4().hex}", **who, "link_id": links[k % len(links)],
                "display_name": "Sally Scheduler", "email": "sally@example.com", "start_at": iso(start),
                "end_at": iso(start + SLOT), "time_zone": "America/Chicago"}, timeout=30)
            if reply.get("ok"):
                return None
            code = reply.get("error", {}).get("code", "?")
            samples.setdefault(code, reply)
            return str(code)

        await closed_loop(CONCURRENCY, 1.0, book)  # warm-up: connections, caches, JIT-free Python paths
        await asyncio.sleep(1.0)  # let pg_stat_database take in the warm-up's counts
        log_offset = servers.postgres.log.stat().st_size
        rollbacks_before = await rollbacks(system)
        meter = CpuMeter({"command service": [p.pid for p in procs], "postgres": [servers.postgres.proc.pid],
                          "nats-server": [servers.nats.proc.pid], "bench client": [os.getpid()]})
        load = LoadMonitor().start()
        meter.start()
        outcome: Outcome = await closed_loop(CONCURRENCY, seconds, book)
        meter.stop()
        load.stop()
        conflicts, _ = conflict_lines(servers.postgres.log, log_offset)
        await asyncio.sleep(1.5)
        rolled_back = await rollbacks(system) - rollbacks_before
        assert system.pool is not None
        booked_total = await system.pool.fetchval("select count(*) from events where type = 'event_created'")
        attempted_total = next(counter)
        if samples:
            print(f"  rejections, first of each code: {samples}", file=sys.stderr)
        if outcome.first_failure:
            print(f"  first client error: {outcome.first_failure}", file=sys.stderr)
        return {"providers": providers, "processes": processes, "outcome": outcome, "conflicts": conflicts,
                "rollbacks": rolled_back, "cpu": {**meter.cores(), "other processes": load.other_cores},
                "booked_total": booked_total, "attempted_total": attempted_total}
    finally:
        await system.close()
        if profile:
            import pstats
            for prof in sorted(system.logdir.glob("commands-*.prof")):
                print(f"--- {providers} provider(s), {prof.name}", file=sys.stderr)
                pstats.Stats(str(prof), stream=sys.stderr).sort_stats("tottime").print_stats(25)


def report(results: list[dict[str, Any]], seconds: float) -> str:
    rows = []
    for r in results:
        o: Outcome = r["outcome"]
        rejected = ", ".join(f"{k}: {v}" for k, v in sorted(o.failures.items())) or "0"
        rows.append([r["providers"], r["processes"], CONCURRENCY, o.ops, o.rate, o.p(50), o.p(99), o.p(99.9),
                     r["conflicts"], r["conflicts"] / o.ops if o.ops else float("nan"), r["rollbacks"], rejected])
    parts = [table(
        ["providers", "service processes", "concurrency", "bookings", "bookings/s", "p50 ms", "p99 ms", "p99.9 ms",
         "conflicts retried", "retries per booking", "rolled-back tx", "rejected"],
        rows,
        title=f"create_event over NATS, each booking a distinct free slot (durable Postgres, fsync on; "
              f"{seconds:g} s per case after 1 s warm-up)")]
    names = list(results[0]["cpu"])
    parts.append(table(
        ["providers", "service processes", *[f"{n} (cores)" for n in names], "total (of 2)"],
        [[r["providers"], r["processes"], *[r["cpu"][n] for n in names], sum(r["cpu"].values())] for r in results],
        title="CPU used during the measured window, in cores (1.00 = one core busy); "
              "'other processes' is load from outside this benchmark"))
    checks = [f"{r['providers']} provider(s) x{r['processes']}: {r['booked_total']} event_created in the log for "
              f"{r['attempted_total']} create_event sent (warm-up included)" for r in results]
    parts.append("Check: " + "; ".join(checks) + ". 'conflicts retried' = `version conflict` ERROR lines in the "
                 "Postgres log during the window (each one a lost race the service re-decided); 'rolled-back tx' = "
                 "pg_stat_database.xact_rollback of the case's database over the same window.")
    return "\n\n".join(parts)


def main() -> None:
    seconds = bench_seconds()
    results = []
    load = LoadMonitor().start()
    with embedded_servers(postgres=True, nats=True) as servers:
        for providers in SCENARIOS:
            for processes in PROCESSES:
                print(f"  bookings: {providers} provider(s), {processes} service process(es) ...", file=sys.stderr,
                      flush=True)
                results.append(asyncio.run(run_case(servers, providers, processes, seconds,
                                                    os.environ.get("BENCH_PROFILE") == "1")))
    print(report(results, seconds) + "\n\n" + load.stop().summary())


if __name__ == "__main__":
    main()

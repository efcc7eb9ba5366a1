"""Scale on one machine: commands/s with 1, 2 and 4 command services; queries/s with 1 and 2 query services.

Each setup runs its service processes (`python -m services.commands` / `services.query`, as cluster
mode does: one NATS queue group) against a durable embedded Postgres (fsync on) and an embedded
NATS, on its own database and subject prefix. Commands: `create_link` at concurrency 16, fresh
command ids. Queries: `link_slots` (a 7-day window of a link on a 24/7 provider with 50 bookings) at
concurrency 16, with the projections runner following the log. BENCH_SECONDS per setup (default 5).

On this 2-core machine more processes cannot add cores: a flat line says where the limit is (the
cores, shared by Postgres, NATS, the services and this client), not that scaling out is broken.

Run alone: python -m tests.benchmarks.bench_scale
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.benchmarks.common import bench_seconds, embedded_servers, table, warmup_seconds
from tests.benchmarks.system import Outcome, System, closed_loop, new_account, schedule_body

CONCURRENCY = 16
COMMAND_PROCESSES = (1, 2, 4)
QUERY_PROCESSES = (1, 2)
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


async def commands_with(servers: Any, processes: int, seconds: float) -> Outcome:
    """create_link round trips against `processes` command services."""
    system = await System(servers, f"cmd{processes}").open()
    try:
        await system.run("commands", processes)
        ids = await new_account(system)
        body = {"account_id": ids["account_id"], "user_id": ids["user_id"], "durations": [30]}
        counter = iter(range(10**9))

        async def op() -> str | None:
            reply = await system.send("create_link", {**body, "name": f"Link {next(counter)}"})
            return None if reply.get("ok") else str(reply.get("error", {}).get("code"))

        return await closed_loop(CONCURRENCY, seconds, op, warmup=warmup_seconds(seconds))
    finally:
        await system.close()


async def queries_with(servers: Any, processes: int, seconds: float) -> Outcome:
    """link_slots queries against `processes` query services."""
    system = await System(servers, f"qry{processes}").open()
    try:
        await system.run("commands")
        await system.run("projections")
        ids = await new_account(system)
        await system.ok("set_provider_schedule", schedule_body(ids, ids["provider_id"], DAYS, "00:00", "23:59"))
        link = (await system.ok("create_link", {"account_id": ids["account_id"], "user_id": ids["user_id"],
                                                 "name": "Scale", "durations": [30]}))["result"]["id"]
        tomorrow = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        for n in range(50):
            start = tomorrow + timedelta(hours=3 * n)
            await system.ok("create_event", {"account_id": ids["account_id"], "user_id": ids["user_id"],
                                             "link_id": link, "display_name": "Bench", "email": "b@example.com",
                                             "start_at": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                             "end_at": (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                             "time_zone": "Etc/UTC"})
        await system.projections_caught_up()
        await system.run("query", processes)
        query = {"account_id": ids["account_id"], "link_id": link}

        async def op() -> str | None:
            reply = await system.query("link_slots", query)
            return "error" if isinstance(reply, dict) and reply.get("ok") is False else None

        return await closed_loop(CONCURRENCY, seconds, op, warmup=warmup_seconds(seconds))
    finally:
        await system.close()


async def measure(seconds: float) -> str:
    """Every setup in turn; the two tables."""
    with embedded_servers(postgres=True, nats=True) as servers:
        commands = [(n, await commands_with(servers, n, seconds)) for n in COMMAND_PROCESSES]
        queries = [(n, await queries_with(servers, n, seconds)) for n in QUERY_PROCESSES]
    cores = os.cpu_count()
    parts = [
        table(["command services", "concurrency", "commands", "commands/s", "p50 ms", "p99 ms", "failed"],
              [[n, CONCURRENCY, o.ops, o.rate, o.p(50), o.p(99), o.failed] for n, o in commands],
              title=f"create_link over NATS by number of command services ({cores} cores, durable Postgres, "
                    f"{seconds:g} s each)"),
        table(["query services", "concurrency", "queries", "queries/s", "p50 ms", "p99 ms", "failed"],
              [[n, CONCURRENCY, o.ops, o.rate, o.p(50), o.p(99), o.failed] for n, o in queries],
              title=f"link_slots (7 days, 50 bookings) over NATS by number of query services ({cores} cores, "
                    f"{seconds:g} s each)"),
    ]
    return "\n\n".join(parts)


def main() -> None:
    """Print both tables."""
    print(asyncio.run(measure(bench_seconds())))


if __name__ == "__main__":
    main()

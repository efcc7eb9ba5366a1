"""The command round trip over NATS: create_link at concurrency 16, one and two service processes.

The command service runs as its own process(es) (`python -m services.commands`, as deployed),
pointed by SCHED_* variables at a durable embedded Postgres (fsync on) and an embedded NATS. This
process creates one account, then 16 tasks send `create_link` request/replies back to back for
BENCH_SECONDS (default 5) after a short warm-up; every command has a fresh command id and a
distinct name (so a distinct slug). With two service processes the NATS queue group spreads the
requests between them. Each run gets a fresh database and its own NATS subject prefix.

Also reported: CPU seconds used during the measured window by the service process(es), the whole
Postgres server, nats-server and this benchmark client, as a share of the 2 cores.

Run alone: python -m tests.benchmarks.bench_commands
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import nats
import psutil

from tests.benchmarks.common import (
    LoadMonitor, Result, Servers, bench_seconds, embedded_servers, process_tree_cpu, run_async_writers, table,
    warmup_seconds,
)

CONCURRENCY = 16
PROCESSES = (1, 2)
TARGET_PER_SECOND = 1500
ROOT = Path(__file__).resolve().parents[2]


def start_services(count: int, env: dict[str, str], logdir: Path,
                   profile: bool = False) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(count):
        args = [sys.executable]
        if profile:
            args += ["-m", "cProfile", "-o", str(logdir / f"commands-{i}.prof")]
        args += ["-m", "services.commands"]
        log = open(logdir / f"commands-{i}.log", "ab")
        procs.append(subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
        log.close()
    return procs


def stop_services(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()  # SIGTERM: the service stops its broker and pool and exits 0
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def connected_to(pid: int, port: int) -> bool:
    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return False
    return any(c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED for c in conns)


async def request(nc: nats.NATS, subject: str, body: dict[str, Any], timeout: float = 10) -> Any:
    reply = await nc.request(subject, msgspec.json.encode(body), timeout=timeout)
    return msgspec.json.decode(reply.data)


async def wait_ready(nc: nats.NATS, prefix: str, procs: list[subprocess.Popen[bytes]], nats_port: int,
                     logdir: Path) -> dict[str, Any]:
    """Create the benchmark's account once a service answers, and wait until every process is subscribed."""
    deadline = time.monotonic() + 60
    account: dict[str, Any] | None = None
    while account is None:
        for p in procs:
            if p.poll() is not None:
                logs = "\n".join(f.read_text(errors="replace")[-3000:] for f in sorted(logdir.glob("*.log")))
                raise RuntimeError(f"command service exited with {p.returncode}:\n{logs}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"command service did not answer within 60 s; see {logdir}")
        try:
            reply = await request(nc, f"{prefix}.cmd.create_account", {
                "command_id": f"cmd-{uuid.uuid4().hex}", "name": "Bench Account", "email": "bench@example.com"},
                timeout=2)
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            await asyncio.sleep(0.1)
            continue
        assert reply["ok"], reply
        account = reply["result"]
    while not all(connected_to(p.pid, nats_port) for p in procs):
        if time.monotonic() > deadline:
            raise RuntimeError("not every command service connected to NATS")
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # the broker subscribes right after connecting
    return account


def own_cpu(pid: int) -> float:
    """CPU seconds of one process (not its children)."""
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return t.user + t.system


class CpuMeter:
    """CPU seconds (user + system) of groups of processes between start() and stop()."""

    def __init__(self, groups: dict[str, list[int]], include_children: set[str]) -> None:
        self.groups = groups
        self.include_children = include_children
        self.before: dict[str, float] = {}
        self.used: dict[str, float] = {}

    def _sample(self) -> dict[str, float]:
        return {name: sum(process_tree_cpu(pid) if name in self.include_children else own_cpu(pid) for pid in pids)
                for name, pids in self.groups.items()}

    def start(self) -> None:
        self.before = self._sample()

    def stop(self) -> None:
        after = self._sample()
        self.used = {k: after[k] - self.before.get(k, 0.0) for k in after}


async def run_once(servers: Servers, processes: int, seconds: float, warmup: float,
                   profile: bool = False) -> tuple[Result, dict[str, float]]:
    assert servers.nats is not None and servers.postgres is not None
    db = f"bench_cmd_{processes}p_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(servers.database_url)
    await admin.execute(f"create database {db}")
    await admin.close()
    prefix = f"b{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "SCHED_DATABASE_URL": servers.database(db), "SCHED_NATS_URL": servers.nats.url,
           "SCHED_NATS_PREFIX": prefix, "SCHED_EVENTS_STREAM": f"{prefix.upper()}_EVENTS"}
    logdir = servers.root / f"commands-{processes}p"
    logdir.mkdir(parents=True, exist_ok=True)
    procs = start_services(processes, env, logdir, profile)
    nc = await nats.connect(servers.nats.url)
    try:
        account = await wait_ready(nc, prefix, procs, servers.nats.port, logdir)
        subject = f"{prefix}.cmd.create_link"
        counter = itertools.count(1)
        failures: list[Any] = []

        def make_op(_: int) -> Any:
            async def op() -> None:
                i = next(counter)
                reply = await request(nc, subject, {
                    "command_id": f"cmd-{uuid.uuid4().hex}", "account_id": account["account_id"],
                    "user_id": account["user_id"], "name": f"Bench link {i}"})
                if not reply.get("ok"):
                    failures.append(reply)
                    raise RuntimeError(reply)
            return op

        # Warm-up first (untimed), then meter CPU over the measured window only.
        await run_async_writers(CONCURRENCY, warmup, make_op)
        assert servers.postgres.proc is not None and servers.nats.proc is not None
        meter = CpuMeter({"command service": [p.pid for p in procs], "postgres": [servers.postgres.proc.pid],
                          "nats-server": [servers.nats.proc.pid], "bench client": [os.getpid()]},
                         include_children={"postgres"})
        load = LoadMonitor().start()
        meter.start()
        ops, elapsed, lat, errors = await run_async_writers(CONCURRENCY, seconds, make_op)
        meter.stop()
        load.stop()
        if failures:
            print(f"  {len(failures)} failed replies, first: {failures[0]}", file=sys.stderr)
    finally:
        await nc.close()
        stop_services(procs)
    cpu = {k: v / elapsed for k, v in meter.used.items()}  # cores busy on average
    cpu["other processes"] = load.other_cores
    return Result(f"create_link x{CONCURRENCY}, {processes} service process(es)", ops, elapsed, lat, 1, errors), cpu


def report(results: list[tuple[int, Result, dict[str, float]]], seconds: float) -> str:
    rows = [[processes, CONCURRENCY, r.ops, r.rate, r.p(50), r.p(99), r.p(99.9), r.errors,
             "PASS" if r.rate >= TARGET_PER_SECOND else "MISS"] for processes, r, _ in results]
    parts = [table(
        ["service processes", "concurrency", "commands", "commands/s", "p50 ms", "p99 ms", "p99.9 ms", "errors",
         f">= {TARGET_PER_SECOND}/s"],
        rows,
        title=f"Command round trip over NATS: create_link (durable Postgres, fsync on; {seconds:g} s per run)",
    )]
    names = list(results[0][2])
    cpu_rows = [[processes, *[cpu[n] for n in names], sum(cpu.values())] for processes, _, cpu in results]
    parts.append(table(["service processes", *[f"{n} (cores)" for n in names], "total (of 2)"], cpu_rows,
                       title="CPU used during the measured window, in cores (1.00 = one core fully busy); "
                             "'other processes' is load from outside this benchmark"))
    return "\n\n".join(parts)


def main() -> None:
    seconds = bench_seconds()
    warmup = max(1.0, warmup_seconds(seconds))
    profile = os.environ.get("BENCH_PROFILE") == "1"
    results = []
    with embedded_servers(postgres=True, nats=True) as servers:
        for processes in PROCESSES:
            print(f"  command service x{processes} ...", file=sys.stderr, flush=True)
            result, cpu = asyncio.run(run_once(servers, processes, seconds, warmup, profile))
            results.append((processes, result, cpu))
        if profile:
            import pstats
            for prof in sorted(servers.root.glob("commands-*/*.prof")):
                print(f"--- {prof}", file=sys.stderr)
                pstats.Stats(str(prof), stream=sys.stderr).sort_stats("cumulative").print_stats(40)
    print(report(results, seconds))


if __name__ == "__main__":
    main()

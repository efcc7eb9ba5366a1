"""The command round trip over NATS: create_link at concurrency 16, one and two service processes.

The command service runs as its own process(es) (`python -m services.commands`, as deployed),
pointed by SCHED_* variables at a durable embedded Postgres (fsync on) and an embedded NATS. For
each setup (1 process; 2 processes in the NATS queue group) this process creates one account, then
16 tasks send `create_link` request/replies back to back; every command has a fresh command id and
a distinct name (so a distinct slug). Each setup has its own database and NATS subject prefix and
both are started up front, then measured in interleaved slices (BENCH_ROUNDS, default 5, of
BENCH_SECONDS/BENCH_ROUNDS each, BENCH_SECONDS default 5) so that the VM's drifting disk and CPU
speed affect both alike. The idle setup's processes stay up but receive nothing.

Also reported: CPU used during the measured slices by the service process(es), the whole Postgres
server, nats-server, this benchmark client and everything else on the machine, in cores.

BENCH_PROFILE=1 runs the services under cProfile and prints their top functions to stderr.

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
    LoadMonitor,
    Result,
    Servers,
    bench_seconds,
    embedded_servers,
    process_tree_cpu,
    run_async_writers,
    table,
    warmup_seconds,
)

CONCURRENCY = 16
PROCESSES = (1, 2)
TARGET_PER_SECOND = 1500
ROOT = Path(__file__).resolve().parents[2]


def own_cpu(pid: int) -> float:
    """CPU seconds of one process (not its children)."""
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return t.user + t.system


def connected_to(pid: int, port: int) -> bool:
    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return False
    return any(c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED for c in conns)


async def request(nc: nats.NATS, subject: str, body: dict[str, Any], timeout: float = 10) -> Any:
    reply = await nc.request(subject, msgspec.json.encode(body), timeout=timeout)
    return msgspec.json.decode(reply.data)


class Setup:
    """`processes` command service instances on their own database and subject prefix."""

    def __init__(self, servers: Servers, processes: int, profile: bool) -> None:
        self.servers = servers
        self.processes = processes
        self.profile = profile
        self.prefix = f"b{uuid.uuid4().hex[:8]}"
        self.logdir = servers.root / f"commands-{processes}p"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.account: dict[str, Any] = {}
        self.counter = itertools.count(1)
        self.failures: list[Any] = []
        self.ops = 0
        self.elapsed = 0.0
        self.latencies: list[float] = []
        self.errors = 0
        self.cpu: dict[str, float] = {}

    async def start(self, nc: nats.NATS) -> None:
        assert self.servers.nats is not None
        db = f"bench_cmd_{self.processes}p_{uuid.uuid4().hex[:6]}"
        admin = await asyncpg.connect(self.servers.database_url)
        await admin.execute(f"create database {db}")
        await admin.close()
        env = {**os.environ, "SCHED_DATABASE_URL": self.servers.database(db), "SCHED_NATS_URL": self.servers.nats.url,
               "SCHED_NATS_PREFIX": self.prefix, "SCHED_EVENTS_STREAM": f"{self.prefix.upper()}_EVENTS"}
        self.logdir.mkdir(parents=True, exist_ok=True)
        for i in range(self.processes):
            args = [sys.executable]
            if self.profile:
                args += ["-m", "cProfile", "-o", str(self.logdir / f"commands-{i}.prof")]
            args += ["-m", "services.commands"]
            with open(self.logdir / f"commands-{i}.log", "ab") as log:
                self.procs.append(subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
        self.account = await self._wait_ready(nc)

    def _logs(self) -> str:
        return "\n".join(f.read_text(errors="replace")[-3000:] for f in sorted(self.logdir.glob("*.log")))

    async def _wait_ready(self, nc: nats.NATS) -> dict[str, Any]:
        """Create the account once a service answers; then wait until every process is on NATS."""
        assert self.servers.nats is not None
        deadline = time.monotonic() + 60
        account: dict[str, Any] | None = None
        while account is None:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"command service exited with {p.returncode}:\n{self._logs()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"command service did not answer within 60 s:\n{self._logs()}")
            try:
                reply = await request(nc, f"{self.prefix}.cmd.create_account", {
                    "command_id": f"cmd-{uuid.uuid4().hex}", "name": "Bench Account", "email": "bench@example.com"},
                    timeout=2)
            except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                await asyncio.sleep(0.1)
                continue
            assert reply["ok"], reply
            account = reply["result"]
        while not all(connected_to(p.pid, self.servers.nats.port) for p in self.procs):
            if time.monotonic() > deadline:
                raise RuntimeError(f"not every command service connected to NATS:\n{self._logs()}")
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # the broker subscribes right after connecting
        return account

    def make_op(self, nc: nats.NATS) -> Any:
        subject = f"{self.prefix}.cmd.create_link"

        def make(_: int) -> Any:
            async def op() -> None:
                reply = await request(nc, subject, {
                    "command_id": f"cmd-{uuid.uuid4().hex}", "account_id": self.account["account_id"],
                    "user_id": self.account["user_id"], "name": f"Bench link {next(self.counter)}"})
                if not reply.get("ok"):
                    self.failures.append(reply)
                    raise RuntimeError(reply)
            return op
        return make

    def cpu_sample(self) -> dict[str, float]:
        servers = self.servers
        assert servers.postgres and servers.postgres.proc and servers.nats and servers.nats.proc
        return {
            "command service": sum(own_cpu(p.pid) for p in self.procs),
            "postgres": process_tree_cpu(servers.postgres.proc.pid),
            "nats-server": own_cpu(servers.nats.proc.pid),
            "bench client": own_cpu(os.getpid()),
        }

    async def run(self, nc: nats.NATS, seconds: float, warmup: float) -> None:
        if warmup:
            await run_async_writers(CONCURRENCY, warmup, self.make_op(nc))
        load = LoadMonitor().start()
        before = self.cpu_sample()
        ops, elapsed, lat, errors = await run_async_writers(CONCURRENCY, seconds, self.make_op(nc))
        after = self.cpu_sample()
        load.stop()
        self.ops += ops
        self.elapsed += elapsed
        self.latencies += lat
        self.errors += errors
        for k in after:
            self.cpu[k] = self.cpu.get(k, 0.0) + after[k] - before[k]
        self.cpu["other processes"] = self.cpu.get("other processes", 0.0) + load.other_cores * load.wall

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()  # SIGTERM: the service stops its broker and pool and exits
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self.failures:
            print(f"  {len(self.failures)} failed replies, first: {self.failures[0]}", file=sys.stderr)

    def result(self) -> tuple[Result, dict[str, float]]:
        cores = {k: v / self.elapsed for k, v in self.cpu.items()} if self.elapsed else {}
        name = f"create_link x{CONCURRENCY}, {self.processes} service process(es)"
        return Result(name, self.ops, self.elapsed, self.latencies, 1, self.errors), cores


async def run_all_setups(servers: Servers, seconds: float, warmup: float, rounds: int,
                         profile: bool) -> list[tuple[int, Result, dict[str, float]]]:
    assert servers.nats is not None
    nc = await nats.connect(servers.nats.url)
    setups = [Setup(servers, n, profile) for n in PROCESSES]
    try:
        for setup in setups:
            await setup.start(nc)
        for r in range(rounds):
            for setup in setups:
                print(f"  round {r + 1}/{rounds}: {setup.processes} service process(es) ...", file=sys.stderr,
                      flush=True)
                await setup.run(nc, seconds / rounds, warmup if r == 0 else 0.0)
    finally:
        await nc.close()
        for setup in setups:
            setup.stop()
    return [(s.processes, *s.result()) for s in setups]


def report(results: list[tuple[int, Result, dict[str, float]]], seconds: float, rounds: int) -> str:
    rows = [[processes, CONCURRENCY, r.ops, r.rate, r.p(50), r.p(99), r.p(99.9), r.errors,
             "PASS" if r.rate >= TARGET_PER_SECOND else "MISS"] for processes, r, _ in results]
    parts = [table(
        ["service processes", "concurrency", "commands", "commands/s", "p50 ms", "p99 ms", "p99.9 ms", "errors",
         f">= {TARGET_PER_SECOND}/s"],
        rows,
        title=f"Command round trip over NATS: create_link (durable Postgres, fsync on; {seconds:g} s per setup, "
              f"interleaved in {rounds} rounds)",
    )]
    names = list(results[0][2])
    cpu_rows = [[processes, *[cpu[n] for n in names], sum(cpu.values()), 1000 * sum(
        v for k, v in cpu.items() if k != "other processes") / r.rate if r.rate else float("nan")]
        for processes, r, cpu in results]
    parts.append(table(
        ["service processes", *[f"{n}" for n in names], "all (of 2)", "CPU ms per command (ours)"], cpu_rows,
        title="CPU used during the measured slices, in cores (1.00 = one core busy); 'other processes' is load "
              "from outside this benchmark; the last column is CPU time of service + postgres + nats + client "
              "per command"))
    return "\n\n".join(parts)


def main() -> None:
    seconds = bench_seconds()
    warmup = max(1.0, warmup_seconds(seconds))
    rounds = max(1, int(os.environ.get("BENCH_ROUNDS", "5")))
    profile = os.environ.get("BENCH_PROFILE") == "1"
    with embedded_servers(postgres=True, nats=True) as servers:
        results = asyncio.run(run_all_setups(servers, seconds, warmup, rounds, profile))
        if profile:
            import pstats
            for prof in sorted(servers.root.glob("commands-*/*.prof")):
                print(f"--- {prof}", file=sys.stderr)
                pstats.Stats(str(prof), stream=sys.stderr).sort_stats("tottime").print_stats(30)
    print(report(results, seconds, rounds))


if __name__ == "__main__":
    main()

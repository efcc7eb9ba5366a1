"""Shared benchmark plumbing: embedded servers, timing loops, percentiles, a table printer.

Benchmarks run against the embedded servers of shared/servers.py with a *durable* Postgres
(fsync and synchronous_commit on, the defaults), so every commit waits for its WAL flush as it
would in production. Each benchmark starts its own servers in a temp dir and removes them after.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from shared.servers import EmbeddedNats, EmbeddedPostgres


def bench_seconds(default: float = 5.0) -> float:
    """How long each measured case runs (env BENCH_SECONDS)."""
    return float(os.environ.get("BENCH_SECONDS", default))


def warmup_seconds(seconds: float) -> float:
    """Untimed warm-up before each case (prepared statements, pool connections, caches)."""
    return float(os.environ.get("BENCH_WARMUP", min(1.0, seconds / 5)))


@dataclass
class Servers:
    root: Path
    postgres: EmbeddedPostgres | None = None
    nats: EmbeddedNats | None = None

    @property
    def database_url(self) -> str:
        assert self.postgres is not None
        return self.postgres.url

    def database(self, name: str) -> str:
        """The URL of another database on the same server."""
        base, _, _ = self.database_url.rpartition("/")
        return f"{base}/{name}"


@contextmanager
def embedded_servers(postgres: bool = True, nats: bool = False) -> Iterator[Servers]:
    """Durable Postgres (fsync on) and/or NATS in a temp dir, stopped and removed on exit."""
    root = Path(tempfile.mkdtemp(prefix="sched-bench-"))
    servers = Servers(root)
    try:
        if postgres:
            servers.postgres = EmbeddedPostgres(root / "pg", durable=True).start()
        if nats:
            servers.nats = EmbeddedNats(root / "nats").start()
        yield servers
    finally:
        if servers.nats:
            servers.nats.stop()
        if servers.postgres:
            servers.postgres.stop()
            servers.postgres.remove()
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Measurement


def process_tree_cpu(pid: int) -> float:
    """CPU seconds of a process and all its descendants, including descendants already reaped.

    A reaped child's time is folded into its parent's children_user/children_system, so summing
    user + system + children_* over the live tree counts every process once.
    """
    total = 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):  # a process that ended meanwhile counts nothing
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


class LoadMonitor:
    """How busy the machine was, and how much of that was *not* this benchmark's process tree.

    The benchmark, the servers and the services it starts are all descendants of this process;
    anything else that used CPU meanwhile (another test run, a build) skews the numbers on a
    2-core machine, so the benchmarks print it next to their tables.
    """

    def __init__(self) -> None:
        self.me = psutil.Process()
        self._start: tuple[float, float, float] | None = None
        self.wall = self.busy_cores = self.ours_cores = 0.0

    def _ours(self) -> float:
        return process_tree_cpu(self.me.pid)

    @staticmethod
    def _busy() -> float:
        t = psutil.cpu_times()
        return sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "steal", 0.0) - getattr(t, "guest", 0.0) \
            - getattr(t, "guest_nice", 0.0)

    def start(self) -> LoadMonitor:
        self._start = (time.monotonic(), self._busy(), self._ours())
        return self

    def stop(self) -> LoadMonitor:
        assert self._start is not None
        t0, busy0, ours0 = self._start
        self.wall = time.monotonic() - t0
        self.busy_cores = (self._busy() - busy0) / self.wall
        self.ours_cores = (self._ours() - ours0) / self.wall
        return self

    @property
    def other_cores(self) -> float:
        return max(0.0, self.busy_cores - self.ours_cores)

    def summary(self) -> str:
        cores = psutil.cpu_count() or 0
        text = (f"Machine load over this benchmark ({self.wall:.0f} s): {self.busy_cores:.2f} of {cores} cores busy, "
                f"{self.ours_cores:.2f} by the benchmark and its servers, {self.other_cores:.2f} by other processes.")
        if self.other_cores > 0.15:
            text += " WARNING: the machine was not quiet; other processes competed for the CPU."
        return text


def other_load(seconds: float = 1.0) -> float:
    """Cores used by processes other than this one's tree over the next `seconds`."""
    monitor = LoadMonitor().start()
    time.sleep(seconds)
    return monitor.stop().other_cores


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of already sorted values, linear interpolation (numpy default)."""
    if not sorted_values:
        return float("nan")
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    rank = (len(sorted_values) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return float(sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low))


@dataclass
class Result:
    """One measured case: how many operations finished in how long, and each one's latency (s)."""

    name: str
    ops: int
    elapsed: float
    latencies: list[float] = field(default_factory=list)
    items_per_op: int = 1
    errors: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.ops / self.elapsed if self.elapsed else 0.0

    @property
    def item_rate(self) -> float:
        return self.rate * self.items_per_op

    def p(self, q: float) -> float:
        """Latency percentile in milliseconds."""
        return percentile(sorted(self.latencies), q) * 1000.0


async def run_async_writers(
    writers: int, seconds: float, make_op: Callable[[int], Callable[[], Awaitable[Any]]],
    warmup: float = 0.0,
) -> tuple[int, float, list[float], int]:
    """`writers` tasks each calling its op back to back: untimed warm-up, then `seconds` measured.

    Returns (ops, elapsed, latencies, errors). Each writer gets its own op (make_op(writer_index)).
    """
    ops = [make_op(i) for i in range(writers)]
    latencies: list[list[float]] = [[] for _ in range(writers)]
    errors = [0] * writers
    clock = time.perf_counter

    async def loop(i: int, until: float, record: bool) -> None:
        op, lat = ops[i], latencies[i]
        while True:
            start = clock()
            if start >= until:
                return
            try:
                await op()
            except Exception:
                errors[i] += 1
                if not record:
                    raise
                continue
            if record:
                lat.append(clock() - start)

    if warmup > 0:
        until = clock() + warmup
        await asyncio.gather(*[loop(i, until, False) for i in range(writers)])
    started = clock()
    await asyncio.gather(*[loop(i, started + seconds, True) for i in range(writers)])
    elapsed = clock() - started
    flat = [x for lat in latencies for x in lat]
    return len(flat), elapsed, flat, sum(errors)


def run_thread_writers(
    writers: int, seconds: float, make_op: Callable[[int], Callable[[], Any]], warmup: float = 0.0,
) -> tuple[int, float, list[float], int]:
    """The same as run_async_writers for synchronous clients: one thread per writer."""
    ops = [make_op(i) for i in range(writers)]
    latencies: list[list[float]] = [[] for _ in range(writers)]
    errors = [0] * writers
    clock = time.perf_counter

    def loop(i: int, deadline: list[float], record: bool, barrier: threading.Barrier) -> None:
        barrier.wait()
        until = deadline[0]
        op, lat = ops[i], latencies[i]
        while True:
            start = clock()
            if start >= until:
                return
            try:
                op()
            except Exception:
                errors[i] += 1
                if not record:
                    raise
                continue
            if record:
                lat.append(clock() - start)

    def phase(duration: float, record: bool) -> float:
        """Run all writers for `duration` from a common start; return that start."""
        barrier = threading.Barrier(writers + 1)
        deadline = [0.0]
        threads = [threading.Thread(target=loop, args=(i, deadline, record, barrier), daemon=True)
                   for i in range(writers)]
        for t in threads:
            t.start()
        start = clock()
        deadline[0] = start + duration
        barrier.wait()
        for t in threads:
            t.join()
        return start

    if warmup > 0:
        phase(warmup, False)
    started = phase(seconds, True)
    elapsed = clock() - started
    flat = [x for lat in latencies for x in lat]
    return len(flat), elapsed, flat, sum(errors)


# ---------------------------------------------------------------------------------------------
# Output


def fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> str:
    """A plain-text (GitHub-markdown compatible) table; numbers right-aligned."""
    cells = [[fmt(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], (int, float)) for row in rows) if rows else False
               for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if numeric[i] else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths))]
        return "| " + " | ".join(parts) + " |"

    out = []
    if title:
        out.append(title)
        out.append("")
    out.append(line(headers))
    out.append("|" + "|".join(("-" * (w + 1) + ":") if numeric[i] else ("-" * (w + 2))
                               for i, w in enumerate(widths)) + "|")
    out.extend(line(r) for r in cells)
    return "\n".join(out)

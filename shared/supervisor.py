"""The supervisor behind `sched run`: start every process, restart whichever exits, stop all on a signal.

Each process is a `Component`: a way to start it (a service's command line, or an embedded server's
`start()`) and a way to stop it. One that exits is restarted after a backoff that starts at 0.5 s,
doubles up to 10 s and resets once the process has stayed up for a minute; every exit is logged with
its status. A start that fails (a server that cannot come up yet) counts as an exit.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

FIRST_DELAY = 0.5
MAX_DELAY = 10.0
HEALTHY_AFTER = 60.0
SERVER_ROLES = ("postgres", "nats")


def describe_exit(code: int | None) -> str:
    """An exit status in words: `code 1`, or `signal SIGKILL` for a process a signal ended."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name} ({code})"
        except ValueError:
            return f"signal {-code} ({code})"
    return f"code {code}"


@dataclass
class Component:
    """One supervised process: its role and instance, how to start it and how to stop it."""

    role: str
    instance: int
    start: Callable[[], subprocess.Popen[bytes]]
    stop: Callable[[subprocess.Popen[bytes]], None]
    port: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    delay: float = FIRST_DELAY
    restart_at: float | None = None
    restarts: int = 0
    history: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """`role` alone for a single instance, `role#N` otherwise."""
        return self.role if self.instance == 0 else f"{self.role}#{self.instance}"


def terminate(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Supervisor:
    """Keeps its components running; servers are added first and stopped last."""

    def __init__(self, log: Callable[[str], None] | None = None, state_file: Path | None = None) -> None:
        self.components: list[Component] = []
        self.log = log or (lambda line: print(f"[supervisor] {line}", file=sys.stderr, flush=True))
        self.state_file = state_file

    def add(self, component: Component) -> Component:
        """Start `component` now (a failure propagates: the first start must work) and supervise it."""
        component.proc = component.start()
        component.started_at = time.monotonic()
        self.components.append(component)
        self.write_state()
        return component

    def tick(self, now: float | None = None) -> None:
        """One round: note exits, schedule restarts with backoff, start those that are due."""
        now = time.monotonic() if now is None else now
        for component in self.components:
            proc = component.proc
            if proc is not None and proc.poll() is None:
                if now - component.started_at >= HEALTHY_AFTER:
                    component.delay = FIRST_DELAY  # a minute of health forgives earlier crashes
                continue
            if component.restart_at is None:
                status = describe_exit(proc.returncode if proc is not None else None)
                component.restart_at = now + component.delay
                self.log(f"{component.name} exited with {status}; restarting in {component.delay:.1f}s")
                component.history.append(status)
                component.delay = min(component.delay * 2, MAX_DELAY)
                continue
            if now < component.restart_at:
                continue
            component.restart_at = None
            try:
                component.proc = component.start()
            except Exception as exc:  # noqa: BLE001 - a failed start is retried like an exit
                self.log(f"{component.name} failed to start: {str(exc).splitlines()[0] if str(exc) else exc!r}")
                component.proc = None
                component.restart_at = now + component.delay
                component.delay = min(component.delay * 2, MAX_DELAY)
                continue
            component.started_at = time.monotonic()
            component.restarts += 1
            self.log(f"{component.name} restarted (pid {component.proc.pid}, restart {component.restarts})")
            self.write_state()

    def stop_all(self) -> None:
        """Stop every component, the services (last added first) before the servers they use."""
        services = [c for c in self.components if c.role not in SERVER_ROLES]
        for component in services:  # all at once, so they wind down in parallel
            if component.proc is not None and component.proc.poll() is None:
                component.proc.terminate()
        for component in reversed(self.components):
            if component.proc is not None:
                component.stop(component.proc)

    def processes(self) -> list[dict[str, object]]:
        """Every component with its role, instance, pid and port (what `.sched/cluster.json` lists)."""
        return [{"role": c.role, "instance": c.instance, "pid": c.proc.pid if c.proc else None, "port": c.port}
                for c in self.components]

    def write_state(self) -> None:
        """Rewrite the state file (when there is one) with the current processes."""
        if self.state_file is not None:
            staging = self.state_file.with_suffix(".tmp")
            staging.write_text(json.dumps({"processes": self.processes()}, indent=2))
            staging.replace(self.state_file)

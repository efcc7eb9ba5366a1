"""`sched run` supervises: a killed service, NATS or Postgres comes back; SIGTERM stops every child first."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from shared.servers import free_port
from shared.supervisor import Component, Supervisor

pytestmark = pytest.mark.integration

PATIENCE = 180.0  # generous: a loaded 2-core machine; the test asserts what happens, not how fast


def _health(url: str) -> dict[str, str] | None:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            return json.loads(response.read()) if response.status == 200 else None
    except OSError:
        return None


def _wait(what: str, check: object, log: Path) -> object:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        value = check()  # type: ignore[operator]
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen; log:\n{log.read_text(errors='replace')[-4000:]}")


def _pids(state: Path) -> dict[str, int]:
    try:
        processes = json.loads(state.read_text())["processes"]
    except (OSError, ValueError):
        return {}
    return {p["role"]: p["pid"] for p in processes if p["pid"]}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_run_restarts_a_killed_service_nats_and_postgres(tmp_path: Path) -> None:
    """SIGKILL the query service, then NATS, then Postgres: each comes back and /health is all "ok" again."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHED_")}
    http_port = free_port()
    env |= {"SCHED_EMBEDDED_PG_PORT": str(free_port()), "SCHED_EMBEDDED_NATS_PORT": str(free_port()),
            "SCHED_MAIL_CATCHER_PORT": str(free_port()),
            "SCHED_HTTP_PORT": str(http_port), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    url = f"http://127.0.0.1:{http_port}"
    log = tmp_path / "run.log"
    state = tmp_path / ".sched" / "processes.json"
    with open(log, "wb") as out:
        run = subprocess.Popen([sys.executable, "-m", "services.cli", "run"], cwd=tmp_path, env=env,
                               stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait("sched run to start", lambda: b"Ctrl-C stops everything" in log.read_bytes(), log)
        health = _health(url)
        assert health is not None and health["relay"].startswith("ok") and health["postgres"] == "ok", health
        for role in ("query", "nats", "postgres"):
            before = _pids(state)[role]
            os.kill(before, signal.SIGKILL)
            _wait(f"{role} to be restarted", lambda role=role, before=before: _pids(state).get(role) not in (None, before),
                  log)
            _wait(f"/health all ok after {role} came back",
                  lambda: (h := _health(url)) and all(v == "ok" or v.startswith("ok (") for v in h.values()), log)
        text = log.read_text(errors="replace")
        for role in ("query", "nats", "postgres"):
            assert f"{role} exited with signal SIGKILL (-9)" in text
        children = list(_pids(state).values())
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=PATIENCE) == 0
        assert [pid for pid in children if _alive(pid)] == []
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        data = tmp_path / ".sched" / "postgres" / "pgdata"
        if data.is_symlink():
            shutil.rmtree(data.resolve().parent, ignore_errors=True)


def test_backoff_doubles_to_ten_seconds_and_resets_after_a_minute_of_health() -> None:
    """A process that keeps exiting is restarted after 0.5, 1, 2, 4, 8, 10, 10 s; a minute up resets it."""
    lines: list[str] = []
    supervisor = Supervisor(log=lines.append)
    component = supervisor.add(Component(role="flaky", instance=0, stop=lambda p: None,
                                         start=lambda: subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])))
    assert component.proc is not None
    component.proc.wait()
    now, delays = 0.0, []
    for _ in range(7):
        supervisor.tick(now)  # notes the exit and schedules the restart
        delays.append(component.restart_at - now)  # type: ignore[operator]
        now = component.restart_at  # type: ignore[assignment]
        supervisor.tick(now)  # restarts it
        component.proc.wait()  # type: ignore[union-attr]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert "flaky exited with code 3; restarting in 0.5s" in lines
    component.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    component.started_at = now
    supervisor.tick(now + 60)
    assert component.delay == 0.5
    component.proc.kill()
    component.proc.wait()

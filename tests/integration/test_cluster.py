"""`sched run --cluster`: three NATS nodes, SCHED_EVENTS on 3 replicas, two of every service, relay failover."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import asyncpg
import nats
import pytest

from shared.servers import free_port, free_port_run
from tests.integration.test_supervisor import PATIENCE, _health, _wait

pytestmark = pytest.mark.integration


def test_cluster_runs_two_of_everything_and_the_relay_fails_over(tmp_path: Path) -> None:
    """Both gateways answer /health naming every role twice; killing the relay's lease holder hands it over."""
    nats_base, http_base = free_port_run([0, 1, 2, 100, 101, 102]), free_port_run([0, 1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHED_")}
    env |= {"SCHED_EMBEDDED_PG_PORT": str(free_port()), "SCHED_EMBEDDED_NATS_PORT": str(nats_base),
            "SCHED_MAIL_CATCHER_PORT": str(free_port()),
            "SCHED_HTTP_PORT": str(http_base), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    log = tmp_path / "cluster.log"
    with open(log, "wb") as out:
        run = subprocess.Popen([sys.executable, "-m", "services.cli", "run", "--cluster"], cwd=tmp_path, env=env,
                               stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait("the cluster to start", lambda: b"Ctrl-C stops everything" in log.read_bytes(), log)
        processes = json.loads((tmp_path / ".sched" / "cluster.json").read_text())["processes"]
        roles = Counter(p["role"] for p in processes)
        assert roles == {"postgres": 1, "nats": 3, "commands": 2, "query": 2, "projections": 2, "relay": 2,
                         "webhooks": 2, "notifier": 2, "mailcatcher": 1, "gateway": 2}
        assert sorted(p["port"] for p in processes if p["role"] == "gateway") == [http_base, http_base + 1]
        for port in (http_base, http_base + 1):
            health = _wait(f"gateway {port} healthy with every role twice",
                           lambda port=port: (h := _health(f"http://127.0.0.1:{port}"))
                           and all(h[role] == "ok (2 up)" for role in ("commands", "query", "relay")) and h, log)
            assert isinstance(health, dict) and health["nats"] == "ok" and health["postgres"] == "ok"
        urls = dict(line.split("=", 1) for line in (tmp_path / ".sched" / "urls.env").read_text().split())
        assert len(urls["SCHED_NATS_URL"].split(",")) == 3
        failover = asyncio.run(_relay_failover(urls, log))
        print(f"relay failover after SIGKILL of the lease holder: {failover:.1f}s")
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=PATIENCE) == 0
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        data = tmp_path / ".sched" / "postgres" / "pgdata"
        if data.is_symlink():
            import shutil

            shutil.rmtree(data.resolve().parent, ignore_errors=True)


async def _relay_failover(urls: dict[str, str], log: Path) -> float:
    """Kill the relay holding the lease; return the seconds until the other one holds it."""
    nc = await nats.connect(urls["SCHED_NATS_URL"].split(","))
    info = await nc.jetstream().stream_info("SCHED_EVENTS")
    await nc.close()
    assert info.config.num_replicas == 3
    conn = await asyncpg.connect(urls["SCHED_DATABASE_URL"])
    try:
        deadline = time.monotonic() + PATIENCE
        while (row := await conn.fetchrow("select holder, token from leases where name = 'relay'")) is None:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            await asyncio.sleep(0.5)
        pid = int(row["holder"].split(":")[1])
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        while True:
            now = await conn.fetchrow("select holder, token from leases where name = 'relay'")
            if now["token"] > row["token"] and f":{pid}:" not in now["holder"]:
                return time.monotonic() - killed
            assert time.monotonic() < killed + PATIENCE, log.read_text()[-3000:]
            await asyncio.sleep(0.1)
    finally:
        await conn.close()

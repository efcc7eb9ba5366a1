"""HTTP gateway benchmark (issue 5): GET /v1/links/:id/slots and POST /v1/links/:id/events.

The whole system runs as `make run` runs it (one process per service); the load generator is a
separate process with a minimal keep-alive HTTP/1.1 client, so its own cost stays small.
Targets: slots >= 800 req/s and p99 <= 25 ms at concurrency 32; bookings >= 300/s on distinct slots.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _client(host: str, port: int, requests: list[bytes], latencies: list[float], statuses: dict[int, int],
                  deadline: float) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = 0
    while time.perf_counter() < deadline and i < len(requests):
        started = time.perf_counter()
        writer.write(requests[i])
        i += 1
        status_line = await reader.readline()
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - started)
        status = int(status_line.split()[1])
        statuses[status] = statuses.get(status, 0) + 1
    writer.close()


def _load(args: tuple[str, int, list[list[bytes]], float, multiprocessing.Queue]) -> None:
    host, port, per_client, seconds, out = args

    async def main() -> None:
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        await asyncio.gather(*[_client(host, port, reqs, latencies, statuses, deadline) for reqs in per_client])
        out.put((latencies, statuses, time.perf_counter() - started))

    asyncio.run(main())


def run_load(port: int, per_client: list[list[bytes]], seconds: float) -> dict[str, float]:
    """Drive the requests from a separate process; return req/s and latency percentiles."""
    queue: multiprocessing.Queue = multiprocessing.Queue()
    proc = multiprocessing.Process(target=_load, args=(("127.0.0.1", port, per_client, seconds, queue),))
    proc.start()
    latencies, statuses, elapsed = queue.get()
    proc.join()
    return {"requests": len(latencies), "per_second": len(latencies) / elapsed,
            "p50_ms": 1000 * statistics.median(latencies), "p99_ms": 1000 * percentile(latencies, 0.99),
            "statuses": statuses}


def http_request(method: str, path: str, token: str, body: dict | None = None) -> bytes:
    payload = json.dumps(body).encode() if body is not None else b""
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n")
    return head.encode() + payload


def call(url: str, method: str = "GET", token: str = "", body: dict | None = None) -> dict:
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="sched-bench-http-"))
    from shared.servers import free_port

    port = free_port()
    env = {**os.environ, "SCHED_HTTP_PORT": str(port), "SCHED_EMBEDDED_PG_PORT": str(free_port()),
           "SCHED_EMBEDDED_NATS_PORT": str(free_port())}
    env.pop("SCHED_DATABASE_URL", None)
    env.pop("SCHED_NATS_URL", None)
    system = subprocess.Popen([sys.executable, "-m", "services.cli", "run"], cwd=root, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    token = ""
    assert system.stdout is not None
    for line in system.stdout:
        if line.startswith("Demo token:"):
            token = line.split()[-1]
        if line.startswith("Ctrl-C"):
            break
    base = f"http://127.0.0.1:{port}"
    try:
        link = call(f"{base}/v1/links", "POST", token, {"name": "Bench", "durations": [30],
                                                        "time_zone": "Etc/UTC", "increment": 30})
        me = call(f"{base}/v1/me", token=token)
        call(f"{base}/v1/providers/{me['provider_id']}/schedule", "PUT", token, {
            "time_zone": "Etc/UTC", "weekly_rules": [{"day_of_week": d, "start_time": "00:00", "end_time": "24:00"}
                                                     for d in ("monday", "tuesday", "wednesday", "thursday",
                                                               "friday", "saturday", "sunday")]})
        slots_path = f"/v1/links/{link['id']}/slots"
        slot_requests = [[http_request("GET", slots_path, token)] * 100_000 for _ in range(32)]
        run_load(port, [r[:50] for r in slot_requests], 2)  # warm-up
        slots = run_load(port, slot_requests, SECONDS)

        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
        bookings = []
        for i in range(32):
            client = []
            for k in range(400):
                moment = start + timedelta(minutes=30 * (i + 32 * k))
                client.append(http_request("POST", f"/v1/links/{link['id']}/events", token, {
                    "display_name": f"Bench {i}", "email": "bench@example.com", "time_zone": "Etc/UTC",
                    "start_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "end_at": (moment + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")}))
            bookings.append(client)
        booked = run_load(port, bookings, SECONDS)
    finally:
        system.terminate()
        system.wait(timeout=30)
    print("\n## HTTP gateway (bench_http)\n")
    print("| case | requests | req/s | p50 ms | p99 ms | statuses | target |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(f"| GET /v1/links/:id/slots (7 days), concurrency 32 | {slots['requests']} | {slots['per_second']:.0f} "
          f"| {slots['p50_ms']:.1f} | {slots['p99_ms']:.1f} | {slots['statuses']} | >= 800 req/s, p99 <= 25 ms |")
    print(f"| POST /v1/links/:id/events, distinct slots, concurrency 32 | {booked['requests']} "
          f"| {booked['per_second']:.0f} | {booked['p50_ms']:.1f} | {booked['p99_ms']:.1f} | {booked['statuses']} "
          f"| >= 300 bookings/s |")


if __name__ == "__main__":
    main()

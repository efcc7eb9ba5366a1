"""Webhook delivery: deliveries/s to a local receiver with 1 and 50 webhooks, and commit-to-delivery delay.

Each case gets a fresh database and NATS prefix on the benchmark's embedded servers (durable
Postgres, fsync on) and runs the command service, the relay and the dispatcher
(`python -m services.webhooks`) as their own processes. The receiver is an HTTP/1.1 server
(ThreadingHTTPServer, keep-alive) in this process that answers 200 at once and records arrivals.

  throughput  One account, 20 links, W webhooks (W = 1 or 50) subscribed to link.updated. A backlog
              of link_updated events (real LinkUpdated bodies, round-robin over the links) is
              appended straight into the log, 50 events per transaction, while everything runs:
              relay -> SCHED_EVENTS -> intake (outbox rows) -> one sender per webhook -> receiver.
              deliveries/s = deliveries received / (last arrival - first arrival). With 50 webhooks
              each event is 50 deliveries (fan-out), sent by 50 senders concurrently.
  delay       update_link commands over NATS for BENCH_SECONDS, 20 per second with 1 webhook and 5 per
              second with 50 (250 deliveries/s, below saturation); a delivery's delay is
              its arrival at the receiver minus the event's occurred_at (the append transaction's
              start, a few ms before its commit), so it covers the relay's poll, JetStream, the
              intake's transaction, the sender's and the receiver's work.

Run alone: python -m tests.benchmarks.bench_webhooks
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from datetime import datetime
from typing import Any

import msgspec

from shared.eventstore import NewEvent, StreamAppend
from shared.ids import new_id
from shared.messages.events import LinkSettings, LinkUpdated, encode_event
from tests.benchmarks.common import LoadMonitor, Servers, bench_seconds, embedded_servers, percentile, table
from tests.benchmarks.system import MODULES, ROOT, CpuMeter, System, gather_limited, new_account
from tests.integration.webhook_receiver import Receiver

LINKS = 20
EVENTS_PER_APPEND = 50
# update_link commands per second in the delay phase: with 50 webhooks each is 50 deliveries, so 5/s
# (250 deliveries/s) stays well below the fan-out throughput and measures delay, not a growing queue.
PACED_RATE = {1: 20.0, 50: 5.0}
MODULES.setdefault("webhooks", ("services.webhooks", "webhooks ready"))


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def arrival_delays(receiver: Receiver, since: int) -> list[float]:
    """Seconds from each event's occurred_at to its arrival, for the deliveries after the first `since`."""
    delays = []
    for request in receiver.snapshot()[since:]:
        occurred = datetime.fromisoformat(request.json["occurred_at"]).timestamp()
        delays.append(request.at - occurred)
    return delays


async def wait_for_count(receiver: Receiver, count: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while len(receiver.received) < count:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def run_case(servers: Servers, webhooks: int, seconds: float) -> dict[str, Any]:
    system = System(servers, f"whk{webhooks}")
    system.env["SCHED_WEBHOOK_ALLOW_LOOPBACK"] = "1"
    await system.open()
    receiver = Receiver().start()
    relay: subprocess.Popen[bytes] | None = None
    try:
        await system.run("commands")
        relay = subprocess.Popen([sys.executable, "-m", "services.relay"], cwd=ROOT, env=system.env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ids = await new_account(system)
        who = {"account_id": ids["account_id"], "user_id": ids["user_id"]}
        links = await gather_limited(system.ok("create_link", {**who, "name": f"Link {i}"}) for i in range(LINKS))
        for _ in range(webhooks):
            await system.ok("create_webhook", {**who, "url": receiver.url, "events": ["link.updated"]})
        dispatcher = await system.run("webhooks")
        state = [{"id": r["result"]["id"], "version": 1,
                  "settings": msgspec.convert({k: r["result"][k] for k in LinkSettings.__struct_fields__},
                                              LinkSettings)} for r in links]

        # --- throughput: a backlog appended straight into the log --------------------------------
        events = max(200, int((2000 if webhooks == 1 else 120) * seconds))
        expected = events * webhooks
        log(f"  {webhooks} webhook(s): appending {events} link_updated events ({expected} deliveries) ...")
        cpu = CpuMeter({"dispatcher": [dispatcher[0].pid], "relay": [relay.pid]}).start()
        appended_at = time.time()
        for start in range(0, events, EVENTS_PER_APPEND):
            appends: dict[int, list[NewEvent]] = {}
            for n in range(start, min(events, start + EVENTS_PER_APPEND)):
                link = n % LINKS
                event = LinkUpdated(link_id=state[link]["id"], settings=state[link]["settings"],
                                    updated_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
                appends.setdefault(link, []).append(NewEvent(new_id("evt"), "link_updated", encode_event(event)))
            await system.store.append(
                [StreamAppend(f"link-{state[i]['id']}", state[i]["version"], evs) for i, evs in appends.items()],
                command_id=None, command_name="bench_webhooks", account_id=who["account_id"])
            for i, evs in appends.items():
                state[i]["version"] += len(evs)
        append_seconds = time.time() - appended_at
        complete = await wait_for_count(receiver, expected, timeout=max(120.0, 60 * seconds))
        cpu.stop()
        arrivals = [r.at for r in receiver.snapshot()]
        span = (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else float("nan")
        throughput = {"deliveries": len(arrivals), "expected": expected, "complete": complete,
                      "rate": len(arrivals) / span if span else float("nan"), "append_seconds": append_seconds,
                      "dispatcher_cores": cpu.cores().get("dispatcher", 0.0)}

        # --- delay: paced commands ----------------------------------------------------------------
        before = len(receiver.received)
        sent = 0
        started = time.monotonic()
        rate = PACED_RATE[webhooks]
        log(f"  {webhooks} webhook(s): {rate:.0f} update_link commands/s for {seconds:.0f} s ...")
        while time.monotonic() - started < seconds:
            link = state[sent % LINKS]
            await system.ok("update_link", {**who, "link_id": link["id"], "description": f"paced {sent}"})
            sent += 1
            await asyncio.sleep(max(0.0, started + sent / rate - time.monotonic()))
        await wait_for_count(receiver, before + sent * webhooks, timeout=60)
        delays = sorted(arrival_delays(receiver, before))
        return {"webhooks": webhooks, "throughput": throughput, "delays": delays, "paced": sent, "rate": rate}
    finally:
        receiver.stop()
        if relay is not None:
            relay.terminate()
            relay.wait(timeout=30)
        await system.close()


async def run_all(seconds: float) -> list[dict[str, Any]]:
    results = []
    with embedded_servers(postgres=True, nats=True) as servers:
        for webhooks in (1, 50):
            results.append(await run_case(servers, webhooks, seconds))
    return results


def main() -> None:
    seconds = bench_seconds()
    monitor = LoadMonitor().start()
    results = asyncio.run(run_all(seconds))
    monitor.stop()
    rows = []
    for r in results:
        t = r["throughput"]
        rows.append([r["webhooks"], f"{t['deliveries']:,} of {t['expected']:,}", t["rate"],
                     t["dispatcher_cores"], t["append_seconds"]])
    print(table(["webhooks", "deliveries received", "deliveries/s", "dispatcher cores", "backlog appended in s"],
                rows, title="Webhook throughput: a backlog of link_updated events, receiver on 127.0.0.1"))
    print()
    rows = []
    for r in results:
        d = r["delays"]
        rows.append([r["webhooks"], r["rate"], r["paced"], len(d), percentile(d, 50) * 1000, percentile(d, 90) * 1000,
                     percentile(d, 99) * 1000, (d[-1] * 1000) if d else float("nan")])
    print(table(["webhooks", "events/s", "events", "deliveries", "p50 ms", "p90 ms", "p99 ms", "max ms"], rows,
                title="Delay from commit to delivery (paced update_link commands over NATS)"))
    print()
    print(monitor.summary())


if __name__ == "__main__":
    main()

"""Queries through NATS with 10k and with BENCH_EVENTS (default 1M) events in the log.

One durable embedded Postgres (fsync on) and one embedded NATS; the command service, the
projections runner, the query service and a naive query responder each run as their own process
(`python -m services.commands`, `python -m projections`, `python -m services.query`,
`python -m tests.benchmarks.system naive`).

Set up through commands (so the read models hold it as they would in production):
  * the queried host: an account's provider working 7 days a week 00:00-24:00 UTC, a link on it
    (durations 30 and 60 minutes, increment 15), and 500 busy intervals in the 7-day query window
    (tomorrow 00:00 UTC + 7 days): 50 create_event bookings of 30 minutes, 350 create_block provider
    blocks of 10 minutes and 100 external busy times of 10 minutes (one sync_external_busy_times),
    at seeded random non-overlapping places;
  * a service (30 minutes, Mon-Fri 08:00-18:00 America/New_York every 15 minutes) with 200
    providers (create_provider, set_provider_schedule Mon-Fri 09:00-17:00 New York with public
    bookings, add_service_provider).

Then the log is filled straight through EventStore.append (many streams per call, see
system.History): 6 future bookings on each of the 200 service providers in the next week, a
history of past bookings on the queried host (2 % of the log's events are its booking units, so
its provider stream holds about 1 % of the log), and the rest as tenants of 20 providers each
with two years of past bookings, cancellations, reschedules, blocks and expired holds.

Measured, in this order:
  1. at 10k events (projections follow live): link_slots (7-day window) at concurrency 16 through
     the query service; the same query answered by the naive responder, which replays the link's
     and the host's streams from the log on every query (a fresh services.commands Repository)
     and runs the same engine (both answers are compared once: they must be identical);
     earliest_slot of the 200-provider service; then each stage of both queries timed in this
     process, one query at a time (where a query's time goes, before any queueing).
  2. the projections runner stopped, the log filled to BENCH_EVENTS and vacuumed (as autovacuum would
     after the fill), then projections.runner.rebuild (one transaction from position 0) timed for both
     projections, which also brings the read models to the head; the calendars rebuild between two
     plain reads of the whole log, its reference rate. The plan of the read is printed (an index
     scan on events_feed; before the ORDER BY fix it sorted the rest of the log every batch,
     3.2k events/s at 1M events). ANALYZE of the log and
     the read models follows (what autovacuum would do within a minute).
  3. at BENCH_EVENTS (projections runner restarted): the same query cases and stage timings, plus
     a no-op query (an unknown query name: NATS + faststream + the error reply, no Postgres), the
     query service's throughput ceiling.
  4. projection lag: a writer appends bookings (TimeReserved + EventCreated, 2 events per append,
     to 64 providers' streams) at ~500 events/s; for each, commit (append returned) -> visible
     (a poll every ~1 ms of rm_reservations, and of rm_resources, finds it). Then the runner's
     read at the head, prepared, with Postgres's default plan choice and forced generic plans.
  5. the query service's RSS and peak RSS (VmHWM) after each query run.

BENCH_SECONDS (default 5) per query case after a 1 s warm-up; BENCH_EVENTS (default 1,000,000);
BENCH_PROFILE=1 runs the query service under cProfile and prints its top functions to stderr.
The whole module takes about 4.5 minutes at 1M events on a quiet 2-core machine (the fill about
70 s, the rebuilds about 2 minutes).

Run alone: python -m tests.benchmarks.bench_queries
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from projections import PROJECTIONS, runner
from projections.runner import rebuild
from shared.eventstore import NewEvent, StreamAppend
from shared.messages import events as ev
from shared.messages.events import encode_event, event_type
from tests.benchmarks.common import LoadMonitor, bench_seconds, embedded_servers, percentile, table
from tests.benchmarks.system import (
    ALL_DAYS,
    DAY,
    ROOT,
    WEEKDAYS,
    Batch,
    CpuMeter,
    HAccount,
    History,
    HProvider,
    Outcome,
    System,
    append_batches,
    closed_loop,
    gather_limited,
    iso,
    new_account,
    peak_rss,
    schedule_body,
)

CONCURRENCY = 16
SMALL = 10_000
BUSY_EVENTS, BUSY_BLOCKS, BUSY_EXTERNAL = 50, 350, 100  # 500 busy intervals in the window
SERVICE_PROVIDERS = 200
FUTURE_BOOKINGS = 6  # per service provider, in the next week
HOST_SHARE = 0.02  # of the log's events: booking units on the queried host
PROVIDERS_PER_TENANT = 100  # 1M events: ~100 tenants, so ~10k providers in all
NEAR_DAYS, FAR_DAYS = 3, 300
BATCH_EVENTS = 2000
LAG_RATE = 500  # events/s
SERVICE_ZONE = "America/New_York"
TARGETS = {"p99_ms": 10.0, "qps": 1000.0, "ratio": 1.2, "earliest_p99_ms": 10.0, "lag_p99_ms": 100.0,
           "rebuild_rate": 10_000.0}


def bench_events() -> int:
    return int(os.environ.get("BENCH_EVENTS", "1000000"))


@dataclass
class Setup:
    who: dict[str, str]
    host: HProvider
    link_id: str
    service_id: str
    service_providers: list[HProvider]
    window: tuple[int, int]
    tenants: list[HAccount] = field(default_factory=list)
    token: str = ""
    ahead: dict[int, str] = field(default_factory=dict)  # days until slots begin -> service id


# ---------------------------------------------------------------------------------------------
# Set-up through commands


def place(rng: random.Random, taken: set[int], start: int, end: int, minutes: int, grid: int) -> int:
    """A random start on a `grid`-minute grid in [start, end) whose 5-minute cells are all free."""
    cells = minutes // 5
    while True:
        t = start + rng.randrange(0, (end - start - minutes * 60) // (grid * 60)) * grid * 60
        mine = {(t - start) // 300 + i for i in range(cells)}
        if not mine & taken:
            taken |= mine
            return t


async def set_up(system: System) -> Setup:
    ids = await new_account(system)
    who = {"account_id": ids["account_id"], "user_id": ids["user_id"]}
    host_id = ids["provider_id"]
    await system.ok("set_provider_schedule", schedule_body(ids, host_id, ALL_DAYS, "00:00", "24:00"))
    link = (await system.ok("create_link", {**who, "name": "Bench link", "durations": [30, 60],
                                            "time_zone": "Etc/UTC"}))["result"]
    window = ((int(time.time()) // DAY + 1) * DAY, (int(time.time()) // DAY + 8) * DAY)
    rng = random.Random(42)
    taken: set[int] = set()
    starts = [place(rng, taken, *window, 30, 15) for _ in range(BUSY_EVENTS)]
    blocks = [place(rng, taken, *window, 10, 5) for _ in range(BUSY_BLOCKS)]
    external = sorted(place(rng, taken, *window, 10, 5) for _ in range(BUSY_EXTERNAL))
    await gather_limited((system.ok("create_event", {
        **who, "link_id": link["id"], "display_name": "Sally Scheduler", "email": "sally@example.com",
        "start_at": iso(s), "end_at": iso(s + 1800), "time_zone": "America/Chicago"}) for s in starts), 4)
    await gather_limited((system.ok("create_block", {
        **who, "attachment_type": "provider", "attachment_id": host_id, "start_at": iso(s), "end_at": iso(s + 600),
        "reason": "busy"}) for s in blocks), 4)
    await system.ok("sync_external_busy_times", {
        **who, "provider_id": host_id, "from": iso(window[0]), "until": iso(window[1]),
        "busy_times": [{"start_at": iso(s), "end_at": iso(s + 600)} for s in external]})

    service = (await system.ok("create_service", {
        **who, "name": "Consultation", "duration": 30, "time_zone": SERVICE_ZONE,
        "slot_rules": [{"days_of_week": WEEKDAYS, "start_time": "08:00", "end_time": "18:00", "interval": 15}]}
    ))["result"]
    created = await gather_limited(system.ok("create_provider", {
        **who, "display_name": f"Agent {i}", "email": f"agent{i}@example.com", "time_zone": SERVICE_ZONE})
        for i in range(SERVICE_PROVIDERS))
    provider_ids = [r["result"]["id"] for r in created]
    await gather_limited(system.ok("set_provider_schedule", schedule_body(ids, p, WEEKDAYS, "09:00", "17:00",
                                                                          SERVICE_ZONE)) for p in provider_ids)
    await gather_limited(system.ok("add_service_provider", {**who, "service_id": service["id"], "provider_id": p})
                         for p in provider_ids)
    # Two more services on the same providers whose slots begin 3 and 300 days out (slot rules' starts_on):
    # earliest_slot's cost against how far ahead the first free time lies.
    today = datetime.now(ZoneInfo(SERVICE_ZONE)).date()
    ahead: dict[int, str] = {}
    for days in (NEAR_DAYS, FAR_DAYS):
        ahead[days] = (await system.ok("create_service", {
            **who, "name": f"From {days} days", "duration": 30, "time_zone": SERVICE_ZONE,
            "slot_rules": [{"days_of_week": ALL_DAYS, "start_time": "08:00", "end_time": "18:00", "interval": 15,
                            "starts_on": (today + timedelta(days=days)).isoformat()}]}))["result"]["id"]
        await gather_limited(system.ok("add_service_provider", {**who, "service_id": ahead[days], "provider_id": p})
                             for p in provider_ids)

    store = system.store
    scope = ev.ScopeRef(id=link["scope"]["id"], name=link["scope"]["name"], slug=link["scope"]["slug"]) \
        if isinstance(link.get("scope"), dict) else ev.ScopeRef(id="scope", name="Personal", slug="me")
    preview = ev.LinkPreview(id=link["id"], name=link["name"], private_name=None, slug=link["slug"])

    async def hprovider(pid: str, name: str) -> HProvider:
        return HProvider(pid, ids["account_id"], await store.stream_version(f"provider-{pid}"), name, preview, scope)

    host = await hprovider(host_id, "Bench Host")
    sps = [await hprovider(p, f"Agent {i}") for i, p in enumerate(provider_ids)]
    return Setup(who, host, link["id"], service["id"], sps, window, token=ids.get("token", ""), ahead=ahead)


# ---------------------------------------------------------------------------------------------
# Filling the log


def future_bookings(history: History, setup: Setup) -> list[Batch]:
    """FUTURE_BOOKINGS 30-minute bookings per service provider in its working hours of the next week."""
    zone = ZoneInfo(SERVICE_ZONE)
    today = datetime.now(zone).date()
    candidates = []
    for d in range(1, 8):
        day = today + timedelta(days=d)
        if day.weekday() < 5:
            nine = datetime(day.year, day.month, day.day, 9, tzinfo=zone)
            candidates += [int((nine + timedelta(minutes=30 * k)).timestamp()) for k in range(16)]
    rng = random.Random(5)
    batches = []
    for i in range(0, len(setup.service_providers), 20):
        group = setup.service_providers[i:i + 20]
        starts = [(p, s, 30) for p in group for s in sorted(rng.sample(candidates, FUTURE_BOOKINGS))]
        batches.append(history.batch(group, 10**9, starts, kind="event"))
    return batches


async def fill(system: System, history: History, setup: Setup, current: int, target: int) -> tuple[int, int]:
    """Take the log from `current` to about `target` events: the host's history, then new tenants
    and their history. Returns (events appended, of which on the host's units).

    Streams are appended in order: the host's batches one at a time (one stream), each tenant's
    creation before its history, and concurrent appenders never share a tenant.
    """
    store = system.store
    needed = max(0, target - current)
    host_events = min(needed, int(target * HOST_SHARE) - int(current * HOST_SHARE))
    left = host_events
    appended = 0

    def host_batches() -> Any:
        nonlocal left
        while left > 0:
            b = history.batch([setup.host], min(BATCH_EVENTS, left))
            left -= b.events
            yield b

    appended += await append_batches(store, host_batches(), writers=1)
    rest = needed - appended
    tenants = max(1, round(rest / 10_000))
    created = []
    for _ in range(tenants):
        account, batch = history.new_account(PROVIDERS_PER_TENANT)
        setup.tenants.append(account)
        created.append(batch)
    made = await append_batches(store, created)
    appended += made
    rest -= made
    new_tenants = setup.tenants[-tenants:]

    def batches() -> Any:
        left, i = rest, 0
        while left > 0:
            tenant = new_tenants[i % len(new_tenants)]
            i += 1
            b = history.batch(tenant.providers, min(BATCH_EVENTS, left))
            left -= b.events
            yield b

    appended += await append_batches(store, batches(), writers=min(3, tenants))
    return appended, host_events


# ---------------------------------------------------------------------------------------------
# Measurements


@dataclass
class QueryRun:
    label: str
    outcome: Outcome
    cpu: dict[str, float]


async def measure(system: System, groups: dict[str, list[int]], label: str, subject: str, body: dict[str, Any],
                  valid: Any, seconds: float, warmup: float = 1.0) -> QueryRun:
    payload = msgspec.json.encode(body)
    assert system.nc is not None
    nc = system.nc

    async def op() -> str | None:
        reply = await nc.request(subject, payload, timeout=30)
        return None if valid(msgspec.json.decode(reply.data)) else "bad reply"

    await closed_loop(CONCURRENCY, warmup, op)
    meter = CpuMeter(groups)
    load = LoadMonitor().start()
    meter.start()
    outcome = await closed_loop(CONCURRENCY, seconds, op)
    meter.stop()
    load.stop()
    return QueryRun(label, outcome, {**meter.cores(), "other processes": load.other_cores})


async def query_cases(system: System, setup: Setup, groups: dict[str, list[int]], size: str,
                      seconds: float) -> tuple[list[QueryRun], str]:
    body = {"account_id": setup.who["account_id"], "link_id": setup.link_id, "from": iso(setup.window[0]),
            "until": iso(setup.window[1])}
    served = await system.query("link_slots", body)
    naive = await system.request(f"{system.prefix}.naive.link_slots", body, timeout=60)
    same = "identical" if served == naive else "DIFFERENT"
    check = f"{size}: read model and replay answers {same} ({len(served)} slots)"
    is_list = lambda reply: isinstance(reply, list) and len(reply) > 0
    runs = [await measure(system, groups, f"link_slots, read models ({size})", f"{system.prefix}.query.link_slots",
                          body, is_list, seconds)]
    print(f"  {runs[-1].label}: {runs[-1].outcome.rate:.0f}/s", file=sys.stderr, flush=True)
    runs.append(await measure(system, groups, f"link_slots, replay from log ({size})",
                              f"{system.prefix}.naive.link_slots", body, is_list, seconds))
    print(f"  {runs[-1].label}: {runs[-1].outcome.rate:.0f}/s", file=sys.stderr, flush=True)
    earliest = {"account_id": setup.who["account_id"], "service_id": setup.service_id, "time_zone": SERVICE_ZONE}
    first = await system.query("earliest_slot", earliest)
    check += f"; earliest slot {first.get('data', {}) and first['data'].get('start_at')}"
    runs.append(await measure(system, groups, f"earliest_slot, {SERVICE_PROVIDERS} providers ({size})",
                              f"{system.prefix}.query.earliest_slot", earliest,
                              lambda r: isinstance(r, dict) and r.get("data") is not None, seconds))
    print(f"  {runs[-1].label}: {runs[-1].outcome.rate:.0f}/s", file=sys.stderr, flush=True)
    if size != "10k":  # the transport's ceiling: a query name the service rejects without touching Postgres
        runs.append(await measure(system, groups, "no-op (unknown query name), ceiling of the NATS transport",
                                  f"{system.prefix}.query.no_such_query", {"account_id": "x"},
                                  lambda r: isinstance(r, dict) and r.get("ok") is False, seconds))
        for days, service_id in sorted(setup.ahead.items()):
            body = {"account_id": setup.who["account_id"], "service_id": service_id, "time_zone": SERVICE_ZONE}
            first = await system.query("earliest_slot", body)
            check += f"; slots from {days} days: earliest {first.get('data', {}) and first['data'].get('start_at')}"
            runs.append(await measure(system, groups, f"earliest_slot, first free {days} days out ({size})",
                                      f"{system.prefix}.query.earliest_slot", body,
                                      lambda r: isinstance(r, dict) and r.get("data") is not None, seconds))
            print(f"  {runs[-1].label}: {runs[-1].outcome.rate:.0f}/s", file=sys.stderr, flush=True)
    return runs, check


# ---------------------------------------------------------------------------------------------
# HTTP through the gateway, with wrk as the load generator


WRK_CONNECTIONS = 16


def find_wrk() -> str | None:
    """wrk (Debian's package), installed with apt-get when missing and we may; None: skip the HTTP cases."""
    found = shutil.which("wrk")
    if found is None and shutil.which("apt-get") and os.geteuid() == 0:
        print("  installing wrk (apt-get install -y wrk) ...", file=sys.stderr, flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True, check=False)
        found = shutil.which("wrk")
    return found


@dataclass
class HttpRun:
    label: str
    rate: float
    p50: float
    p99: float
    requests: int
    bad: int


def run_wrk(wrk: str, label: str, url: str, headers: dict[str, str], seconds: float) -> HttpRun:
    """One wrk run (1 thread, WRK_CONNECTIONS connections): req/s, p50 and p99 in ms, non-2xx answers."""
    args = [wrk, "-t1", f"-c{WRK_CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--latency"]
    for key, value in headers.items():
        args += ["-H", f"{key}: {value}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout

    def ms(text: str) -> float:
        number = float(text.rstrip("umsµ"))
        return number / 1000 if text.endswith("us") else number * 1000 if text.endswith("s") and not \
            text.endswith("ms") else number

    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad_match = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return HttpRun(label, rate, p50, p99, requests, int(bad_match.group(1)) if bad_match else 0)


async def http_cases(system: System, setup: Setup, seconds: float) -> list[HttpRun] | str:
    """The gateway (its own process, as `sched serve gateway` runs it) under wrk: a no-op route, one
    resource, link slots, the public earliest slot and /health."""
    wrk = find_wrk()
    if wrk is None:
        return "HTTP cases skipped: wrk is not installed (apt-get install -y wrk) and could not be installed here."
    from shared.servers import free_port

    port = free_port()
    log = system.logdir / "gateway.log"
    with open(log, "ab") as out:
        gateway = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "services.gateway.app:app",
                                    "--no-access-log", "--log-level", "warning", "--host", "127.0.0.1", "--port",
                                    str(port)], cwd=ROOT, env=system.env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"{base}/health/live", timeout=1):  # noqa: ASYNC210 - a readiness poll
                    break
            except OSError:
                await asyncio.sleep(0.1)
        token = setup.token or (await system.ok("issue_api_token", setup.who))["result"]["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        public = {"X-SavvyCal-Account": setup.who["account_id"]}
        window = f"from={iso(setup.window[0])}&until={iso(setup.window[1])}"
        cases = [("no-op route (GET /health/live)", "/health/live", {}),
                 ("one resource (GET /v1/links/:id)", f"/v1/links/{setup.link_id}", bearer),
                 ("link slots (GET /v1/links/:id/slots, 7 days)", f"/v1/links/{setup.link_id}/slots?{window}", bearer),
                 (f"earliest_slot, {SERVICE_PROVIDERS} providers (public)",
                  f"/v1/public/services/{setup.service_id}/earliest_slot?time_zone={SERVICE_ZONE}", public),
                 ("GET /health (Postgres and NATS ping)", "/health", {})]
        runs = []
        for label, path, headers in cases:
            run_wrk(wrk, label, base + path, headers, 1)  # warm-up
            runs.append(run_wrk(wrk, label, base + path, headers, seconds))
            print(f"  http {label}: {runs[-1].rate:.0f}/s", file=sys.stderr, flush=True)
        return runs
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)


async def plain_read(system: System) -> tuple[float, int]:
    """Events/s of merely reading the whole log (the projectors' read, batches of 5000, no apply); events read."""
    assert system.pool is not None
    t0 = time.perf_counter()
    count, cursor = 0, ("0", 0)
    async with system.pool.acquire() as conn, conn.transaction():
        while True:
            rows = await conn.fetch(runner._READ, cursor[0], cursor[1], 5000)
            count += len(rows)
            if len(rows) < 5000:
                break
            cursor = (str(rows[-1][8]), rows[-1][0])
    return count / (time.perf_counter() - t0), count


async def read_rates(system: System) -> tuple[float, float, int]:
    """Events/s of merely reading the whole log (the projectors' read, batches of 5000, no apply), and of
    loading the query service's in-memory calendars from position 0 (read + apply); events read."""
    from projections.calendars.memory import LiveCalendars

    assert system.pool is not None
    read_rate, count = await plain_read(system)
    live = LiveCalendars()
    t0 = time.perf_counter()
    while await live.catch_up(system.pool, 5000) == 5000:
        continue
    memory_rate = live.applied / (time.perf_counter() - t0)
    return read_rate, memory_rate, count


async def stage_breakdown(system: System, setup: Setup, rounds: int = 60) -> dict[str, tuple[float, float]]:
    """Median ms of each stage of the two queries, run one at a time in this process (no NATS, no
    concurrency): what a query costs before any queueing."""
    from datetime import date as date_type

    from projections.calendars import queries as calendars
    from projections.resources import queries as resources
    from services.query.reads import Reads
    from services.query.service import QueryService
    from shared.availability import iso_in_zone, link_slots, service_slots
    from shared.domain.links import link_rules

    pool = system.pool
    assert pool is not None
    encoder = msgspec.json.Encoder()
    account_id = setup.who["account_id"]
    start, end = setup.window
    stages: dict[str, list[float]] = {}
    clock = time.perf_counter

    def note(name: str, seconds: float) -> None:
        stages.setdefault(name, []).append(seconds * 1000)

    svc = QueryService(Reads(pool))
    link_body = msgspec.json.encode({"account_id": account_id, "link_id": setup.link_id, "from": iso(start),
                                     "until": iso(end)})
    earliest_body = msgspec.json.encode({"account_id": account_id, "service_id": setup.service_id,
                                         "time_zone": SERVICE_ZONE})
    margin = DAY + 60
    for _ in range(rounds):
        now = int(time.time())
        t0 = clock()
        link = await resources.get_state(pool, "link", setup.link_id, account_id)
        t1 = clock()
        note("link_slots: link from rm_resources (fetch + decode)", t1 - t0)
        hosts = await calendars.host_calendars(pool, link.settings.hosts, now, start, end)
        t2 = clock()
        note("link_slots: host_calendars (3 queries + rows -> Busy)", t2 - t1)
        slots = link_slots(link_rules(link), hosts, now, start, end)
        t3 = clock()
        note("link_slots: engine link_slots", t3 - t2)
        encoder.encode([{"start_at": iso(x.start), "end_at": iso(x.end), "duration": x.duration, "rank": x.rank}
                        for x in slots])
        note("link_slots: reply encoding", clock() - t3)
        t4 = clock()
        await pool.fetch("select provider_id, kind, start_at, end_at, buffer_before, buffer_after, expires_at"
                         " from rm_reservations where provider_id = any($1) and end_at > to_timestamp($2)"
                         " and start_at < to_timestamp($3)", link.settings.hosts, start - margin, end + margin)
        note("link_slots: (of which the reservations query alone)", clock() - t4)
        t5 = clock()
        await svc.execute("link_slots", link_body)
        note("link_slots: QueryService.execute, whole", clock() - t5)

        t0 = clock()
        service = await resources.get_state(pool, "service", setup.service_id, account_id)
        sps = service.ordered_providers()
        t1 = clock()
        note("earliest_slot: service from rm_resources", t1 - t0)
        rows = await calendars.providers(pool, [sp.provider_id for sp in sps])
        t2 = clock()
        note("earliest_slot: public-bookings filter (rm_providers)", t2 - t1)
        today = date_type.today()
        w0 = (now // DAY - 2) * DAY
        w1 = w0 + 372 * DAY
        hosts = await calendars.host_calendars(pool, [sp.provider_id for sp in sps if sp.provider_id in rows],
                                               now, w0, w1, {sp.provider_id: [] for sp in sps})
        t3 = clock()
        note(f"earliest_slot: host_calendars, {len(hosts)} providers x 369 days", t3 - t2)
        result = service_slots(service.rules(), hosts, now, SERVICE_ZONE, today, None, 1)
        t4 = clock()
        note("earliest_slot: engine service_slots (limit 1)", t4 - t3)
        first = result.aggregated[0][0] if result.aggregated else None
        encoder.encode({"data": iso_in_zone(first.start, SERVICE_ZONE) if first else None})
        t5 = clock()
        await svc.execute("earliest_slot", earliest_body)
        note("earliest_slot: QueryService.execute, whole", clock() - t5)
    return {name: (percentile(sorted(v), 50), percentile(sorted(v), 99)) for name, v in stages.items()}


async def safe_breakdown(system: System, setup: Setup) -> dict[str, tuple[float, float]]:
    try:
        return await stage_breakdown(system, setup)
    except Exception as exc:  # noqa: BLE001 - a failure becomes a row (the stages import the query modules)
        return {f"(breakdown failed: {type(exc).__name__}: {exc})": (float("nan"), float("nan"))}


async def head_read_cost(system: System, rounds: int = 10) -> str:
    """What the live runner's read costs at the head of the log: the shipped read, prepared as asyncpg
    prepares it, from the calendars checkpoint; as Postgres plans it (custom plans) and forced generic."""
    assert system.pool is not None
    cursor = await system.pool.fetchrow("select tx_id::text, position from checkpoints where name = $1",
                                        PROJECTIONS["calendars"].checkpoint)
    out = []
    async with system.pool.acquire() as conn:
        for mode in ("auto", "force_generic_plan"):
            await conn.execute(f"set plan_cache_mode = {mode}")
            statement = await conn.prepare(runner._READ)
            took = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                await statement.fetch(cursor[0], cursor[1], 1000)
                took.append((time.perf_counter() - t0) * 1000)
            out.append(f"{mode}: median {sorted(took)[len(took) // 2]:.1f} ms")
        await conn.execute("reset plan_cache_mode")
    return "The live runner's read at the head of the log (shipped SQL, 1000 rows max, " \
        f"{rounds} runs), plan_cache_mode " + ", ".join(out) + "."


async def measure_lag(system: System, history: History, providers: list[HProvider], seconds: float,
                      rate: float = LAG_RATE) -> dict[str, Any]:
    """Append bookings at `rate` events/s; time commit -> visible in each read model."""
    assert system.pool is not None
    store = system.store
    locks = {p.provider_id: asyncio.Lock() for p in providers}
    pending_cal: dict[str, float] = {}
    pending_res: dict[str, float] = {}
    lags: dict[str, list[float]] = {"calendars": [], "resources": []}
    commit_ms: list[float] = []
    provider_ids = [p.provider_id for p in providers]
    clock = time.perf_counter
    appended = 0
    done = asyncio.Event()
    far = (int(time.time()) // DAY + 400) * DAY

    async def one(i: int) -> None:
        nonlocal appended
        p = providers[i % len(providers)]
        async with locks[p.provider_id]:
            own, other = history.unit(p, far + i * 1800, 30, kind="event")
            stream, events = other[0]
            appends = [StreamAppend(f"provider-{p.provider_id}", p.version,
                                    [NewEvent(history.ids("evt"), event_type(e), encode_event(e)) for e in own]),
                       StreamAppend(stream, 0,
                                    [NewEvent(history.ids("evt"), event_type(e), encode_event(e)) for e in events])]
            t0 = clock()
            await store.append(appends, command_id=None, command_name="bench_lag", account_id=p.account_id)
            committed = clock()
            p.version += len(own)
        event_id = stream[len("event-"):]
        pending_cal[event_id] = committed
        pending_res[event_id] = committed
        commit_ms.append((committed - t0) * 1000)
        appended += 2

    async def poll() -> None:
        async with system.pool.acquire() as conn:  # type: ignore[union-attr]
            while not done.is_set() or pending_cal or pending_res:
                t = clock()
                if pending_cal:
                    rows = await conn.fetch("select reservation_id from rm_reservations where provider_id = any($1)"
                                            " and reservation_id = any($2)", provider_ids, list(pending_cal))
                    for r in rows:
                        lags["calendars"].append(t - pending_cal.pop(r[0]))
                t = clock()
                if pending_res:
                    rows = await conn.fetch("select id from rm_resources where kind = 'event' and id = any($1)",
                                            list(pending_res))
                    for r in rows:
                        lags["resources"].append(t - pending_res.pop(r[0]))
                await asyncio.sleep(0.001)

    poller = asyncio.create_task(poll())
    interval = 2 / rate  # 2 events per append
    tasks = []
    started = clock()
    i = 0
    while clock() - started < seconds:
        due = started + i * interval
        delay = due - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
        i += 1
    await asyncio.gather(*tasks)
    elapsed = clock() - started
    done.set()
    await asyncio.wait_for(poller, timeout=60)
    return {"rate": appended / elapsed, "appends": len(commit_ms), "commit_ms": sorted(commit_ms),
            "lags": {k: sorted(v) for k, v in lags.items()}}


def rebuild_cap() -> float:
    return float(os.environ.get("BENCH_REBUILD_CAP", "20"))


@dataclass
class Rebuilt:
    variant: str
    projection: str
    events: int  # the log's events the rebuild covered (its rate is these per second)
    seconds: float
    finished: bool
    cores: dict[str, float]
    read: int = 0  # of which read: the calendars rebuild asks Postgres for its own event types only
    # Plain reads of the whole log (events/s) right before and right after it: what its rate is compared with,
    # measured around it because other load on the machine comes and goes.
    reads_around: tuple[float, float] | None = None

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


async def timed_rebuild(system: System, postgres_pid: int, projection: Any, variant: str,
                        cap: float | None) -> Rebuilt:
    """projections.runner.rebuild over the whole log (nothing appends meanwhile); stopped (rolled back) after
    `cap` s. Its rate is the log's events per second, as for the plain read it is compared with."""
    assert system.pool is not None
    log_events = await system.event_count()
    meter = CpuMeter({"bench process (projector)": [os.getpid()], "postgres": [postgres_pid]}).start()
    t0 = time.perf_counter()
    finished, read = True, 0
    try:
        read = await asyncio.wait_for(rebuild(system.pool, projection), timeout=cap)
    except TimeoutError:
        finished = False
    took = time.perf_counter() - t0
    meter.stop()
    print(f"  rebuild {projection.name} ({variant}): {log_events:,} events ({read:,} read) in {took:.1f} s"
          f"{'' if finished else ' (stopped, rolled back)'}", file=sys.stderr, flush=True)
    return Rebuilt(variant, projection.name, log_events if finished else 0, took, finished, meter.cores(), read)


async def rebuild_all(system: System, postgres_pid: int, cap: float) -> list[Rebuilt]:
    """Both projections rebuilt from position 0 to the head (which also brings the read models up to date
    for the queries that follow); `cap` is kept for the signature's sake: the rebuild now runs to the end.

    The log is vacuumed first, as autovacuum would after the fill: the first scan of fresh rows writes their
    hint bits, and that cost belongs to neither the rebuild nor the plain read it is compared with. The
    calendars rebuild is bracketed by plain reads of the log.
    """
    assert system.pool is not None
    plan = [r[0] for r in await system.pool.fetch("explain " + runner._READ, "0", 0, 5000)]
    nodes = [line.strip().lstrip("-> ").split("  (")[0] for line in plan if "cost=" in line]
    system.notes.append(f"Plan of the projection read from position 0: {' / '.join(nodes)}.")
    t0 = time.perf_counter()
    await system.pool.execute("vacuum (analyze) events")
    system.notes.append(f"VACUUM (ANALYZE) of the log before the rebuilds: {time.perf_counter() - t0:.0f} s.")
    rebuilt = []
    for projection in PROJECTIONS.values():
        before = (await plain_read(system))[0] if projection.name == "calendars" else None
        rebuilt.append(await timed_rebuild(system, postgres_pid, projection, "rebuild", None))
        if before is not None:
            rebuilt[-1].reads_around = (before, (await plain_read(system))[0])
    return rebuilt


# ---------------------------------------------------------------------------------------------


async def run(seconds: float, events: int, profile: bool) -> str:
    notes: list[str] = []
    with embedded_servers(postgres=True, nats=True) as servers:
        assert servers.postgres is not None and servers.nats is not None
        system = await System(servers, "queries").open()
        try:
            t_setup = time.monotonic()
            await system.run("commands")
            projections = await system.run("projections")
            query_proc = (await system.run("query", profile=profile))[0]
            naive_proc = (await system.run("naive"))[0]
            print("  setting up through commands ...", file=sys.stderr, flush=True)
            setup = await set_up(system)
            setup_events = await system.event_count()
            history = History()
            store = system.store
            await append_batches(store, future_bookings(history, setup))
            await fill(system, history, setup, await system.event_count(), SMALL)
            await system.projections_caught_up()
            small_count = await system.event_count()
            notes.append(f"Set-up through commands: {setup_events:,} events in {time.monotonic() - t_setup:.0f} s.")
            groups = {"query service": [query_proc.pid], "naive responder": [naive_proc.pid],
                      "postgres": [servers.postgres.proc.pid], "nats-server": [servers.nats.proc.pid],
                      "bench client": [os.getpid()]}
            print(f"  {small_count:,} events in the log", file=sys.stderr, flush=True)
            small_runs, small_check = await query_cases(system, setup, groups, "10k", seconds)
            rss_small = peak_rss(query_proc.pid)
            naive_rss_small = peak_rss(naive_proc.pid)
            breakdown_small = await safe_breakdown(system, setup)

            # --- fill to `events`, then rebuild the read models from scratch
            system.stop(projections)
            print(f"  filling the log to {events:,} events ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            loaded, _ = await fill(system, history, setup, small_count, events)
            load_seconds = time.perf_counter() - t0
            big_count = await system.event_count()
            host_version = await store.stream_version(f"provider-{setup.host.provider_id}")
            print(f"  {loaded:,} events appended in {load_seconds:.0f} s; rebuilding ...", file=sys.stderr,
                  flush=True)
            assert system.pool is not None
            rebuilds = await rebuild_all(system, servers.postgres.proc.pid, rebuild_cap())
            print("  reading the log, then loading calendars into memory from position 0 ...", file=sys.stderr,
                  flush=True)
            rates = await read_rates(system)
            await system.pool.execute("analyze events; analyze rm_providers; analyze rm_reservations;"
                                      " analyze rm_external_busy; analyze rm_resources")
            projections = await system.run("projections")
            await system.projections_caught_up()
            big = f"{big_count / 1e6:g}M" if big_count >= 1_000_000 else f"{big_count / 1e3:.0f}k"
            big_runs, big_check = await query_cases(system, setup, groups, big, seconds)
            rss_big = peak_rss(query_proc.pid)
            naive_rss_big = peak_rss(naive_proc.pid)
            print("  HTTP through the gateway (wrk) ...", file=sys.stderr, flush=True)
            http = await http_cases(system, setup, seconds)
            providers_count = await system.pool.fetchval("select count(*) from rm_providers")
            live_reservations = await system.pool.fetchval(
                "select count(*) from rm_reservations where end_at > now() - interval '2 days'")
            notes.append(f"Query service memory holds {providers_count:,} providers and the {live_reservations:,} "
                         "reservations that end after now - 2 days (of all reservations in the read model).")

            print("  projection lag ...", file=sys.stderr, flush=True)
            lag_providers = [p for t in setup.tenants[:4] for p in t.providers][:64]
            lag = await measure_lag(system, history, lag_providers, max(seconds, 5.0))
            notes.append(await head_read_cost(system))
            breakdown = (breakdown_small, await safe_breakdown(system, setup))
            counts = await system.pool.fetchrow(
                "select (select count(*) from rm_reservations) as reservations,"
                " (select count(*) from rm_resources) as resources,"
                " pg_size_pretty(pg_database_size(current_database())) as size")
            notes.append(f"Log: {small_count:,} events at the small size, {big_count:,} at the large one "
                         f"({loaded:,} appended in {load_seconds:.0f} s = {loaded / load_seconds:,.0f} events/s "
                         f"through EventStore.append, {BATCH_EVENTS} events per call, 3 concurrent appenders); "
                         f"the queried host's provider stream has {host_version:,} events; "
                         f"{len(setup.tenants)} generated tenants x {PROVIDERS_PER_TENANT} providers; read models "
                         f"hold {counts['reservations']:,} reservations and {counts['resources']:,} resources; "
                         f"database {counts['size']}.")
            notes.append(f"Answers: {small_check}. {big_check}.")
            notes.extend(system.notes)
        finally:
            await system.close()
        if profile:
            import pstats
            for prof in sorted(system.logdir.glob("query-*.prof")):
                print(f"--- {prof}", file=sys.stderr)
                pstats.Stats(str(prof), stream=sys.stderr).sort_stats("cumulative").print_stats(45)
                pstats.Stats(str(prof), stream=sys.stderr).sort_stats("tottime").print_stats(30)
    return report(seconds, small_runs, big_runs, rebuilds, lag, (rss_small, rss_big),
                  (naive_rss_small, naive_rss_big), big, breakdown, notes, http, rates)


def report(seconds: float, small: list[QueryRun], big: list[QueryRun], rebuilds: list[Any], lag: dict[str, Any],
           rss: tuple[Any, Any], naive_rss: tuple[Any, Any], big_label: str, breakdown: tuple[dict[str, Any], ...],
           notes: list[str], http: list[HttpRun] | str, rates: tuple[float, float, int]) -> str:
    parts = []
    rows = []
    for r in small + big:
        o = r.outcome
        failed = ", ".join(f"{k}: {v}" for k, v in o.failures.items()) or "0"
        rows.append([r.label, CONCURRENCY, o.ops, o.rate, o.p(50), o.p(99), o.p(99.9), failed])
    parts.append(table(["query", "concurrency", "queries", "queries/s", "p50 ms", "p99 ms", "p99.9 ms", "failed"],
                       rows, title=f"Queries over NATS ({seconds:g} s per case after 1 s warm-up; durable Postgres)"))

    rm_small, naive_small, _earliest_small = (r.outcome for r in small)
    rm_big, naive_big, earliest_big = (r.outcome for r in big[:3])
    log_events = max(r.events for r in rebuilds)
    lag_cal, lag_res = lag["lags"]["calendars"], lag["lags"]["resources"]
    lag_p99 = max(percentile(lag_cal, 99), percentile(lag_res, 99)) * 1000
    t = TARGETS

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    target_rows = [
        [f"link_slots p99 at {big_label}", f"{rm_big.p(99):.2f} ms", f"<= {t['p99_ms']:g} ms",
         verdict(rm_big.p(99) <= t["p99_ms"])],
        [f"link_slots queries/s at {big_label}, concurrency 16", f"{rm_big.rate:,.0f}", f">= {t['qps']:,.0f}",
         verdict(rm_big.rate >= t["qps"])],
        [f"link_slots p99 {big_label} / 10k", f"{rm_big.p(99) / rm_small.p(99):.2f}", f"<= {t['ratio']:g}",
         verdict(rm_big.p(99) / rm_small.p(99) <= t["ratio"])],
        [f"link_slots p50 {big_label} / 10k", f"{rm_big.p(50) / rm_small.p(50):.2f}", f"<= {t['ratio']:g}",
         verdict(rm_big.p(50) / rm_small.p(50) <= t["ratio"])],
        [f"replay / read models, p50 latency at 10k | {big_label}",
         f"{naive_small.p(50) / rm_small.p(50):.1f}x | {naive_big.p(50) / rm_big.p(50):.1f}x", "(report)", ""],
        [f"read models / replay, queries/s at 10k | {big_label}",
         f"{rm_small.rate / naive_small.rate:.1f}x | {rm_big.rate / naive_big.rate:.1f}x", "(report)", ""],
        [f"earliest_slot p99, {SERVICE_PROVIDERS} providers, at {big_label}", f"{earliest_big.p(99):.2f} ms",
         f"<= {t['earliest_p99_ms']:g} ms", verdict(earliest_big.p(99) <= t["earliest_p99_ms"])],
        [f"projection lag p99 at {lag['rate']:.0f} events/s (calendars | resources)",
         f"{percentile(lag_cal, 99) * 1000:.1f} | {percentile(lag_res, 99) * 1000:.1f} ms",
         f"<= {t['lag_p99_ms']:g} ms", verdict(lag_p99 <= t["lag_p99_ms"])],
        *[[f"rebuild {r.projection} over {log_events:,} events ({r.variant})",
           f"{r.rate:,.0f} events/s ({r.events:,} in {r.seconds:.0f} s{'' if r.finished else ', stopped'})",
           f">= {t['rebuild_rate']:,.0f}/s", verdict(r.rate >= t["rebuild_rate"])] for r in rebuilds],
        [f"query service RSS after the 10k | {big_label} runs (peak)",
         f"{rss[0][0]:.0f} ({rss[0][1]:.0f}) | {rss[1][0]:.0f} ({rss[1][1]:.0f}) MiB", "(report)", ""],
        [f"naive responder RSS after the 10k | {big_label} runs (peak)",
         f"{naive_rss[0][0]:.0f} ({naive_rss[0][1]:.0f}) | {naive_rss[1][0]:.0f} ({naive_rss[1][1]:.0f}) MiB",
         "(report)", ""],
    ]
    parts.append(table(["measure", "value", "target", ""], target_rows, title="Targets (issue 4)"))

    noop, near, far = big[3].outcome, big[4].outcome, big[5].outcome
    read_rate, memory_rate, _ = rates
    calendars_rebuild = next(r for r in rebuilds if r.projection == "calendars")
    around = sum(calendars_rebuild.reads_around) / 2 if calendars_rebuild.reads_around else read_rate
    goals = [
        [f"link_slots / no-op over NATS, queries/s at {big_label}", (f"{rm_big.rate / noop.rate:.2f} "
         f"({rm_big.rate:,.0f} / {noop.rate:,.0f})"), ">= 0.50", verdict(rm_big.rate / noop.rate >= 0.5)],
    ]
    if isinstance(http, list):
        h = {run.label.split(" (")[0]: run for run in http}
        noop_h, one, link_h = h["no-op route"], h["one resource"], h["link slots"]
        goals += [
            ["HTTP one-resource GET / no-op route, req/s", (f"{one.rate / noop_h.rate:.2f} "
             f"({one.rate:,.0f} / {noop_h.rate:,.0f})"), ">= 0.50", verdict(one.rate / noop_h.rate >= 0.5)],
            ["HTTP link slots / one-resource GET, req/s", (f"{link_h.rate / one.rate:.2f} "
             f"({link_h.rate:,.0f} / {one.rate:,.0f})"), ">= 0.80", verdict(link_h.rate / one.rate >= 0.8)],
        ]
    else:
        goals.append(["HTTP goals", http, "", "SKIPPED"])
    goals += [
        [f"earliest_slot p50 ({SERVICE_PROVIDERS} providers, {NEAR_DAYS} days out) / link_slots p50",
         f"{near.p(50) / rm_big.p(50):.2f} ({near.p(50):.2f} / {rm_big.p(50):.2f} ms)", "<= 1.5",
         verdict(near.p(50) / rm_big.p(50) <= 1.5)],
        [f"earliest_slot p50, first free {FAR_DAYS} / {NEAR_DAYS} days out",
         f"{far.p(50) / near.p(50):.2f} ({far.p(50):.2f} / {near.p(50):.2f} ms)", "<= 2",
         verdict(far.p(50) / near.p(50) <= 2)],
        [f"link_slots p50 {big_label} / 10k", f"{rm_big.p(50) / rm_small.p(50):.2f}", "<= 1.2",
         verdict(rm_big.p(50) / rm_small.p(50) <= 1.2)],
        ["rebuild calendars in the query service's memory / plain read of the log, events/s",
         f"{memory_rate / read_rate:.2f} ({memory_rate:,.0f} / {read_rate:,.0f})", ">= 0.50",
         verdict(memory_rate / read_rate >= 0.5)],
        [("rebuild calendars read model in Postgres / plain read of the log (mean of the reads right before and "
         "after it), events/s"),
         (f"{calendars_rebuild.rate / around:.2f} ({calendars_rebuild.rate:,.0f} / {around:,.0f}; reads "
         f"{' and '.join(f'{r:,.0f}' for r in calendars_rebuild.reads_around or ())})"), ">= 0.50",
         verdict(calendars_rebuild.rate / around >= 0.5)],
        [f"query service RSS at {big_label}, ~10k providers (peak)", f"{rss[1][0]:.0f} ({rss[1][1]:.0f}) MiB",
         "(report)", ""],
    ]
    parts.append(table(["goal", "ratio (values)", "target", ""], goals, title="Goals of issue 13 (ratios in this run)"))
    if isinstance(http, list):
        parts.append(table(["route", "requests", "req/s", "p50 ms", "p99 ms", "non-2xx"],
                           [[r.label, r.requests, r.rate, r.p50, r.p99, r.bad] for r in http],
                           title=f"HTTP through the gateway, wrk -t1 -c{WRK_CONNECTIONS}, {seconds:g} s per route"))

    lag_rows = [[name, len(v), percentile(v, 50) * 1000, percentile(v, 99) * 1000, (v[-1] * 1000) if v else 0.0]
                for name, v in lag["lags"].items()]
    c = lag["commit_ms"]
    lag_rows.append(["(append latency, for reference)", len(c), percentile(c, 50), percentile(c, 99),
                     c[-1] if c else 0.0])
    parts.append(table(["read model", "events seen", "p50 ms", "p99 ms", "max ms"], lag_rows,
                       title=f"Projection lag, commit -> visible, while appending {lag['rate']:.0f} events/s "
                             f"({lag['appends']:,} appends of 2 events; polled every ~1 ms)"))

    small_stages, big_stages = breakdown
    nan = (float("nan"), float("nan"))
    parts.append(table(["stage", "p50 ms (10k)", "p99 ms (10k)", f"p50 ms ({big_label})", f"p99 ms ({big_label})"],
                       [[name, *small_stages.get(name, nan), *big_stages.get(name, nan)]
                        for name in dict.fromkeys([*small_stages, *big_stages])],
                       title="Where one query's time goes: each stage timed in the benchmark process, one query at "
                             "a time (no NATS, no concurrency), 60 rounds"))
    names = list(small[0].cpu)
    parts.append(table(["case", *[f"{n}" for n in names], "total (of 2)"],
                       [[r.label, *[r.cpu[n] for n in names], sum(r.cpu.values())] for r in small + big],
                       title="CPU during each query case, in cores (1.00 = one core busy)"))
    parts.append(table(["projection", "variant", "log events", "events read", "seconds", "events/s", "finished",
                        *[f"{n} (cores)" for n in rebuilds[0].cores]],
                       [[r.projection, r.variant, r.events, r.read, r.seconds, r.rate,
                         "yes" if r.finished else "no (cap)", *r.cores.values()] for r in rebuilds],
                       title="Rebuild (projections.runner.rebuild: one transaction from position 0; calendars: "
                             "its event types folded in memory, COPY into fresh tables swapped in; resources: "
                             "replayed in batches of 5000)"))
    parts.append("\n".join(notes))
    return "\n\n".join(parts)


def main() -> None:
    seconds = bench_seconds()
    events = bench_events()
    profile = os.environ.get("BENCH_PROFILE") == "1"
    load = LoadMonitor().start()
    output = asyncio.run(run(seconds, events, profile))
    print(output + "\n\n" + load.stop().summary())


if __name__ == "__main__":
    main()

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
  1. at 10k events (projections follow live), each query case at concurrency 16 through the query
     service, uncached and cached:
     * uncached cases ("no answer cache; warm day cache and index, no writes during the run") are
       what the goals are judged on: no request repeats, so no answer kept for its second can answer
       it; the link days and the earliest-slot index are warm, since nothing is written meanwhile. link_slots asks one of LINKS (32) links on the host (same
       settings) for the set-up window with its start moved later and its end earlier by up to 12
       hours, on any minute; earliest_slot names 150 to 199 of the 200 providers in `provider_ids`,
       in a random order. What the query service keeps across requests (calendars, link and service
       states, each link's slots per day, the earliest-slot index) is used, as in production.
     * cached cases repeat one query (the benchmark before issue 13's review measured only these).
     * last, reported and not a goal: the uncached link_slots case again while create_event and
       cancel_event in turn book and free a slot in the middle of the queried window on the host's link,
       BOOKING_RATE (30) commands a second through the command service (each one stamps every day of the
       window in the query service, which follows the log, so the kept days of the host's 32 links are
       computed again when next asked for). Its queries/s, p50, p99, commands/s and the kept days the
       query service computed meanwhile (read from its counters: the
       query service runs as `tests.benchmarks.system counted-query`, its bootstrap plus one subscription
       answering them) are shown beside the uncached case's.
     The naive responder replays the link's and the host's streams from the log on every query (a
     fresh services.commands Repository) and runs the same engine; its answer is compared with the
     query service's for the set-up window and for 8 moved windows of other links (they must be
     identical). Then each stage of both queries, on the path the query service takes (built here as
     its bootstrap builds it), timed in this process, one query at a time.
  2. the projections runner stopped, the log filled to BENCH_EVENTS and vacuumed (as autovacuum would
     after the fill), then projections.runner.rebuild (one transaction from position 0) timed for both
     projections, which also brings the read models to the head; the calendars rebuild between two
     reads of the same events it reads (its query: its event types, the data column, drained without
     folding), its reference rate, and two plain reads of the whole log (all events and columns, reported). The plan of the read is printed (an index
     scan on events_feed; before the ORDER BY fix it sorted the rest of the log every batch,
     3.2k events/s at 1M events). ANALYZE of the log and
     the read models follows (what autovacuum would do within a minute).
  3. at BENCH_EVENTS (projections runner restarted): the same query cases and stage timings, plus
     a no-op query (an unknown query name: NATS + the error reply, no Postgres), the query
     service's throughput ceiling, and earliest_slot (uncached) of two services whose slots begin 3
     and 300 days out. Then HTTP through the gateway with wrk: a no-op route, one resource (the 32
     links in turn), link slots and the public earliest slot, uncached (a Lua script gives each
     request its own URL) and cached (one URL), and /health.
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
import itertools
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
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
LINKS = 32  # links on the queried host (same settings): uncached cases spread over them
# What the "uncached" cases are: no request repeats, so no answer kept for its second answers it; but the
# link days and the earliest-slot index are warm, since nothing is written while the cases run.
NO_ANSWER_CACHE = "no answer cache; warm day cache and index, no writes during the run"
MOVE_MINUTES = 720  # an uncached window's ends move up to 12 hours into the set-up window, on any minute
BOOKING_RATE = 30  # create_event/s on the queried host during the "with bookings" case
WITH_BOOKINGS = (f"no answer cache; {BOOKING_RATE} bookings and cancels/s in turn at a slot in the middle of the "
                 "queried window meanwhile")
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
    links: list[str] = field(default_factory=list)  # every link on the host, link_id first


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
    others = await gather_limited(system.ok("create_link", {**who, "name": f"Bench link {i}", "durations": [30, 60],
                                                           "time_zone": "Etc/UTC"}) for i in range(1, LINKS))
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
    return Setup(who, host, link["id"], service["id"], sps, window, token=ids.get("token", ""), ahead=ahead,
                 links=[link["id"], *(r["result"]["id"] for r in others)])


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
    key: str
    label: str
    outcome: Outcome
    cpu: dict[str, float]
    counted: dict[str, float] = field(default_factory=dict)  # what Counting measured over the run


class Counting:
    """Reads the query service's cache counters (tests.benchmarks.system counted-query) when a case's
    measured run starts and ends: how many link days it computed meanwhile."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.first: dict[str, Any] = {}

    async def counters(self) -> dict[str, Any]:
        return await self.system.request(f"{self.system.prefix}.bench.query_counters", {})  # type: ignore[no-any-return]

    async def start(self) -> None:
        self.first = await self.counters()

    async def stop(self, outcome: Outcome) -> dict[str, float]:
        last = await self.counters()
        days = last["days_computed"] - self.first["days_computed"]
        return {"days computed": days, "days per query": days / max(1, outcome.ops), "days kept": last["days_kept"]}


class SteadyBookings(Counting):
    """Changes on the queried days while the reads run: create_event at a free slot in the middle of the
    set-up window on the queried host's link, then cancel_event of it, in turn, BOOKING_RATE commands a second
    through the command service. The query service follows the log: each booking and each cancel stamps the
    days within three of the slot's (LiveCalendars.day_stamp), every day of the 7-day window, so the kept days
    of the host's 32 links are computed again when next asked for. Answers alternate between two states."""

    def __init__(self, system: System, setup: Setup, rate: float) -> None:
        super().__init__(system)
        self.setup, self.rate = setup, rate
        self.done_commands = self.failed = 0
        self.done_at_start = 0
        self.started = 0.0
        self.done = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def command(self, name: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """The command's result, or None (refused or timed out: counted as failed)."""
        try:
            reply = await self.system.send(name, {**self.setup.who, **body})
        except Exception:  # noqa: BLE001 - a timeout counts as a failure
            reply = None
        if isinstance(reply, dict) and reply.get("ok"):
            self.done_commands += 1
            return reply.get("result") or {}
        self.failed += 1
        return None

    async def steadily(self) -> None:
        window = self.setup.window
        slots = await self.system.query("link_slots", {
            "account_id": self.setup.who["account_id"], "link_id": self.setup.link_id, "from": iso(window[0]),
            "until": iso(window[1])})
        offered = slots["data"] if isinstance(slots, dict) else slots
        middle = offered[len(offered) // 2]
        loop = asyncio.get_running_loop()
        due = loop.time()
        event_id: str | None = None
        while not self.done.is_set():
            if event_id is None:
                booked = await self.command("create_event", {
                    "link_id": self.setup.link_id, "display_name": "Steady Booker", "email": "steady@example.com",
                    "start_at": middle["start_at"], "end_at": middle["end_at"], "time_zone": "Etc/UTC"})
                event_id = booked.get("id") if booked is not None else None
            elif await self.command("cancel_event", {"event_id": event_id}) is not None:
                event_id = None
            due += 1 / self.rate
            await asyncio.sleep(max(0.0, due - loop.time()))
        if event_id is not None:
            await self.command("cancel_event", {"event_id": event_id})

    def begin(self) -> None:
        self.task = asyncio.create_task(self.steadily())

    async def end(self) -> None:
        self.done.set()
        if self.task is not None:
            await self.task
        # The fill appends to the host's stream at the version it tracks: these bookings moved it on.
        host = self.setup.host
        host.version = await self.system.store.stream_version(f"provider-{host.provider_id}")

    async def start(self) -> None:
        await super().start()
        self.done_at_start, self.started = self.done_commands, time.perf_counter()

    async def stop(self, outcome: Outcome) -> dict[str, float]:
        counted = await super().stop(outcome)
        elapsed = time.perf_counter() - self.started
        return {**counted, "commands/s": (self.done_commands - self.done_at_start) / elapsed, "failed commands": self.failed}


Body = dict[str, Any] | Callable[[], dict[str, Any]]


async def measure(system: System, groups: dict[str, list[int]], key: str, label: str, subject: str, body: Body,
                  valid: Any, seconds: float, warmup: float = 1.0, distinct: int = 16_384,
                  counting: Counting | None = None) -> QueryRun:
    """`body` is one request repeated (the per-second answer cache answers most of them) or a function
    giving each request its own: `distinct` bodies made and encoded beforehand (so the client's cost stays
    that of a fixed body), sent in turn, none again within a second at these rates. `counting` reads the
    query service's counters around the measured run."""
    payloads = [msgspec.json.encode(body)] if isinstance(body, dict) else \
        [msgspec.json.encode(body()) for _ in range(distinct)]
    assert system.nc is not None
    nc = system.nc
    turn = itertools.count()

    async def op() -> str | None:
        reply = await nc.request(subject, payloads[next(turn) % len(payloads)], timeout=30)
        return None if valid(msgspec.json.decode(reply.data)) else "bad reply"

    await closed_loop(CONCURRENCY, warmup, op)
    if counting is not None:
        await counting.start()
    meter = CpuMeter(groups)
    load = LoadMonitor().start()
    meter.start()
    outcome = await closed_loop(CONCURRENCY, seconds, op)
    meter.stop()
    load.stop()
    counted = {} if counting is None else await counting.stop(outcome)
    run = QueryRun(key, label, outcome, {**meter.cores(), "other processes": load.other_cores}, counted)
    print(f"  {label}: {outcome.rate:.0f}/s", file=sys.stderr, flush=True)
    return run


def moving_windows(setup: Setup, seed: int = 7) -> Callable[[], dict[str, Any]]:
    """link_slots bodies that never repeat: one of the host's LINKS links, and the set-up window (7 days,
    500 busy intervals) with its start moved later and its end earlier by up to 12 hours, on any minute."""
    rng = random.Random(seed)

    def body() -> dict[str, Any]:
        start = setup.window[0] + rng.randrange(MOVE_MINUTES) * 60
        end = setup.window[1] - rng.randrange(MOVE_MINUTES) * 60
        return {"account_id": setup.who["account_id"], "link_id": rng.choice(setup.links), "from": iso(start),
                "until": iso(end)}
    return body


def provider_subsets(setup: Setup, service_id: str, seed: int = 11) -> Callable[[], dict[str, Any]]:
    """earliest_slot bodies that never repeat: `provider_ids`, 150 to 199 of the service's 200 providers in
    a random order (each one's next free time comes from the index, the answer from none)."""
    rng = random.Random(seed)
    ids = [p.provider_id for p in setup.service_providers]

    def body() -> dict[str, Any]:
        return {"account_id": setup.who["account_id"], "service_id": service_id, "time_zone": SERVICE_ZONE,
                "provider_ids": ",".join(rng.sample(ids, rng.randrange(150, len(ids))))}
    return body


async def query_cases(system: System, setup: Setup, groups: dict[str, list[int]], size: str,
                      seconds: float) -> tuple[list[QueryRun], str]:
    body = {"account_id": setup.who["account_id"], "link_id": setup.link_id, "from": iso(setup.window[0]),
            "until": iso(setup.window[1])}
    served = await system.query("link_slots", body)
    naive = await system.request(f"{system.prefix}.naive.link_slots", body, timeout=60)
    same = "identical" if served == naive else "DIFFERENT"
    moved = moving_windows(setup, seed=99)
    bodies = [moved() for _ in range(8)]
    agree = sum([await system.query("link_slots", b) == await system.request(f"{system.prefix}.naive.link_slots", b,
                                                                             timeout=60) for b in bodies])
    check = (f"{size}: read model and replay answers {same} ({len(served)} slots); moved windows of other links "
             f"identical to the replay's in {agree} of {len(bodies)}")
    is_list = lambda reply: isinstance(reply, list) and len(reply) > 0
    has_data = lambda r: isinstance(r, dict) and r.get("data") is not None
    link_subject, earliest_subject = f"{system.prefix}.query.link_slots", f"{system.prefix}.query.earliest_slot"
    runs = [await measure(system, groups, "link", f"link_slots ({NO_ANSWER_CACHE}): {LINKS} links, window moved per request "
                          f"({size})", link_subject, moving_windows(setup), is_list, seconds,
                          counting=Counting(system)),
            await measure(system, groups, "link cached", f"link_slots, cached: one query repeated ({size})",
                          link_subject, body, is_list, seconds),
            await measure(system, groups, "naive", f"link_slots, replay from log, one query repeated ({size})",
                          f"{system.prefix}.naive.link_slots", body, is_list, seconds)]
    earliest = {"account_id": setup.who["account_id"], "service_id": setup.service_id, "time_zone": SERVICE_ZONE}
    first = await system.query("earliest_slot", earliest)
    check += f"; earliest slot {first.get('data', {}) and first['data'].get('start_at')}"
    runs += [await measure(system, groups, "earliest", f"earliest_slot, {SERVICE_PROVIDERS} providers ({NO_ANSWER_CACHE}): "
                           f"provider_ids per request ({size})", earliest_subject,
                           provider_subsets(setup, setup.service_id), has_data, seconds, distinct=4096),
             await measure(system, groups, "earliest cached", f"earliest_slot, {SERVICE_PROVIDERS} providers, "
                           f"cached: one query repeated ({size})", earliest_subject, earliest, has_data, seconds)]
    if size != "10k":  # the transport's ceiling: a query name the service rejects without touching Postgres
        runs.append(await measure(system, groups, "noop", "no-op (unknown query name), ceiling of the NATS transport",
                                  f"{system.prefix}.query.no_such_query", {"account_id": "x"},
                                  lambda r: isinstance(r, dict) and r.get("ok") is False, seconds))
        for days, service_id in sorted(setup.ahead.items()):
            body = {"account_id": setup.who["account_id"], "service_id": service_id, "time_zone": SERVICE_ZONE}
            first = await system.query("earliest_slot", body)
            check += f"; slots from {days} days: earliest {first.get('data', {}) and first['data'].get('start_at')}"
            runs.append(await measure(system, groups, f"earliest {days}", f"earliest_slot, first free {days} days "
                                      f"out ({NO_ANSWER_CACHE}): provider_ids per request ({size})", earliest_subject,
                                      provider_subsets(setup, service_id, seed=days), has_data, seconds,
                                      distinct=4096))
    # Last: the uncached case again while bookings and cancels land on the queried days (reported, not a goal).
    bookings = SteadyBookings(system, setup, BOOKING_RATE)
    bookings.begin()
    try:
        mixed = await measure(system, groups, "link bookings", f"link_slots ({WITH_BOOKINGS}): {LINKS} links, window "
                              f"moved per request ({size})", link_subject, moving_windows(setup, seed=13), is_list,
                              seconds, counting=bookings)
    finally:
        await bookings.end()
    runs.insert(1, mixed)  # beside the uncached case it repeats
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
    key: str
    label: str
    rate: float
    p50: float
    p99: float
    requests: int
    bad: int


def run_wrk(wrk: str, key: str, label: str, base: str, paths: list[str], headers: dict[str, str],
            seconds: float) -> HttpRun:
    """One wrk run (1 thread, WRK_CONNECTIONS connections) asking for `paths` in turn (a Lua script when
    there are several): req/s, p50 and p99 in ms, non-2xx answers."""
    args = [wrk, "-t1", f"-c{WRK_CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        if len(paths) > 1:
            script.write("local paths = {" + ",".join(f'"{p}"' for p in paths) + "}\nlocal i = 0\n"
                         "request = function()\n  i = i + 1\n  return wrk.format(nil, paths[(i % #paths) + 1])\nend\n")
            script.flush()
            args += ["-s", script.name]
        out = subprocess.run([*args, base + paths[0]], capture_output=True, text=True, check=True).stdout

    def ms(text: str) -> float:
        number = float(text.rstrip("umsµ"))
        return number / 1000 if text.endswith("us") else number * 1000 if text.endswith("s") and not \
            text.endswith("ms") else number

    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad_match = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return HttpRun(key, label, rate, p50, p99, requests, int(bad_match.group(1)) if bad_match else 0)


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
        # uvicorn picks uvloop and httptools when installed (they are dependencies); BENCH_GATEWAY_PLAIN=1 runs
        # it on asyncio's loop and h11, as before, to measure what they change (the no-op route included).
        plain = ["--loop", "asyncio", "--http", "h11"] if os.environ.get("BENCH_GATEWAY_PLAIN") == "1" else []
        gateway = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "services.gateway.app:app",
                                    "--no-access-log", "--log-level", "warning", "--host", "127.0.0.1", "--port",
                                    str(port), *plain], cwd=ROOT, env=system.env, stdout=out, stderr=subprocess.STDOUT)
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
        moved, subsets = moving_windows(setup, seed=3), provider_subsets(setup, setup.service_id, seed=5)
        moved_paths = [f"/v1/links/{b['link_id']}/slots?from={b['from']}&until={b['until']}"
                       for b in (moved() for _ in range(4096))]
        subset_paths = [f"/v1/public/services/{setup.service_id}/earliest_slot?time_zone={SERVICE_ZONE}"
                        f"&provider_ids={b['provider_ids']}" for b in (subsets() for _ in range(512))]
        earliest_path = f"/v1/public/services/{setup.service_id}/earliest_slot?time_zone={SERVICE_ZONE}"
        cases = [("noop", "no-op route (GET /health/live)", ["/health/live"], {}),
                 ("one", f"one resource (GET /v1/links/:id, {LINKS} links in turn)",
                  [f"/v1/links/{link}" for link in setup.links], bearer),
                 ("link", (f"link slots, {NO_ANSWER_CACHE} (GET /v1/links/:id/slots, 7 days, {LINKS} links, window moved "
                          "per request)"), moved_paths, bearer),
                 ("link cached", "link slots, cached (one URL repeated)",
                  [f"/v1/links/{setup.link_id}/slots?{window}"], bearer),
                 ("earliest", (f"earliest_slot, {SERVICE_PROVIDERS} providers (public), {NO_ANSWER_CACHE} (provider_ids per "
                              "request)"), subset_paths, public),
                 ("earliest cached", "earliest_slot (public), cached (one URL repeated)", [earliest_path], public),
                 ("health", "GET /health (Postgres and NATS ping)", ["/health"], {})]
        runs = []
        for key, label, paths, headers in cases:
            run_wrk(wrk, key, label, base, paths, headers, 1)  # warm-up
            runs.append(run_wrk(wrk, key, label, base, paths, headers, seconds))
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


async def same_read(system: System) -> tuple[float, int]:
    """Log events/s of merely reading the events the calendars rebuild folds: its event types up to the
    same end, through `events_up_to` (the gap-safe bounded read, only the `data` column), drained without
    folding; events read. The rate counts every event of the log, as the rebuild's rate does."""
    from projections.calendars.projector import PROJECTION as CALENDARS

    assert system.pool is not None
    log_events = await system.event_count()
    t0 = time.perf_counter()
    count = 0
    async with system.pool.acquire() as conn, conn.transaction():
        end = await runner._log_end(conn)
        async for batch in runner.events_up_to(conn, CALENDARS.event_types, end):
            count += len(batch)
    return log_events / (time.perf_counter() - t0), count


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
    """Median and p99 ms of each stage of the two queries on the path the query service takes (calendars,
    link and service states in memory, kept days, the next-free index), built here as its bootstrap builds
    it and run one query at a time in this process (no NATS, no concurrency): what a query costs before
    any queueing."""
    from projections import runnable
    from projections.calendars.memory import LiveCalendars
    from services.query.link_days import LinkDays
    from services.query.next_free import NextFreeIndex
    from services.query.reads import Reads, StateCache
    from services.query.service import QueryService
    from shared.availability import link_slots, service_slots
    from shared.domain.links import link_rules

    pool = system.pool
    assert pool is not None
    units = runnable()
    live = LiveCalendars()
    await live.load(pool, [unit.checkpoint for unit in units if unit.name == "calendars"])
    while await live.catch_up(pool):
        continue
    days = LinkDays(live)
    reads = Reads(pool, calendars=live, states=StateCache(live), projections=units, link_days=days,
                  next_free=NextFreeIndex(live))
    svc = QueryService(reads)
    encoder = msgspec.json.Encoder()
    account_id = setup.who["account_id"]
    start, end = setup.window
    stages: dict[str, list[float]] = {}
    clock = time.perf_counter
    moved, subsets = moving_windows(setup, seed=17), provider_subsets(setup, setup.service_id, seed=19)

    def note(name: str, seconds: float) -> None:
        stages.setdefault(name, []).append(seconds * 1000)

    fixed_link = msgspec.json.encode({"account_id": account_id, "link_id": setup.link_id, "from": iso(start),
                                      "until": iso(end)})
    fixed_earliest = msgspec.json.encode({"account_id": account_id, "service_id": setup.service_id,
                                          "time_zone": SERVICE_ZONE})
    await svc.execute("link_slots", fixed_link)  # the link and service states into the StateCache
    await svc.execute("earliest_slot", fixed_earliest)
    for _ in range(rounds):
        now = int(time.time())
        t0 = clock()
        found = await reads.state("link", setup.link_id, account_id)
        assert found is not None
        serial, link = found
        t1 = clock()
        note("link_slots: link from the StateCache (memory)", t1 - t0)
        hosts = live.host_calendars(link.settings.hosts, now)
        t2 = clock()
        note("link_slots: host_calendars from memory", t2 - t1)
        rules = link_rules(link)
        slots = link_slots(rules, hosts, now, start, end)
        t3 = clock()
        note("link_slots: engine link_slots over the 7 days (what every day missing costs)", t3 - t2)
        encoder.encode([{"start_at": iso(x.start), "end_at": iso(x.end), "duration": x.duration, "rank": x.rank}
                        for x in slots])
        t4 = clock()
        note("link_slots: encoding the engine's slots as the reply", t4 - t3)
        LinkDays(live).answer(serial, rules, link.settings.hosts, now, start, end)
        t5 = clock()
        note("link_slots: kept days, none kept yet (every day computed and encoded)", t5 - t4)
        days.answer(serial, rules, link.settings.hosts, now, start + 3600, end + 3600)
        t6 = clock()
        note("link_slots: kept days, all kept (a window moved by an hour, assembled)", t6 - t5)
        await svc.execute("link_slots", msgspec.json.encode(moved()))
        t7 = clock()
        note(f"link_slots: QueryService.execute, no answer cache (window moved, {LINKS} links)", t7 - t6)
        await svc.execute("link_slots", fixed_link)
        note("link_slots: QueryService.execute, cached (the same query again)", clock() - t7)

        t0 = clock()
        reads.next_free.clear()  # type: ignore[union-attr]
        await svc.execute("earliest_slot", msgspec.json.encode(subsets()))
        t1 = clock()
        note("earliest_slot: QueryService.execute, next-free index emptied first (every provider computed)",
             t1 - t0)
        await svc.execute("earliest_slot", msgspec.json.encode(subsets()))
        t2 = clock()
        note("earliest_slot: QueryService.execute, no answer cache (provider_ids), index kept", t2 - t1)
        await svc.execute("earliest_slot", fixed_earliest)
        t3 = clock()
        note("earliest_slot: QueryService.execute, cached (the same query again)", t3 - t2)
        service = await reads.state("service", setup.service_id, account_id)
        assert service is not None
        sps = service[1].ordered_providers()
        calendars = live.host_calendars([sp.provider_id for sp in sps], now)
        t4 = clock()
        service_slots(service[1].rules(), calendars, now, SERVICE_ZONE, datetime.now(ZoneInfo(SERVICE_ZONE)).date(),
                      None, 1)
        note(f"earliest_slot: engine service_slots (limit 1) over {len(calendars)} calendars, no index",
             clock() - t4)
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
    # Plain reads of the whole log, all events and columns (events/s), right before and right after it: reported.
    reads_around: tuple[float, float] | None = None
    # Reads of the same events it reads (its query: its event types, the `data` column; `same_read`) right
    # before and right after it, in log events/s: what its rate is judged against, measured around it
    # because other load on the machine comes and goes.
    same_reads_around: tuple[float, float] | None = None

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
    hint bits, and that cost belongs to neither the rebuild nor the reads it is compared with. The
    calendars rebuild is bracketed by reads of the same events it reads (`same_read`, the reference its goal
    is judged against) and by plain reads of the whole log (reported).
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
        calendars = projection.name == "calendars"
        before = (await plain_read(system))[0] if calendars else None
        same_before = (await same_read(system))[0] if calendars else None
        rebuilt.append(await timed_rebuild(system, postgres_pid, projection, "rebuild", None))
        if before is not None and same_before is not None:
            rebuilt[-1].same_reads_around = (same_before, (await same_read(system))[0])
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
            query_proc = (await system.run("counted query", profile=profile))[0]
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
    counted = [r for r in small + big if r.counted]
    parts.append(table(
        ["case", "queries/s", "p50 ms", "p99 ms", "bookings and cancels/s", "kept days computed", "per query"],
        [[r.label, r.outcome.rate, r.outcome.p(50), r.outcome.p(99), r.counted.get("commands/s", 0.0),
          int(r.counted["days computed"]), r.counted["days per query"]] for r in counted],
        title=(f"Link slots while bookings land (report, not a goal): create_event and cancel_event in turn at a free "
               f"slot in the middle of the queried window, {BOOKING_RATE} commands/s through the command service "
               "(each stamps every day of the window, so the kept days of the host's 32 links are computed "
               "again), beside the same case with no writes; kept days computed by the query service during the "
               "measured run")))

    # Every goal is judged on the cases with no answer cache (no answer of the second reused; the link days and
    # the earliest-slot index are warm, nothing being written meanwhile); cached ones are reported.
    at_small, at_big = {r.key: r.outcome for r in small}, {r.key: r.outcome for r in big}
    rm_small, naive_small = at_small["link"], at_small["naive"]
    rm_big, naive_big, earliest_big = at_big["link"], at_big["naive"], at_big["earliest"]
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
    parts.append(table(["measure", "value", "target", ""], target_rows,
                       title=f"Targets (issue 4), on the cases with {NO_ANSWER_CACHE}"))

    noop, near, far = at_big["noop"], at_big[f"earliest {NEAR_DAYS}"], at_big[f"earliest {FAR_DAYS}"]
    cached_link, cached_earliest = at_big["link cached"], at_big["earliest cached"]
    big_bookings = next(r for r in big if r.key == "link bookings")
    read_rate, memory_rate, _ = rates
    calendars_rebuild = next(r for r in rebuilds if r.projection == "calendars")
    around = sum(calendars_rebuild.reads_around) / 2 if calendars_rebuild.reads_around else read_rate
    same = calendars_rebuild.same_reads_around
    same_around = sum(same) / 2 if same else float("nan")
    goals = [
        [f"link_slots (no answer cache) / no-op over NATS, queries/s at {big_label}", (f"{rm_big.rate / noop.rate:.2f} "
         f"({rm_big.rate:,.0f} / {noop.rate:,.0f})"), ">= 0.50", verdict(rm_big.rate / noop.rate >= 0.5)],
        [f"  (report) link_slots cached / no-op at {big_label}", (f"{cached_link.rate / noop.rate:.2f} "
         f"({cached_link.rate:,.0f} / {noop.rate:,.0f})"), "(report)", ""],
        [(f"  (report) link_slots while {BOOKING_RATE} bookings and cancels/s land on the queried days / no-op at "
          f"{big_label}"),
         (f"{at_big['link bookings'].rate / noop.rate:.2f} ({at_big['link bookings'].rate:,.0f} / {noop.rate:,.0f}; "
          f"p50 {at_big['link bookings'].p(50):.2f} ms, p99 {at_big['link bookings'].p(99):.2f} ms; "
          f"{big_bookings.counted['days computed']:,.0f} kept days computed)"), "(report)", ""],
    ]
    if isinstance(http, list):
        h = {run.key: run for run in http}
        noop_h, one, link_h, link_hc = h["noop"], h["one"], h["link"], h["link cached"]
        goals += [
            ["HTTP one-resource GET / no-op route, req/s", (f"{one.rate / noop_h.rate:.2f} "
             f"({one.rate:,.0f} / {noop_h.rate:,.0f})"), ">= 0.50", verdict(one.rate / noop_h.rate >= 0.5)],
            ["HTTP link slots (no answer cache) / one-resource GET, req/s", (f"{link_h.rate / one.rate:.2f} "
             f"({link_h.rate:,.0f} / {one.rate:,.0f})"), ">= 0.80", verdict(link_h.rate / one.rate >= 0.8)],
            ["  (report) HTTP link slots cached / one-resource GET", (f"{link_hc.rate / one.rate:.2f} "
             f"({link_hc.rate:,.0f} / {one.rate:,.0f})"), "(report)", ""],
        ]
    else:
        goals.append(["HTTP goals", http, "", "SKIPPED"])
    goals += [
        [f"earliest_slot p50 ({SERVICE_PROVIDERS} providers, {NEAR_DAYS} days out) / link_slots p50, no answer cache",
         f"{near.p(50) / rm_big.p(50):.2f} ({near.p(50):.2f} / {rm_big.p(50):.2f} ms)", "<= 1.5",
         verdict(near.p(50) / rm_big.p(50) <= 1.5)],
        [f"  (report) earliest_slot p50 ({SERVICE_PROVIDERS} providers) / link_slots p50, both cached",
         (f"{cached_earliest.p(50) / cached_link.p(50):.2f} ({cached_earliest.p(50):.2f} / "
         f"{cached_link.p(50):.2f} ms)"), "(report)", ""],
        [f"earliest_slot p50, first free {FAR_DAYS} / {NEAR_DAYS} days out, no answer cache",
         f"{far.p(50) / near.p(50):.2f} ({far.p(50):.2f} / {near.p(50):.2f} ms)", "<= 2",
         verdict(far.p(50) / near.p(50) <= 2)],
        [f"link_slots p50 {big_label} / 10k, no answer cache", (f"{rm_big.p(50) / rm_small.p(50):.2f} "
         f"({rm_big.p(50):.2f} / {rm_small.p(50):.2f} ms)"), "<= 1.2", verdict(rm_big.p(50) / rm_small.p(50) <= 1.2)],
        [f"  (report) link_slots p50 {big_label} / 10k, cached",
         f"{cached_link.p(50) / at_small['link cached'].p(50):.2f}", "(report)", ""],
        ["rebuild calendars in the query service's memory / plain read of the log, events/s",
         f"{memory_rate / read_rate:.2f} ({memory_rate:,.0f} / {read_rate:,.0f})", ">= 0.50",
         verdict(memory_rate / read_rate >= 0.5)],
        [("rebuild calendars read model in Postgres / reading the same events (its query: its event types, "
          "data column; drained, not folded; mean of the reads right before and after it), log events/s"),
         (f"{calendars_rebuild.rate / same_around:.2f} ({calendars_rebuild.rate:,.0f} / {same_around:,.0f}; reads "
          f"{' and '.join(f'{r:,.0f}' for r in same or ())})"), ">= 0.50",
         verdict(calendars_rebuild.rate / same_around >= 0.5)],
        [("  (report) rebuild calendars read model in Postgres / plain read of the whole log (all events, all "
          "columns; mean of the reads right before and after it), events/s"),
         (f"{calendars_rebuild.rate / around:.2f} ({calendars_rebuild.rate:,.0f} / {around:,.0f}; reads "
          f"{' and '.join(f'{r:,.0f}' for r in calendars_rebuild.reads_around or ())})"), "(report)", ""],
        [f"query service RSS at {big_label}, ~10k providers (peak)", f"{rss[1][0]:.0f} ({rss[1][1]:.0f}) MiB",
         "(report)", ""],
    ]
    parts.append(table(["goal", "ratio (values)", "target", ""], goals, title=f"Goals of issue 13 (ratios in this run, on the cases with {NO_ANSWER_CACHE}; cached ones "
                               "reported)"))
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
                       title="Where one query's time goes on the query service's path (memory): each stage timed in "
                             "the benchmark process, one query at a time (no NATS, no concurrency), 60 rounds"))
    names = list(small[0].cpu)
    parts.append(table(["case", *[f"{n}" for n in names], "total (of 2)"],
                       [[r.label, *[r.cpu[n] for n in names], sum(r.cpu.values())] for r in small + big],
                       title="CPU during each query case, in cores (1.00 = one core busy)"))
    parts.append(table(["projection", "variant", "log events", "events read", "seconds", "events/s", "finished",
                        *[f"{n} (cores)" for n in rebuilds[0].cores]],
                       [[r.projection, r.variant, r.events, r.read, r.seconds, r.rate,
                         "yes" if r.finished else "no (cap)", *r.cores.values()] for r in rebuilds],
                       title="Rebuild (projections.runner.rebuild: one transaction from position 0; calendars: "
                             "its event types folded in Postgres into fresh tables swapped in; resources: "
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

"""The system under benchmark for bench_bookings and bench_queries: processes, NATS clients, history.

* `System`: one fresh database (migrated: event store + read models) and one NATS subject prefix on
  the benchmark's embedded servers, plus the service processes started against it
  (`python -m services.commands`, `services.query`, `projections`, and the naive query responder
  below), each waited for by its "... ready" line.
* `CpuMeter`: CPU seconds per group of processes over a measured window.
* `History`: realistic events (the real `shared.messages.events` types, encoded as the command
  service encodes them) appended straight into the log with `EventStore.append`, many streams per
  call, for reaching 10k / 1M events quickly.
* `python -m tests.benchmarks.system counted-query`: the query service (its bootstrap, unchanged), also
  answering `<prefix>.bench.query_counters` with how many link days and earliest-slot entries it has
  computed, so a benchmark can tell how many kept days a case made it compute again.
* `python -m tests.benchmarks.system naive` (env as for the services): answers
  `<prefix>.naive.link_slots` the way a design without read models would - replay the link's and
  its hosts' streams from the log on every query (a fresh `Repository`, no cache), then run the
  same engine and encode the same reply as services/query.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import nats
import psutil

from projections import migrations
from shared.availability import iso_utc
from shared.eventstore import EventStore, NewEvent, StreamAppend, create_pool, migrate
from shared.messages import events as ev
from shared.messages.events import encode_event, event_type
from shared.settings import Settings
from tests.benchmarks.common import Servers, process_tree_cpu

ROOT = Path(__file__).resolve().parents[2]
DAY = 86400
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday"]
ALL_DAYS = WEEKDAYS + ["saturday", "sunday"]

MODULES = {
    "commands": ("services.commands", "command service ready"),
    "query": ("services.query", "query service ready"),
    "projections": ("projections", "projections ready"),
    "naive": ("tests.benchmarks.system", "naive query service ready"),
    "counted query": ("tests.benchmarks.system", "query service ready"),
}
ARGUMENTS = {"naive": ["naive"], "counted query": ["counted-query"]}  # of the kinds run from this module


def iso(seconds: int) -> str:
    return iso_utc(seconds)


# ---------------------------------------------------------------------------------------------
# Processes


@dataclass
class Proc:
    kind: str
    popen: subprocess.Popen[bytes]
    log: Path
    ready_line: str

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def own_cpu(pid: int) -> float:
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return t.user + t.system


def peak_rss(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS = VmHWM) of a process, in MiB."""
    current = psutil.Process(pid).memory_info().rss / 2**20
    peak = current
    with contextlib.suppress(OSError):  # no /proc: the peak is unknown, report the current RSS
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return current, peak


class CpuMeter:
    """CPU seconds (user + system) of named groups of processes between start() and stop()."""

    def __init__(self, groups: dict[str, list[int]], include_children: Iterable[str] = ("postgres",)) -> None:
        self.groups = groups
        self.include_children = set(include_children)
        self.before: dict[str, float] = {}
        self.used: dict[str, float] = {}
        self.t0 = self.wall = 0.0

    def _sample(self) -> dict[str, float]:
        return {name: sum(process_tree_cpu(p) if name in self.include_children else own_cpu(p) for p in pids)
                for name, pids in self.groups.items()}

    def start(self) -> CpuMeter:
        self.before = self._sample()
        self.t0 = time.monotonic()
        return self

    def stop(self) -> CpuMeter:
        after = self._sample()
        self.wall = time.monotonic() - self.t0
        self.used = {k: after[k] - self.before.get(k, 0.0) for k in after}
        return self

    def cores(self) -> dict[str, float]:
        return {k: v / self.wall for k, v in self.used.items()} if self.wall else {}


class System:
    """A fresh database and NATS prefix on the benchmark's servers, and the processes serving them."""

    def __init__(self, servers: Servers, label: str) -> None:
        assert servers.postgres is not None and servers.nats is not None
        self.servers = servers
        tag = uuid.uuid4().hex[:8]
        self.db = f"bench_{label}_{tag}"
        self.prefix = f"b{tag}"
        self.database_url = servers.database(self.db)
        self.env = {**os.environ, "SCHED_DATABASE_URL": self.database_url, "SCHED_NATS_URL": servers.nats.url,
                    "SCHED_NATS_PREFIX": self.prefix, "SCHED_EVENTS_STREAM": f"{self.prefix.upper()}_EVENTS",
                    "PYTHONUNBUFFERED": "1",
                    "SCHED_SIGNING_SECRET": os.environ.get("SCHED_SIGNING_SECRET") or secrets.token_urlsafe(48)}
        self.logdir = servers.root / f"{label}-{tag}"
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.procs: list[Proc] = []
        self.notes: list[str] = []
        self.pool: asyncpg.Pool | None = None
        self.nc: nats.NATS | None = None
        self._counter = 0

    async def open(self, pool_size: int = 20) -> System:
        admin = await asyncpg.connect(self.servers.database_url)
        await admin.execute(f"create database {self.db}")
        await admin.close()
        self.pool = await create_pool(self.database_url, min_size=2, max_size=pool_size)
        async with self.pool.acquire() as conn:
            await migrate(conn, migrations())
        self.nc = await nats.connect(self.servers.nats.url)  # type: ignore[union-attr]
        return self

    @property
    def store(self) -> EventStore:
        assert self.pool is not None
        return EventStore(self.pool)

    def start(self, kind: str, count: int = 1, profile: bool = False) -> list[Proc]:
        module, ready = MODULES[kind]
        started = []
        for _ in range(count):
            self._counter += 1
            name = f"{kind}-{self._counter}"
            log = self.logdir / f"{name}.log"
            args = [sys.executable]
            if profile:
                args += ["-m", "cProfile", "-o", str(self.logdir / f"{name}.prof")]
            args += ["-m", module, *ARGUMENTS.get(kind, [])]
            with open(log, "ab") as out:
                popen = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
            started.append(Proc(kind, popen, log, ready))
        self.procs.extend(started)
        return started

    async def wait_ready(self, procs: Sequence[Proc], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for proc in procs:
            while proc.ready_line not in proc.log_tail(100_000):
                if proc.popen.poll() is not None:
                    raise RuntimeError(f"{proc.kind} exited with {proc.popen.returncode}:\n{proc.log_tail()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{proc.kind} not ready within {timeout:.0f} s:\n{proc.log_tail()}")
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # let the subscriptions reach the server

    async def run(self, kind: str, count: int = 1, profile: bool = False) -> list[Proc]:
        procs = self.start(kind, count, profile)
        await self.wait_ready(procs)
        return procs

    def stop(self, procs: Sequence[Proc] | None = None) -> None:
        chosen = list(self.procs if procs is None else procs)
        for p in chosen:
            if p.popen.poll() is None:
                p.popen.send_signal(signal.SIGTERM)
        for p in chosen:
            try:
                p.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.popen.kill()
                p.popen.wait()
            if p in self.procs:
                self.procs.remove(p)

    async def close(self) -> None:
        self.stop()
        if self.nc is not None:
            await self.nc.close()
        if self.pool is not None:
            await self.pool.close()
        admin = await asyncpg.connect(self.servers.database_url)
        try:
            await admin.execute(f"drop database if exists {self.db} with (force)")
        finally:
            await admin.close()

    async def request(self, subject: str, body: dict[str, Any], timeout: float = 10) -> Any:
        assert self.nc is not None
        reply = await self.nc.request(subject, msgspec.json.encode(body), timeout=timeout)
        return msgspec.json.decode(reply.data)

    async def send(self, name: str, body: dict[str, Any], timeout: float = 10) -> Any:
        """A command on `<prefix>.cmd.<name>` with a fresh command id."""
        return await self.request(f"{self.prefix}.cmd.{name}",
                                  {"command_id": f"cmd-{uuid.uuid4().hex}", **body}, timeout)

    async def ok(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """A command that must succeed; retried while no service answers yet."""
        for _ in range(100):
            try:
                reply = await self.send(name, body)
                break
            except nats.errors.NoRespondersError:
                await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"no command service answers {name}")
        if not reply.get("ok"):
            raise RuntimeError(f"{name} failed: {reply}")
        return reply  # type: ignore[no-any-return]

    async def query(self, name: str, body: dict[str, Any], timeout: float = 10) -> Any:
        return await self.request(f"{self.prefix}.query.{name}", body, timeout)

    async def event_count(self) -> int:
        assert self.pool is not None
        return int(await self.pool.fetchval("select count(*) from events"))

    async def projections_caught_up(self, timeout: float = 600) -> float:
        """Wait until every projection's checkpoint is at the head of the log; return the seconds waited."""
        from projections import PROJECTIONS

        assert self.pool is not None
        t0 = time.monotonic()
        names = [p.checkpoint for p in PROJECTIONS.values()]
        while True:
            behind = await self.pool.fetchval(
                "select count(*) from unnest($1::text[]) as n(name) left join checkpoints c on c.name = n.name"
                " where c.name is null or exists (select 1 from events e"
                "                                 where (e.tx_id, e.position) > (c.tx_id, c.position))", names)
            if not behind:
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise RuntimeError("projections did not catch up")
            await asyncio.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# Closed-loop clients


@dataclass
class Outcome:
    """One measured case: latencies of the good replies, and the count of each kind of bad one."""

    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    first_failure: Any = None

    @property
    def ops(self) -> int:
        return len(self.latencies)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def rate(self) -> float:
        return self.ops / self.elapsed if self.elapsed else 0.0

    def p(self, q: float) -> float:
        from tests.benchmarks.common import percentile

        return percentile(sorted(self.latencies), q) * 1000.0


async def closed_loop(concurrency: int, seconds: float, op: Any, warmup: float = 0.0) -> Outcome:
    """`concurrency` tasks calling `op()` back to back: untimed warm-up, then `seconds` measured.

    `op()` returns None for a good reply, or a short string naming what was wrong with it; an
    exception counts as a failure named by its type.
    """
    clock = time.perf_counter

    async def loop(until: float, outcome: Outcome) -> None:
        while True:
            start = clock()
            if start >= until:
                return
            try:
                problem = await op()
            except Exception as exc:  # noqa: BLE001 - counted as a failure: a timeout, no responders...
                problem = type(exc).__name__
                if outcome.first_failure is None:
                    outcome.first_failure = repr(exc)
            if problem is None:
                outcome.latencies.append(clock() - start)
            else:
                outcome.failures[str(problem)] = outcome.failures.get(str(problem), 0) + 1

    if warmup > 0:
        until = clock() + warmup
        await asyncio.gather(*[loop(until, Outcome()) for _ in range(concurrency)])
    outcome = Outcome()
    started = clock()
    await asyncio.gather(*[loop(started + seconds, outcome) for _ in range(concurrency)])
    outcome.elapsed = clock() - started
    return outcome


# ---------------------------------------------------------------------------------------------
# Accounts set up through commands


async def new_account(system: System, name: str = "Bench Account") -> dict[str, str]:
    reply = await system.ok("create_account", {"name": name, "email": "bench@example.com"})
    r = reply["result"]
    return {"account_id": r["account_id"], "user_id": r["user_id"], "provider_id": r["provider_id"],
            "token": r.get("token", "")}


def schedule_body(ids: dict[str, str], provider_id: str, days: list[str], start: str, end: str,
                  zone: str = "Etc/UTC", public: bool = True) -> dict[str, Any]:
    return {"account_id": ids["account_id"], "user_id": ids["user_id"], "provider_id": provider_id,
            "time_zone": zone, "public_bookings": {"enabled": public},
            "weekly_rules": [{"day_of_week": d, "start_time": start, "end_time": end} for d in days]}


async def gather_limited(coros: Iterable[Any], limit: int = 8) -> list[Any]:
    semaphore = asyncio.Semaphore(limit)

    async def one(coro: Any) -> Any:
        async with semaphore:
            return await coro

    return await asyncio.gather(*[one(c) for c in coros])


# ---------------------------------------------------------------------------------------------
# Bulk history straight into the log


class FastIds:
    """Ids shaped like the real ones (`prefix_` + 26 Crockford characters), from a counter."""

    def __init__(self) -> None:
        self.tag = "".join(random.choice("ABCDEFGHJKMNPQRSTVWXYZ") for _ in range(3))
        self.n = 0

    def __call__(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}_01B{self.tag}{self.n:020d}"


@dataclass
class HProvider:
    provider_id: str
    account_id: str
    version: int
    display_name: str
    link: ev.LinkPreview
    scope: ev.ScopeRef


@dataclass
class HAccount:
    account_id: str
    providers: list[HProvider] = field(default_factory=list)


@dataclass
class Batch:
    account_id: str
    appends: list[StreamAppend]
    events: int


class History:
    """Realistic event history: bookings, cancellations, reschedules, blocks and expired holds.

    One booking unit is what a command appends: e.g. create_event = TimeReserved on the provider's
    stream + EventCreated on a new event stream; a cancellation adds TimeReleased + EventCanceled.
    Mix per unit: 55 % booked events, 15 % booked then canceled, 8 % booked then rescheduled,
    12 % provider blocks (a fifth of them deleted again), 10 % holds that expired. About 2.7
    events per unit, about half of them on provider streams.
    """

    def __init__(self, seed: int = 7) -> None:
        self.ids = FastIds()
        self.rng = random.Random(seed)
        self.now = int(time.time())
        self.created_at = iso(self.now - 800 * DAY)

    # -- encoding

    def _append(self, stream_id: str, expected: int, events: list[ev.Event]) -> StreamAppend:
        return StreamAppend(stream_id, expected,
                            [NewEvent(self.ids("evt"), event_type(e), encode_event(e)) for e in events])

    # -- accounts and providers

    def new_account(self, providers: int, zone: str = "Etc/UTC") -> tuple[HAccount, Batch]:
        """A tenant with a user, `providers` providers (scheduled, each with its own link)."""
        account_id, user_id = self.ids("acct"), self.ids("user")
        scope = ev.ScopeRef(id=self.ids("scope"), name="Personal", slug=f"u{self.ids.n}")
        appends = [self._append(f"account-{account_id}", 0, [
            ev.AccountCreated(account_id=account_id, name=f"Tenant {self.ids.n}", created_at=self.created_at),
            ev.UserCreated(user_id=user_id, name="Owner", email="owner@example.com", provider_id=self.ids("prov"),
                           personal_scope_id=scope.id, personal_scope_slug=scope.slug, created_at=self.created_at),
        ])]
        account = HAccount(account_id)
        schedule = msgspec.convert({"time_zone": zone, "weekly_rules": [
            {"day_of_week": d, "start_time": "09:00", "end_time": "17:00"} for d in WEEKDAYS]},
            ev.ProviderSchedule)
        for i in range(providers):
            provider_id, link_id = self.ids("prov"), self.ids("link")
            name = f"Provider {self.ids.n}"
            slug = f"meet-{self.ids.n}"
            settings = ev.LinkSettings(name=f"Meet {name}", slug=slug, hosts=[provider_id], time_zone=zone)
            appends.append(self._append(f"provider-{provider_id}", 0, [
                ev.ProviderCreated(provider_id=provider_id, account_id=account_id, display_name=name,
                                   email=f"p{self.ids.n}@example.com", time_zone=zone, created_at=self.created_at),
                ev.ProviderScheduleSet(provider_id=provider_id, schedule=schedule),
            ]))
            appends.append(self._append(f"link-{link_id}", 0, [
                ev.LinkCreated(link_id=link_id, account_id=account_id, scope=scope, settings=settings,
                               created_at=self.created_at)]))
            appends.append(self._append(f"linkslug-{account_id}-{slug}", 0,
                                        [ev.LinkSlugClaimed(link_id=link_id, slug=slug)]))
            account.providers.append(HProvider(provider_id, account_id, 2, name,
                                               ev.LinkPreview(id=link_id, name=settings.name, private_name=None,
                                                              slug=slug), scope))
        return account, Batch(account_id, appends, sum(len(a.events) for a in appends))

    # -- booking units

    def _attendee(self, name: str, organizer: bool) -> ev.Attendee:
        first, _, last = name.partition(" ")
        return ev.Attendee(id=self.ids("attendee"), email=f"{first.lower()}@example.com", display_name=name,
                           first_name=first, last_name=last or None, time_zone="America/Chicago",
                           is_organizer=organizer, is_scheduler=not organizer)

    def unit(self, p: HProvider, start: int, minutes: int = 30,
             kind: str | None = None) -> tuple[list[ev.Event], list[tuple[str, list[ev.Event]]]]:
        """(events on the provider's stream, [(other stream, its events)]) of one booking unit."""
        end = start + minutes * 60
        r = self.rng.random() if kind is None else {"event": 0.0}[kind]
        s, e = iso(start), iso(end)
        later = iso(min(start - 3600, self.now))
        if r < 0.78:  # a booked event, maybe canceled or rescheduled later
            event_id = self.ids("event")
            scheduler = self._attendee("Sally Scheduler", False)
            created = ev.EventCreated(
                event_id=event_id, account_id=p.account_id, link=p.link, scope=p.scope, provider_ids=[p.provider_id],
                organizer=self._attendee(p.display_name, True), scheduler=scheduler,
                summary=f"{p.display_name} and {scheduler.display_name}", start_at=s, end_at=e, duration=minutes,
                created_at=iso(start - 5 * DAY))
            own: list[ev.Event] = [ev.TimeReserved(provider_id=p.provider_id, reservation_id=event_id, kind="event",
                                                   start_at=s, end_at=e)]
            other: list[ev.Event] = [created]
            if 0.55 <= r < 0.70:
                own.append(ev.TimeReleased(provider_id=p.provider_id, reservation_id=event_id))
                other.append(ev.EventCanceled(event_id=event_id, canceled_at=later, cancel_reason="conflict"))
            elif r >= 0.70:
                s2, e2 = iso(start + DAY), iso(end + DAY)
                own.append(ev.ReservationMoved(provider_id=p.provider_id, reservation_id=event_id, start_at=s2,
                                               end_at=e2))
                other.append(ev.EventRescheduled(event_id=event_id, start_at=s2, end_at=e2, rescheduled_at=later))
            return own, [(f"event-{event_id}", other)]
        if r < 0.90:  # a provider block, a fifth of them deleted again
            block_id = self.ids("blk")
            own = [ev.TimeReserved(provider_id=p.provider_id, reservation_id=block_id, kind="block", start_at=s,
                                   end_at=e)]
            other = [ev.BlockCreated(block_id=block_id, account_id=p.account_id, attachment_type="provider",
                                     attachment_id=p.provider_id, attachment_stream=f"provider-{p.provider_id}",
                                     start_at=s, end_at=e, reason="Lunch", created_at=iso(start - 2 * DAY))]
            if r >= 0.876:
                own.append(ev.TimeReleased(provider_id=p.provider_id, reservation_id=block_id))
                other.append(ev.BlockDeleted(block_id=block_id, deleted_at=later))
            return own, [(f"blk-{block_id}", other)]
        hold_id = self.ids("bi")  # a hold that expired
        expires = iso(start - DAY)
        own = [ev.TimeReserved(provider_id=p.provider_id, reservation_id=hold_id, kind="hold", start_at=s, end_at=e,
                               expires_at=expires),
               ev.TimeReleased(provider_id=p.provider_id, reservation_id=hold_id)]
        other = [ev.SlotHeld(booking_intent_id=hold_id, account_id=p.account_id, link_id=p.link.id,
                             provider_ids=[p.provider_id], start_at=s, end_at=e, duration=minutes,
                             expires_at=expires, created_at=iso(start - DAY - 600)),
                 ev.HoldExpired(booking_intent_id=hold_id, expired_at=expires)]
        return own, [(f"bi-{hold_id}", other)]

    def batch(self, providers: Sequence[HProvider], target_events: int,
              starts: Iterable[tuple[HProvider, int, int]] | None = None, kind: str | None = None) -> Batch:
        """One append's worth: booking units on `providers` (all of one account) at random past times,
        or at the given (provider, start, minutes)."""
        own: dict[str, list[ev.Event]] = {}
        others: list[tuple[str, list[ev.Event]]] = []
        count = 0
        if starts is None:
            def random_starts() -> Iterable[tuple[HProvider, int, int]]:
                i = 0
                while True:
                    p = providers[i % len(providers)]
                    i += 1
                    yield p, (self.now - self.rng.randint(2 * DAY, 730 * DAY)) // 900 * 900, 30
            starts = random_starts()
        for p, start, minutes in starts:
            mine, other = self.unit(p, start, minutes, kind)
            own.setdefault(p.provider_id, []).extend(mine)
            others.extend(other)
            count += len(mine) + sum(len(x[1]) for x in other)
            if count >= target_events:
                break
        by_id = {p.provider_id: p for p in providers}
        appends = []
        for provider_id, events in own.items():
            p = by_id[provider_id]
            appends.append(self._append(f"provider-{provider_id}", p.version, events))
            p.version += len(events)
        appends.extend(self._append(stream, 0, events) for stream, events in others)
        return Batch(providers[0].account_id, appends, count)


async def append_batches(store: EventStore, batches: Iterable[Batch], writers: int = 3) -> int:
    """Append batches with `writers` concurrent appenders (each batch is one transaction); return events."""
    iterator = iter(batches)
    total = 0

    async def writer() -> None:
        nonlocal total
        for batch in iterator:  # shared iterator: each batch is taken by exactly one writer
            await store.append(batch.appends, command_id=None, command_name="bench_bulk_load",
                               account_id=batch.account_id)
            total += batch.events
            await asyncio.sleep(0)

    await asyncio.gather(*[writer() for _ in range(writers)])
    return total


# ---------------------------------------------------------------------------------------------
# The naive query responder: replay from the log on every query


async def naive_main() -> None:
    from services.commands.repository import Repository
    from services.query.slots import link_window as _window
    from shared.availability import link_slots
    from shared.domain.core import link_stream, provider_stream
    from shared.domain.links import link_rules
    from shared.errors import DomainError
    from shared.messages.queries import LinkSlots
    from shared.settings import load_settings

    settings = load_settings()
    pool = await create_pool(settings.database_url, min_size=2, max_size=12)
    store = EventStore(pool)
    encoder = msgspec.json.Encoder()
    nc = await nats.connect(settings.nats_servers)
    semaphore = asyncio.Semaphore(settings.command_workers)
    tasks: set[asyncio.Task[None]] = set()

    async def answer(msg: Any) -> None:
        async with semaphore:
            try:
                q = msgspec.json.decode(msg.data, type=LinkSlots)
                repository = Repository(store)  # a fresh one: nothing cached, every stream replayed
                _, link = await repository.load(link_stream(q.link_id))
                if not link.exists or link.account_id != q.account_id:
                    body = encoder.encode({"ok": False, "error": {"code": "not_found"}})
                else:
                    now = int(time.time())
                    start, end = _window(q, now)
                    hosts = [(await repository.load(provider_stream(h)))[1] for h in link.settings.hosts]
                    calendars = [h.host_calendar(now) for h in hosts if h.exists]
                    body = encoder.encode([
                        {"start_at": iso_utc(s.start), "end_at": iso_utc(s.end), "duration": s.duration,
                         "rank": s.rank}
                        for s in link_slots(link_rules(link), calendars, now, start, end)])
            except DomainError as exc:
                body = encoder.encode(exc.to_reply())
            await msg.respond(body)

    async def on_message(msg: Any) -> None:
        task = asyncio.create_task(answer(msg))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    await nc.subscribe(f"{settings.nats_prefix}.naive.link_slots", queue="sched-naive", cb=on_message)
    await nc.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("naive query service ready", flush=True)
    await stop.wait()
    await nc.drain()
    await pool.close()


# ---------------------------------------------------------------------------------------------
# The query service with its cache counters on NATS


@contextlib.asynccontextmanager
async def counted_query(settings: Settings) -> AsyncIterator[Any]:
    """The query service as `python -m services.query` runs it, also answering
    `<prefix>.bench.query_counters` with its LinkDays and NextFreeIndex counters (days computed, days kept,
    earliest-slot entries computed): one extra subscription on its connection, read between cases."""
    from services.query.app import bootstrap

    async with bootstrap(settings) as app:
        reads = app.service.reads

        async def counters(msg: Any) -> None:
            days, index = reads.link_days, reads.next_free
            await msg.respond(msgspec.json.encode({
                "days_computed": days.computed if days else 0, "days_kept": len(days.days) if days else 0,
                "index_computed": index.computed if index else 0}))

        await app.nc.subscribe(f"{settings.nats_prefix}.bench.query_counters", cb=counters)
        yield app


if __name__ == "__main__":
    if sys.argv[1:] == ["naive"]:
        asyncio.run(naive_main())
    elif sys.argv[1:] == ["counted-query"]:
        from shared.lifecycle import serve

        serve(counted_query, "query service ready", role="query", fast_loop=True)
    else:
        print("usage: python -m tests.benchmarks.system naive | counted-query", file=sys.stderr)
        sys.exit(2)

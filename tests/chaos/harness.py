"""The fault run: cluster mode under a steady mixed load, one fault at a time, then the checks (a) to (g).

`make chaos` runs the full plan (about 5 minutes) and prints the table; `tests/integration/
test_chaos.py` runs a shorter plan (about 2 minutes) in the suite. The checks are about correctness
only (no loss, no duplicates, no overlap, read models equal a rebuild, feed equals log, webhooks at
least once in order); times are measured and reported, never asserted.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import nats

from shared.servers import free_port, free_port_run

ROOT = Path(__file__).resolve().parents[2]
PATIENCE = 180.0  # every wait is for something that must happen; none is a timed assertion
WEBHOOK_TYPES = ["event.created", "event.canceled", "event.rescheduled", "link.updated"]


# --- the cluster ------------------------------------------------------------------------------------


def health(url: str) -> dict[str, str] | None:
    """The gateway's /health when it answers 200, else None."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            return json.loads(response.read()) if response.status == 200 else None
    except OSError:
        return None


@dataclass
class Cluster:
    """`sched run --cluster` in a directory of its own, on free ports."""

    root: Path
    instances: int = 2
    proc: subprocess.Popen[bytes] | None = None
    http_ports: list[int] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)

    @property
    def log(self) -> Path:
        """Everything the cluster printed."""
        return self.root / "cluster.log"

    def start(self) -> Cluster:
        """Start it and wait until every gateway is healthy."""
        nats_base, http_base = free_port_run([0, 1, 2, 100, 101, 102]), free_port_run(list(range(self.instances)))
        self.http_ports = [http_base + i for i in range(self.instances)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCHED_")}
        env |= {"SCHED_EMBEDDED_PG_PORT": str(free_port()), "SCHED_EMBEDDED_NATS_PORT": str(nats_base),
                "SCHED_MAIL_CATCHER_PORT": str(free_port()), "SCHED_HTTP_PORT": str(http_base),
                "PYTHONPATH": str(ROOT)}
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "services.cli", "run", "--cluster", "--instances",
                                          str(self.instances)], cwd=self.root, env=env, stdout=out,
                                         stderr=subprocess.STDOUT)
        self.wait("the cluster to start", lambda: b"Ctrl-C stops everything" in self.log.read_bytes())
        self.urls = dict(line.split("=", 1) for line in (self.root / ".sched" / "urls.env").read_text().split())
        return self

    def wait(self, what: str, check: Callable[[], object], patience: float = PATIENCE) -> Any:
        """Poll `check` until it is true; fail with the log's tail if it never is."""
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.3)
        raise AssertionError(f"{what} did not happen; log:\n{self.log.read_text(errors='replace')[-4000:]}")

    def gateways(self) -> list[str]:
        """The gateways' base URLs."""
        return [f"http://127.0.0.1:{port}" for port in self.http_ports]

    def processes(self) -> list[dict[str, Any]]:
        """`.sched/cluster.json`'s processes."""
        return json.loads((self.root / ".sched" / "cluster.json").read_text())["processes"]  # type: ignore[no-any-return]

    def pid(self, role: str, instance: int) -> int:
        """The pid of one process."""
        return next(int(p["pid"]) for p in self.processes() if p["role"] == role and p["instance"] == instance)

    def healthy(self) -> bool:
        """Every gateway answers /health with every component up."""
        return all((h := health(url)) is not None and all(v == "ok" or v.startswith("ok (") for v in h.values())
                   for url in self.gateways())

    def stop(self) -> None:
        """SIGTERM the supervisor (it stops its children first) and clean up the data directory."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=PATIENCE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        data = self.root / ".sched" / "postgres" / "pgdata"
        if data.is_symlink():
            shutil.rmtree(data.resolve().parent, ignore_errors=True)


# --- the load ---------------------------------------------------------------------------------------

@dataclass
class Outcome:
    """One HTTP request of the load: when, what, and how it ended."""

    at: float
    op: str
    key: str
    status: int  # 0: no answer (connection error or timeout)
    result_id: str | None = None


@dataclass
class Tenant:
    """An account with its token, provider, link, free slots and booked events, and its webhook receiver."""

    account_id: str
    user_id: str
    provider_id: str
    token: str
    link_id: str
    free_slots: list[tuple[str, str]]
    booked: dict[str, tuple[str, str]] = field(default_factory=dict)  # event id -> its slot
    webhook_id: str = ""
    receiver: Any = None


class Load:
    """A steady mixed load through every gateway: bookings (distinct and contended), cancels, reschedules,
    link updates; each request carries an Idempotency-Key, and one that failed is retried with it later."""

    def __init__(self, cluster: Cluster, tenants: list[Tenant], workers: int = 4, pause: float = 0.15) -> None:
        self.cluster = cluster
        self.tenants = tenants
        self.workers = workers
        self.pause = pause
        self.outcomes: list[Outcome] = []
        self.unresolved: dict[str, tuple[str, str, dict[str, Any], str]] = {}  # key -> (method, path, body, op)
        self.acknowledged: dict[str, str | None] = {}  # key -> result id, for every 2xx
        self.ops: dict[str, str] = {}  # key -> the operation it asked for
        self.refusals: dict[str, str] = {}  # op -> the first refusal's body, to say why in the table
        self.stop = asyncio.Event()

    async def request(self, client: httpx.AsyncClient, tenant: Tenant, op: str, method: str, path: str,
                      body: dict[str, Any], key: str, gateway: int) -> httpx.Response | None:
        """One request; on a connection error the other gateway (as a load balancer would); recorded."""
        headers = {"authorization": f"Bearer {tenant.token}", "idempotency-key": key}
        urls = self.cluster.gateways()
        response: httpx.Response | None = None
        for attempt in range(len(urls)):
            url = urls[(gateway + attempt) % len(urls)]
            try:
                response = await client.request(method, url + path, json=body, headers=headers)
                break
            except httpx.ConnectError:
                continue  # that gateway is down: the other one
            except httpx.TransportError:
                break  # a timeout: the command may have run; retried later with its key
        status = response.status_code if response is not None else 0
        result_id = None
        if response is not None and 200 <= status < 300 and response.content:
            result_id = response.json().get("id")
        self.outcomes.append(Outcome(time.monotonic(), op, key, status, result_id))
        self.ops.setdefault(key, op)
        if 200 <= status < 300:
            self.acknowledged[key] = result_id
            self.unresolved.pop(key, None)
        elif status == 0 or status >= 500:
            self.unresolved[key] = (method, path, body, op)
        else:
            self.unresolved.pop(key, None)  # a definite refusal (409, 422): also its one result
            if response is not None:
                self.refusals.setdefault(op, f"{status} {response.text[:160]}")
        return response

    async def worker(self, number: int) -> None:
        """Requests until stopped, each tenant in turn."""
        rng = random.Random(number)
        async with httpx.AsyncClient(timeout=12) as client:
            turn = 0
            while not self.stop.is_set():
                tenant = self.tenants[(number + turn) % len(self.tenants)]
                turn += 1
                gateway = turn % len(self.cluster.http_ports)
                choice = rng.random()
                try:
                    if choice < 0.35 or not tenant.booked:
                        await self.book(client, tenant, gateway)
                    elif choice < 0.5:
                        await self.book_contended(client, tenant)
                    elif choice < 0.72:
                        await self.cancel(client, tenant, gateway, rng)
                    elif choice < 0.88:
                        await self.reschedule(client, tenant, gateway, rng)
                    else:
                        await self.request(client, tenant, "update_link", "PATCH", f"/v1/links/{tenant.link_id}",
                                           {"description": f"updated {uuid.uuid4().hex[:6]}"}, _key(), gateway)
                except (ValueError, KeyError):
                    pass  # an answer without the expected body: recorded already
                await asyncio.sleep(self.pause)

    async def book(self, client: httpx.AsyncClient, tenant: Tenant, gateway: int) -> None:
        """Book a free slot."""
        if not tenant.free_slots:
            return
        slot = tenant.free_slots.pop(0)
        response = await self.request(client, tenant, "book", "POST", f"/v1/links/{tenant.link_id}/events",
                                      _booking(slot), _key(), gateway)
        if response is not None and 200 <= response.status_code < 300:
            tenant.booked[response.json()["id"]] = slot
        elif response is None or response.status_code >= 500:
            pass  # its key is retried later; the slot stays out of the pool
        else:
            tenant.free_slots.append(slot)

    async def book_contended(self, client: httpx.AsyncClient, tenant: Tenant) -> None:
        """Two bookings of the same slot at once, one through each gateway: at most one may win."""
        if not tenant.free_slots:
            return
        slot = tenant.free_slots.pop(0)
        responses = await asyncio.gather(*[
            self.request(client, tenant, "book_contended", "POST", f"/v1/links/{tenant.link_id}/events",
                         _booking(slot), _key(), gateway) for gateway in range(2)])
        won = [r for r in responses if r is not None and 200 <= r.status_code < 300]
        for response in won:
            tenant.booked[response.json()["id"]] = slot
        if not won and all(r is not None and r.status_code < 500 for r in responses):
            tenant.free_slots.append(slot)

    async def cancel(self, client: httpx.AsyncClient, tenant: Tenant, gateway: int, rng: random.Random) -> None:
        """Cancel one booked event; its slot is free again."""
        event_id = rng.choice(list(tenant.booked))
        slot = tenant.booked.pop(event_id)
        response = await self.request(client, tenant, "cancel", "POST", f"/v1/events/{event_id}/cancel",
                                      {"cancel_reason": "chaos"}, _key(), gateway)
        if response is not None and 200 <= response.status_code < 300:
            tenant.free_slots.append(slot)

    async def reschedule(self, client: httpx.AsyncClient, tenant: Tenant, gateway: int, rng: random.Random) -> None:
        """Move one booked event to a free slot."""
        if not tenant.free_slots:
            return
        event_id = rng.choice(list(tenant.booked))
        old, new = tenant.booked.pop(event_id), tenant.free_slots.pop(0)
        body = {"start_at": new[0], "end_at": new[1]}
        response = await self.request(client, tenant, "reschedule", "POST", f"/v1/events/{event_id}/reschedule",
                                      body, _key(), gateway)
        if response is not None and 200 <= response.status_code < 300:
            tenant.booked[event_id] = new
            tenant.free_slots.append(old)

    async def run(self) -> None:
        """Every worker until `stop` is set."""
        await asyncio.gather(*[self.worker(n) for n in range(self.workers)])

    async def resolve(self) -> dict[str, int]:
        """Retry every request that failed or timed out, with its key, until each has its one result."""
        statuses: dict[str, int] = {}
        tenants = {t.link_id: t for t in self.tenants}
        async with httpx.AsyncClient(timeout=12) as client:
            for key, (method, path, body, op) in list(self.unresolved.items()):
                tenant = next((t for link, t in tenants.items() if link in path), None) or self.tenants[0]
                if "/v1/events/" in path:
                    tenant = await self._owner(client, path) or tenant
                deadline = time.monotonic() + PATIENCE
                while True:
                    response = await self.request(client, tenant, op + "_retry", method, path, body, key, 0)
                    if response is not None and response.status_code < 500:
                        statuses[key] = response.status_code
                        break
                    assert time.monotonic() < deadline, f"{key} never got an answer"
                    await asyncio.sleep(0.5)
        return statuses

    async def _owner(self, client: httpx.AsyncClient, path: str) -> Tenant | None:
        for tenant in self.tenants:
            response = await client.get(self.cluster.gateways()[0] + path.rsplit("/", 1)[0],
                                        headers={"authorization": f"Bearer {tenant.token}"})
            if response.status_code == 200:
                return tenant
        return None


def _key() -> str:
    return f"chaos-{uuid.uuid4().hex}"


def _booking(slot: tuple[str, str]) -> dict[str, Any]:
    return {"display_name": "Chaos Client", "email": "chaos@example.com", "start_at": slot[0], "end_at": slot[1],
            "time_zone": "Etc/UTC"}


async def command(nc: nats.NATS, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """A command over NATS that must succeed (retried with its id while the system settles)."""
    body = {"command_id": f"chaos-setup-{uuid.uuid4().hex}", **body}
    for _ in range(60):
        try:
            reply = msgspec.json.decode((await nc.request(f"sched.cmd.{name}", msgspec.json.encode(body),
                                                          timeout=10)).data)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
            await asyncio.sleep(1)
            continue
        assert reply["ok"], reply
        return reply["result"]  # type: ignore[no-any-return]
    raise AssertionError(f"{name} never answered")


async def make_tenants(cluster: Cluster, count: int) -> list[Tenant]:
    """Accounts open around the clock, each with a link, its free slots and a webhook to a local receiver."""
    from tests.integration.webhook_receiver import Receiver

    nc = await nats.connect(cluster.urls["SCHED_NATS_URL"].split(","))
    tenants = []
    try:
        for n in range(count):
            account = await command(nc, "create_account", {"name": f"Chaos {n}", "email": f"chaos{n}@example.com",
                                                            "time_zone": "Etc/UTC"})
            ids = {"account_id": account["account_id"], "user_id": account["user_id"]}
            await command(nc, "set_provider_schedule", {
                **ids, "provider_id": account["provider_id"], "time_zone": "Etc/UTC",
                "weekly_rules": [{"day_of_week": d, "start_time": "00:00", "end_time": "23:59"}
                                 for d in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                                           "sunday")]})
            link = await command(nc, "create_link", {**ids, "name": f"Chaos link {n}", "durations": [30],
                                                     "time_zone": "Etc/UTC"})
            receiver = Receiver().start()
            hook = await command(nc, "create_webhook", {**ids, "url": receiver.url, "events": WEBHOOK_TYPES})
            async with httpx.AsyncClient(timeout=30) as client:
                slots = (await client.get(f"{cluster.gateways()[0]}/v1/links/{link['id']}/slots",
                                          headers={"authorization": f"Bearer {account['token']}"})).json()
            apart: list[tuple[str, str]] = []  # slots overlap (a 15-minute increment): keep disjoint ones
            for slot in sorted((s["start_at"], s["end_at"]) for s in slots):
                if not apart or slot[0] >= apart[-1][1]:
                    apart.append(slot)
            tenants.append(Tenant(account["account_id"], account["user_id"], account["provider_id"],
                                  account["token"], link["id"], apart[4:],  # the soonest may pass meanwhile
                                  webhook_id=hook["id"], receiver=receiver))
    finally:
        await nc.close()
    return tenants


# --- the faults ---------------------------------------------------------------------------------------

@dataclass
class FaultResult:
    """What one fault cost: client errors and the longest time without a success, and a failover time."""

    name: str
    started: float
    ended: float = 0.0
    failover: float | None = None
    failover_role: str = ""


async def lease_holder(pool: asyncpg.Pool, name: str) -> tuple[int, int] | None:
    """(pid, token) of a lease's current unexpired holder."""
    row = await pool.fetchrow("select holder, token from leases where name = $1 and expires_at > clock_timestamp()",
                              name)
    return (int(row["holder"].split(":")[1]), int(row["token"])) if row else None


async def wait_holder(pool: asyncpg.Pool, name: str) -> tuple[int, int]:
    """The lease's holder, once there is one."""
    deadline = time.monotonic() + PATIENCE
    while (holder := await lease_holder(pool, name)) is None:
        assert time.monotonic() < deadline, f"nobody holds {name}"
        await asyncio.sleep(0.2)
    return holder


async def takeover_time(pool: asyncpg.Pool, name: str, old: tuple[int, int], since: float) -> float:
    """Seconds from `since` until another holder (a higher token) holds the lease."""
    deadline = time.monotonic() + PATIENCE
    while True:
        now = await lease_holder(pool, name)
        if now is not None and now[1] > old[1]:
            return time.monotonic() - since
        assert time.monotonic() < deadline, f"nobody took {name} over"
        await asyncio.sleep(0.05)


async def events_leader_pid(cluster: Cluster) -> int:
    """The pid of the NATS node leading SCHED_EVENTS."""
    nc = await nats.connect(cluster.urls["SCHED_NATS_URL"].split(","))
    try:
        deadline = time.monotonic() + PATIENCE
        while True:
            try:
                info = await nc.jetstream().stream_info("SCHED_EVENTS")
                break
            except (nats.errors.Error, TimeoutError):  # a moment without a stream leader
                assert time.monotonic() < deadline, "SCHED_EVENTS never answered"
                await asyncio.sleep(0.5)
    finally:
        await nc.close()
    leader = info.cluster.leader if info.cluster else "sched-1"
    return cluster.pid("nats", int(str(leader).rsplit("-", 1)[1]))


Fault = Callable[[Cluster, asyncpg.Pool, FaultResult], Awaitable[None]]


def kill_instance(role: str, instance: int) -> Fault:
    """SIGKILL one instance of a service."""
    async def fault(cluster: Cluster, pool: asyncpg.Pool, result: FaultResult) -> None:
        os.kill(cluster.pid(role, instance), signal.SIGKILL)
    return fault


def kill_lease_holder(role: str, lease: str, standby: bool = False) -> Fault:
    """SIGKILL the instance holding `lease` (or the other one), measuring the takeover."""
    async def fault(cluster: Cluster, pool: asyncpg.Pool, result: FaultResult) -> None:
        holder = await wait_holder(pool, lease)
        pids = [int(p["pid"]) for p in cluster.processes() if p["role"] == role]
        target = next((p for p in pids if p != holder[0]), holder[0]) if standby else holder[0]
        os.kill(target, signal.SIGKILL)
        if not standby:
            result.failover_role = lease
            result.failover = await takeover_time(pool, lease, holder, time.monotonic())
    return fault


def pause_lease_holder(lease: str, seconds: float) -> Fault:
    """SIGSTOP the holder of `lease`, SIGCONT it `seconds` later; measure the takeover meanwhile."""
    async def fault(cluster: Cluster, pool: asyncpg.Pool, result: FaultResult) -> None:
        holder = await wait_holder(pool, lease)
        os.kill(holder[0], signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            result.failover_role = lease
            result.failover = await takeover_time(pool, lease, holder, stopped)
            await asyncio.sleep(max(0.0, seconds - (time.monotonic() - stopped)))
        finally:
            os.kill(holder[0], signal.SIGCONT)
    return fault


async def kill_events_leader(cluster: Cluster, pool: asyncpg.Pool, result: FaultResult) -> None:
    """SIGKILL the NATS node leading SCHED_EVENTS."""
    os.kill(await events_leader_pid(cluster), signal.SIGKILL)


async def kill_all_nats(cluster: Cluster, pool: asyncpg.Pool, result: FaultResult) -> None:
    """SIGKILL all three NATS nodes; the supervisor restarts them."""
    for instance in (1, 2, 3):
        os.kill(cluster.pid("nats", instance), signal.SIGKILL)


async def postgres_immediate(cluster: Cluster, pool: asyncpg.Pool, result: FaultResult) -> None:
    """An immediate shutdown of Postgres (SIGQUIT to the postmaster); the supervisor restarts it."""
    os.kill(cluster.pid("postgres", 0), signal.SIGQUIT)


FULL_PLAN: list[tuple[str, Fault]] = [
    *[(f"SIGKILL {role}#{i}", kill_instance(role, i)) for role in ("commands", "query", "gateway") for i in (1, 2)],
    ("SIGKILL relay (active)", kill_lease_holder("relay", "relay")),
    ("SIGKILL relay (standby)", kill_lease_holder("relay", "relay", standby=True)),
    ("SIGKILL projections (active)", kill_lease_holder("projections", "projection:calendars#0/4")),
    ("SIGKILL projections (standby)", kill_lease_holder("projections", "projection:calendars#0/4", standby=True)),
    ("SIGKILL webhooks#1", kill_instance("webhooks", 1)),
    ("SIGKILL webhooks#2", kill_instance("webhooks", 2)),
    ("SIGKILL commands (sweeper)", kill_lease_holder("commands", "hold_sweeper")),
    ("SIGSTOP relay 15 s", pause_lease_holder("relay", 15)),
    ("SIGSTOP projections 15 s", pause_lease_holder("projection:resources", 15)),
    ("SIGKILL NATS leader", kill_events_leader),
    ("SIGKILL all NATS", kill_all_nats),
    ("Postgres immediate", postgres_immediate),
]

SHORT_PLAN: list[tuple[str, Fault]] = [
    ("SIGKILL commands#1", kill_instance("commands", 1)),
    ("SIGKILL relay (active)", kill_lease_holder("relay", "relay")),
    ("SIGSTOP relay 8 s", pause_lease_holder("relay", 8)),
    ("SIGKILL NATS leader", kill_events_leader),
    ("Postgres immediate", postgres_immediate),
]


# --- the checks -----------------------------------------------------------------------------------------

@dataclass
class Report:
    """Violations per check (a)-(e), and the figures of (f) and (g)."""

    violations: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    faults: list[FaultResult] = field(default_factory=list)
    requests: int = 0

    def table(self, load: Load) -> str:
        """The printed table."""
        lines = ["check                                                    violations",
                 "-------------------------------------------------------  ----------"]
        names = {"a": "(a) acknowledged commands in the log exactly once",
                 "b": "(b) no overlapping reservations (folded from the log)",
                 "c": "(c) every read model equals a rebuild",
                 "d": "(d) SCHED_EVENTS holds the log once, in order",
                 "e": "(e) webhooks: every event at least once, in order"}
        for check, name in names.items():
            found = self.violations.get(check, [])
            lines.append(f"{name:<55}  {len(found):>10}" + (f"   e.g. {found[0]}" if found else ""))
        answers: dict[str, int] = defaultdict(int)
        for outcome in load.outcomes:
            answers[f"{outcome.op} {outcome.status or 'no answer'}"] += 1
        lines += ["", f"requests: {self.requests} ({', '.join(f'{k}: {v}' for k, v in sorted(answers.items()))})"]
        lines += [f"  first refusal of {op}: {body}" for op, body in sorted(load.refusals.items())]
        lines += ["",
                  "fault                           requests  errors  500s  longest unavailable  failover",
                  "------------------------------  --------  ------  ----  -------------------  --------"]
        for fault in self.faults:
            window = [o for o in load.outcomes if fault.started <= o.at <= fault.ended]
            errors = [o for o in window if o.status == 0 or o.status >= 500]
            fives = [o for o in window if o.status == 500]
            longest = _longest_gap(window, fault.started, fault.ended)
            failover = f"{fault.failover:.1f}s ({fault.failover_role})" if fault.failover is not None else "-"
            lines.append(f"{fault.name:<30}  {len(window):>8}  {len(errors):>6}  {len(fives):>4}  "
                         f"{longest:>18.1f}s  {failover}")
        return "\n".join(lines)


def _longest_gap(window: list[Outcome], start: float, end: float) -> float:
    times = [start] + sorted(o.at for o in window if 200 <= o.status < 500) + [end]
    return max(b - a for a, b in itertools.pairwise(times))


async def check_all(cluster: Cluster, load: Load, tenants: list[Tenant], report: Report) -> None:
    """Checks (a) to (e) once the load has stopped and every failed request was resolved."""
    from projections import PROJECTIONS, runnable
    from projections.runner import applied_everywhere, log_head, rebuild, tx_of
    from services.webhooks.payloads import webhook_type
    from shared.availability import parse_instant
    from shared.eventstore import RecordedEvent, create_pool
    from shared.messages.events import ReservationMoved, TimeReleased, TimeReserved, decode_event
    from shared.settings import load_settings
    from tests.integration.test_event_log_golden import read_models
    from tests.integration.test_feed_repair import stream_ids

    pool = await create_pool(cluster.urls["SCHED_DATABASE_URL"], min_size=1, max_size=4)
    try:
        # Every committed event, in commit order. Not EventStore.read_all: its gap-safe bound (below the
        # oldest running transaction, as a follower must read) leaves out whatever committed after any
        # transaction still running now (a projection's batch, an intake's), and the load has stopped:
        # what is committed now is the whole log the checks are about.
        logged = [RecordedEvent(*row) for row in await pool.fetch(
            "select position, id, stream_id, version, type, account_id, data, occurred_at, tx_id::text::bigint"
            " from events order by events.tx_id, events.position")]
        # (a) every acknowledged key has its one stored reply, and its result is in the log once
        stored = {r["command_id"] for r in await pool.fetch("select command_id from command_replies"
                                                            " where command_id like 'chaos-%'")}
        for key in load.acknowledged:
            if key not in stored:
                report.violations["a"].append(f"acknowledged {key} has no stored reply")
        created: dict[str, int] = defaultdict(int)
        for event in logged:
            if event.type == "event_created":
                created[msgspec.json.decode(event.data)["event_id"]] += 1
        booked = {rid for key, rid in load.acknowledged.items() if rid and load.ops[key].startswith("book")}
        if not booked:
            report.violations["a"].append("no booking was acknowledged: nothing was checked")
        for rid in booked:
            if created.get(rid, 0) != 1:
                report.violations["a"].append(f"booking {rid} is in the log {created.get(rid, 0)} times")
        # (b) fold every provider's reservations from the log: no two overlap
        active: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
        for event in logged:
            if event.type not in ("time_reserved", "time_released", "reservation_moved"):
                continue
            decoded = decode_event(event.data)
            if isinstance(decoded, TimeReleased):
                active[decoded.provider_id].pop(decoded.reservation_id, None)
                continue
            assert isinstance(decoded, TimeReserved | ReservationMoved)
            if isinstance(decoded, TimeReserved) and decoded.expires_at:
                continue  # holds expire on their own; the load places none
            span = (parse_instant(decoded.start_at), parse_instant(decoded.end_at))
            for other_id, (start, end) in active[decoded.provider_id].items():
                if other_id != decoded.reservation_id and start < span[1] and span[0] < end:
                    report.violations["b"].append(f"{decoded.reservation_id} overlaps {other_id}")
            active[decoded.provider_id][decoded.reservation_id] = span
        # (c) read models equal a rebuild (once caught up)
        settings = load_settings()
        units = runnable(4)
        head = await log_head(pool)
        tx_id = await tx_of(pool, head)
        deadline = time.monotonic() + PATIENCE
        while tx_id is not None and not await applied_everywhere(pool, units, tx_id, head):
            assert time.monotonic() < deadline, "the projections never caught up"
            await asyncio.sleep(0.5)
        live = await read_models(pool)
        for projection in PROJECTIONS.values():
            await rebuild(pool, projection)
        rebuilt = await read_models(pool)
        for table, rows in rebuilt.items():
            if live.get(table) != rows:
                report.violations["c"].append(f"{table} differs from a rebuild")
        # (d) the feed holds the log once, in order (the relay may still be republishing: wait for it)
        nc = await nats.connect(cluster.urls["SCHED_NATS_URL"].split(","))
        try:
            js = nc.jetstream()
            want = [e.id for e in logged]
            deadline = time.monotonic() + PATIENCE
            got: list[str] | None = None
            while time.monotonic() < deadline:
                try:  # a replicated stream just after a leader change may answer 503 for a moment
                    got = await stream_ids(js, settings)
                except (nats.errors.Error, TimeoutError):
                    got = None
                if got == want:
                    break
                await asyncio.sleep(1)
            got = got or []
            if got != want:
                missing, extra = len(set(want) - set(got)), len(got) - len(set(got))
                report.violations["d"].append(f"{missing} missing, {extra} duplicated, order equal: "
                                              f"{[g for g in got if g in set(want)] == want}")
        finally:
            await nc.close()
        # (e) each webhook got every subscribed event of its account, at least once, in order
        for tenant in tenants:
            start = next(i for i, e in enumerate(logged) if e.stream_id == f"whk-{tenant.webhook_id}")
            want = [e.id for e in logged[start:] if e.account_id == tenant.account_id
                    and webhook_type(e.type) in WEBHOOK_TYPES]
            deadline = time.monotonic() + PATIENCE
            while True:
                firsts = list(dict.fromkeys(r.json["id"] for r in tenant.receiver.delivered()))
                if firsts == want or time.monotonic() > deadline:
                    break
                await asyncio.sleep(1)
            if firsts != want:
                report.violations["e"].append(f"webhook {tenant.webhook_id}: {len(set(want) - set(firsts))} "
                                              f"missing, in order: {[f for f in firsts if f in set(want)] == want}")
    finally:
        await pool.close()


# --- the run --------------------------------------------------------------------------------------------

async def run(root: Path, plan: list[tuple[str, Fault]], warmup: float = 5.0, settle: float = 3.0,
              tenants: int = 3) -> tuple[Report, Load]:
    """Start the cluster, load it, apply each fault with recovery in between, resolve, check."""
    cluster = Cluster(root).start()
    report = Report()
    people: list[Tenant] = []
    try:
        people = await make_tenants(cluster, tenants)
        load = Load(cluster, people)
        loading = asyncio.create_task(load.run())
        await asyncio.sleep(warmup)
        for name, fault in plan:
            result = FaultResult(name, time.monotonic())
            db = await _pool(cluster)
            try:
                await fault(cluster, db, result)
            finally:
                await db.close()
            await asyncio.to_thread(cluster.wait, f"recovery from {name}", cluster.healthy)
            await asyncio.sleep(settle)
            result.ended = time.monotonic()
            report.faults.append(result)
            print(f"  {name}: recovered", flush=True)
        load.stop.set()
        await loading
        await load.resolve()
        report.requests = len(load.outcomes)
        await check_all(cluster, load, people, report)
        return report, load
    finally:
        for tenant in people:
            tenant.receiver.stop()
        cluster.stop()


async def _pool(cluster: Cluster) -> asyncpg.Pool:
    """A small pool that rides through a Postgres restart (reconnects on demand)."""
    deadline = time.monotonic() + PATIENCE
    while True:
        try:
            pool = await asyncpg.create_pool(cluster.urls["SCHED_DATABASE_URL"], min_size=0, max_size=2)
            assert pool is not None
            return pool
        except (OSError, asyncpg.PostgresError):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.5)

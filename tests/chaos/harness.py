"""The fault run: cluster mode under a steady mixed load, one fault at a time, then the checks (a) to (g).

`make chaos` runs the full plan (about 5 minutes) and prints the table; `tests/integration/
test_chaos.py` runs a shorter plan in the suite. The load goes through both gateways and over NATS
(request/reply on `sched.cmd.*`): bookings, holds, cancels, reschedules, link updates and slot reads,
each booking read back with its position. The checks are correctness (no loss, no duplicates, no
overlap, read models equal a rebuild, feed equals log, webhooks at least once in order, reads see
their writes) and the issue's targets, each line PASS or FAIL: no 500; during a single process kill
at most 1% of the requests in the fault's window fail; failover within 10 s. The figures are what
the clients saw, not timed assertions of speed.
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

from shared.catalogue import ERROR_STATUS
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

RETRY_SAMPLE = 300  # acknowledged commands sent again with their key after the run (every failed one is)
NATS_ATTEMPT = 5.0  # a NATS client's wait for one reply; it asks again with the same command id until...
NATS_DEADLINE = 10.0  # ...this long after it first asked, then counts the command as unanswered
CLIENT_TIMEOUT = 12.0  # an HTTP answer later than MAX_WAIT (10 s) is still seen, and its wait fails check (f)
HOLD_EXPIRES = 75.0  # a hold left to expire (hold_minutes=1) frees its slot for the load after this long


@dataclass
class Outcome:
    """One request of the load (a command or a read): when, what, and how it ended."""

    at: float
    op: str
    key: str  # the command's Idempotency-Key / command_id; "" for a read
    status: int  # 0: no answer (connection error or timeout); over NATS, the HTTP status of the reply's code
    result_id: str | None = None
    failed_over: bool = False  # the connection broke before an answer; the client asked the other gateway
    seconds: float = 0.0  # how long the HTTP client waited for its answer, every gateway tried (0 over NATS)
    broken: bool = False  # of failed_over: the connection broke after the request was sent (not refused)


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
    expiring: list[tuple[float, tuple[str, str]]] = field(default_factory=list)  # (free again at, slot)


@dataclass
class Call:
    """A command as a client sent it, to send again with the same key: over HTTP (`method` and `path`) or
    over NATS (`method` "NATS", `path` the command's name, `body` without the command id)."""

    op: str
    tenant: Tenant
    method: str
    path: str
    body: dict[str, Any]


class Load:
    """A steady mixed load through every gateway and over NATS: bookings (distinct and contended, over HTTP and
    by NATS request/reply), holds (completed, abandoned, left to expire, booked over), cancels, reschedules,
    link updates, and slot reads, each after a booking carrying its position (read-your-writes). Every command
    carries a key (Idempotency-Key / command_id); one that failed is sent again with it after the run."""

    def __init__(self, cluster: Cluster, tenants: list[Tenant], workers: int = 4, pause: float = 0.15) -> None:
        self.cluster = cluster
        self.tenants = tenants
        self.workers = workers
        self.pause = pause
        self.nc: nats.NATS | None = None
        self.outcomes: list[Outcome] = []
        self.calls: dict[str, Call] = {}  # key -> the command it sent
        self.unresolved: set[str] = set()  # keys answered 5xx or not at all, so far
        self.failed: set[str] = set()  # keys that were unresolved at some point
        self.acknowledged: dict[str, tuple[int, str | None]] = {}  # key -> (status, result id) of its 2xx
        self.refused: set[str] = set()  # keys whose one answer was a definite refusal (4xx)
        self.ops: dict[str, str] = {}  # key -> the operation it asked for
        self.refusals: dict[str, str] = {}  # op -> the first refusal's body, to say why in the table
        self.violations: dict[str, list[str]] = defaultdict(list)  # found by the load itself: (a) and (r)
        self.stop = asyncio.Event()

    # --- sending ---

    async def request(self, client: httpx.AsyncClient, call: Call, key: str, gateway: int,
                      op: str | None = None) -> httpx.Response | None:
        """One HTTP command; recorded. A connection that breaks before any answer is asked again on the other
        gateway with the same key, as a load balancer would; a timeout is not (the command may be running)."""
        headers = {"authorization": f"Bearer {call.tenant.token}", "idempotency-key": key}
        sent = time.monotonic()
        response, failed_over, broken = await self._send(client, call.method, call.path, gateway, headers,
                                                         json=call.body)
        self._record(key, call, op or call.op, response.status_code if response is not None else 0,
                     _result_id(response), failed_over, time.monotonic() - sent, broken)
        if response is not None and 400 <= response.status_code < 500:
            self.refusals.setdefault(op or call.op, f"{response.status_code} {response.text[:160]}")
        return response

    async def _send(self, client: httpx.AsyncClient, method: str, path: str, gateway: int,
                    headers: dict[str, str], **kwargs: Any) -> tuple[httpx.Response | None, bool, bool]:
        """(the answer or None, whether another gateway was asked, whether a connection broke mid-request).

        A refused connection goes to the other gateway, as behind a load balancer. A connection broken
        after the request went out is sent again there too, with the same Idempotency-Key: the API's
        contract makes that safe, and it is what a client does; such requests are counted apart."""
        urls = self.cluster.gateways()
        failed_over = broken = False
        for attempt in range(len(urls)):
            url = urls[(gateway + attempt) % len(urls)]
            try:
                return await client.request(method, url + path, headers=headers, **kwargs), failed_over, broken
            except httpx.ConnectError:
                failed_over = True  # that gateway is down: the other one
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                failed_over = broken = True  # it died mid-request: the other one, with the same key
            except httpx.TransportError:
                break  # a timeout (past CLIENT_TIMEOUT): the command may have run; sent again later with its key
        return None, failed_over, broken

    async def command_over_nats(self, call: Call, key: str, op: str | None = None) -> dict[str, Any] | None:
        """One command by NATS request/reply, asked again with the same command id on a timeout or no
        responders until NATS_DEADLINE; recorded. The reply, or None when none came."""
        assert self.nc is not None
        payload = msgspec.json.encode({**call.body, "command_id": key, "account_id": call.tenant.account_id,
                                       "user_id": call.tenant.user_id})
        deadline = time.monotonic() + NATS_DEADLINE
        reply: dict[str, Any] | None = None
        while reply is None and time.monotonic() < deadline:
            try:
                message = await self.nc.request(f"sched.cmd.{call.path}", payload,
                                                timeout=max(0.1, min(NATS_ATTEMPT, deadline - time.monotonic())))
                reply = msgspec.json.decode(message.data)
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError, nats.errors.ConnectionClosedError,
                    nats.errors.ConnectionReconnectingError, nats.errors.StaleConnectionError):
                await asyncio.sleep(0.2)
        if reply is None:
            status, result_id = 0, None
        elif reply.get("ok"):
            status, result_id = 200, reply["result"].get("id")
        else:
            status = ERROR_STATUS.get(reply["error"]["code"], 422)
            result_id = None
            if status < 500:
                self.refusals.setdefault(op or call.op, f"{status} {msgspec.json.encode(reply['error'])[:160]!r}")
        self._record(key, call, op or call.op, status, result_id, False, 0.0, False)
        return reply

    def _record(self, key: str, call: Call, op: str, status: int, result_id: str | None, failed_over: bool,
                seconds: float, broken: bool) -> None:
        self.outcomes.append(Outcome(time.monotonic(), op, key, status, result_id, failed_over, seconds, broken))
        self.calls.setdefault(key, call)
        self.ops.setdefault(key, call.op)
        if status == 0 or status >= 500:
            if key not in self.acknowledged and key not in self.refused:
                self.unresolved.add(key)
                self.failed.add(key)
            return
        self.unresolved.discard(key)
        if 200 <= status < 300:
            first = self.acknowledged.setdefault(key, (status, result_id))
            if first != (status, result_id):
                self.violations["a"].append(f"{key} ({call.op}) answered {first}, then {(status, result_id)}")
        elif key not in self.acknowledged:
            self.refused.add(key)  # a definite refusal (409, 422) is its one result too

    async def read_slots(self, client: httpx.AsyncClient, tenant: Tenant, gateway: int, op: str,
                         window: tuple[str, str], position: str | None = None) -> list[dict[str, Any]] | None:
        """The link's slots in `window` (after `position` when given); recorded; None unless answered 200."""
        headers = {"authorization": f"Bearer {tenant.token}"}
        if position:
            headers["x-sched-position"] = position
        sent = time.monotonic()
        response, failed_over, broken = await self._send(client, "GET", f"/v1/links/{tenant.link_id}/slots",
                                                         gateway, headers,
                                                         params={"from": window[0], "until": window[1]})
        status = response.status_code if response is not None else 0
        self.outcomes.append(Outcome(time.monotonic(), op, "", status, None, failed_over,
                                     time.monotonic() - sent, broken))
        return response.json() if response is not None and status == 200 else None  # type: ignore[no-any-return]

    async def reads_own_booking(self, client: httpx.AsyncClient, tenant: Tenant, gateway: int,
                                slot: tuple[str, str], position: str | None, booking: str) -> None:
        """Read-your-writes: a slots read carrying the booking's position, through the other gateway (which
        never saw the write), must not offer the booked slot."""
        if not position:
            return
        slots = await self.read_slots(client, tenant, gateway + 1, "read_own_write", slot, position)
        if slots is not None and any(s["start_at"] < slot[1] and slot[0] < s["end_at"] for s in slots):
            self.violations["r"].append(f"{booking} at {slot[0]} still offered after position {position}")

    # --- the mix ---

    async def worker(self, number: int) -> None:
        """Requests until stopped, each tenant in turn."""
        rng = random.Random(number)
        async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT) as client:
            turn = 0
            while not self.stop.is_set():
                tenant = self.tenants[(number + turn) % len(self.tenants)]
                turn += 1
                gateway = turn % len(self.cluster.http_ports)
                _free_expired_holds(tenant)
                choice = rng.random()
                try:
                    if choice < 0.2 or not tenant.booked:
                        await self.book(client, tenant, gateway)
                    elif choice < 0.28:
                        await self.book_contended(client, tenant)
                    elif choice < 0.38:
                        await self.book_over_nats(client, tenant, gateway)
                    elif choice < 0.5:
                        await self.cancel(client, tenant, gateway, rng)
                    elif choice < 0.6:
                        await self.reschedule(client, tenant, gateway, rng)
                    elif choice < 0.65:
                        await self.request(client, Call("update_link", tenant, "PATCH", f"/v1/links/{tenant.link_id}",
                                                        {"description": f"updated {uuid.uuid4().hex[:6]}"}),
                                           _key(), gateway)
                    elif choice < 0.8:
                        await self.hold(client, tenant, gateway, rng)
                    elif tenant.free_slots:
                        await self.read_slots(client, tenant, gateway, "read_slots", tenant.free_slots[0])
                except (ValueError, KeyError):
                    pass  # an answer without the expected body: recorded already
                await asyncio.sleep(self.pause)

    async def book(self, client: httpx.AsyncClient, tenant: Tenant, gateway: int) -> None:
        """Book a free slot, then read it back through the other gateway with the booking's position."""
        if not tenant.free_slots:
            return
        slot = tenant.free_slots.pop(0)
        response = await self.request(client, _booking_call("book", tenant, slot), _key(), gateway)
        if response is not None and 200 <= response.status_code < 300:
            event_id = response.json()["id"]
            await self.reads_own_booking(client, tenant, gateway, slot, response.headers.get("x-sched-position"),
                                         event_id)
            tenant.booked[event_id] = slot  # only now may another worker cancel or move it
        elif response is not None and response.status_code < 500:
            tenant.free_slots.append(slot)
        # else: its key is sent again later; the slot stays out of the pool

    async def book_over_nats(self, client: httpx.AsyncClient, tenant: Tenant, gateway: int) -> None:
        """A microservice books by NATS request/reply on `sched.cmd.create_event`, then reads its own write."""
        if not tenant.free_slots:
            return
        slot = tenant.free_slots.pop(0)
        call = _booking_call("nats_book", tenant, slot)
        call = Call(call.op, tenant, "NATS", "create_event", {**call.body, "link_id": tenant.link_id})
        reply = await self.command_over_nats(call, _key())
        if reply is not None and reply.get("ok"):
            event_id = reply["result"]["id"]
            await self.reads_own_booking(client, tenant, gateway, slot, str(reply.get("position", "")), event_id)
            tenant.booked[event_id] = slot
        elif reply is not None and ERROR_STATUS.get(reply["error"]["code"], 422) < 500:
            tenant.free_slots.append(slot)

    async def book_contended(self, client: httpx.AsyncClient, tenant: Tenant) -> None:
        """Two bookings of the same slot at once, one through each gateway: at most one may win."""
        if not tenant.free_slots:
            return
        slot = tenant.free_slots.pop(0)
        responses = await asyncio.gather(*[self.request(client, _booking_call("book_contended", tenant, slot),
                                                        _key(), gateway) for gateway in range(2)])
        won = [r for r in responses if r is not None and 200 <= r.status_code < 300]
        for response in won:
            tenant.booked[response.json()["id"]] = slot
        if not won and all(r is not None and r.status_code < 500 for r in responses):
            tenant.free_slots.append(slot)

    async def hold(self, client: httpx.AsyncClient, tenant: Tenant, gateway: int, rng: random.Random) -> None:
        """Hold a free slot, then complete it (after a booking over it, which must be refused), abandon it, or
        leave it to expire."""
        if not tenant.free_slots:
            return
        slot = tenant.free_slots.pop(0)
        ending = rng.choice(["complete", "abandon", "expire"])
        body = {"link_id": tenant.link_id, "start_at": slot[0], "duration": 30,
                "hold_minutes": 1 if ending == "expire" else 10}
        response = await self.request(client, Call("hold", tenant, "POST", "/v1/booking_intents", body), _key(),
                                      gateway)
        if response is None or response.status_code >= 300:
            if response is not None and response.status_code < 500:
                tenant.free_slots.append(slot)
            return
        hold_id = response.json()["id"]
        if ending == "expire":
            tenant.expiring.append((time.monotonic() + HOLD_EXPIRES, slot))
            return
        if ending == "abandon":
            abandoned = await self.request(client, Call("abandon_hold", tenant, "POST",
                                                        f"/v1/booking_intents/{hold_id}/abandon", {}), _key(), gateway)
            if abandoned is not None and 200 <= abandoned.status_code < 300:
                tenant.free_slots.append(slot)
            return
        over = await self.request(client, _booking_call("book_over_hold", tenant, slot), _key(), gateway + 1)
        if over is not None and 200 <= over.status_code < 300:
            tenant.booked[over.json()["id"]] = slot  # a double booking: check (b) reports it
        completed = await self.request(client, Call("complete_hold", tenant, "POST",
                                                    f"/v1/booking_intents/{hold_id}/complete",
                                                    {"display_name": "Chaos Holder", "email": "hold@example.com",
                                                     "time_zone": "Etc/UTC"}), _key(), gateway)
        if completed is not None and 200 <= completed.status_code < 300:
            tenant.booked[completed.json()["id"]] = slot

    async def cancel(self, client: httpx.AsyncClient, tenant: Tenant, gateway: int, rng: random.Random) -> None:
        """Cancel one booked event; its slot is free again."""
        event_id = rng.choice(list(tenant.booked))
        slot = tenant.booked.pop(event_id)
        response = await self.request(client, Call("cancel", tenant, "POST", f"/v1/events/{event_id}/cancel",
                                                    {"cancel_reason": "chaos"}), _key(), gateway)
        if response is not None and 200 <= response.status_code < 300:
            tenant.free_slots.append(slot)

    async def reschedule(self, client: httpx.AsyncClient, tenant: Tenant, gateway: int, rng: random.Random) -> None:
        """Move one booked event to a free slot."""
        if not tenant.free_slots:
            return
        event_id = rng.choice(list(tenant.booked))
        old, new = tenant.booked.pop(event_id), tenant.free_slots.pop(0)
        response = await self.request(client, Call("reschedule", tenant, "POST", f"/v1/events/{event_id}/reschedule",
                                                   {"start_at": new[0], "end_at": new[1]}), _key(), gateway)
        if response is not None and 200 <= response.status_code < 300:
            tenant.booked[event_id] = new
            tenant.free_slots.append(old)

    async def run(self) -> None:
        """Every worker until `stop` is set."""
        self.nc = await _load_connection(self.cluster)
        try:
            await asyncio.gather(*[self.worker(n) for n in range(self.workers)])
        finally:
            await self.nc.close()

    # --- after the run ---

    async def resolve(self) -> None:
        """Send every command that failed or timed out again with its key until it has its answer; then send each
        of them, and a sample of the acknowledged ones, once more: every answer must be the first one again
        (same status, same resource). A disagreement is a violation of (a)."""
        self.nc = await _load_connection(self.cluster)
        try:
            async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT) as client:
                for key in sorted(self.unresolved):
                    deadline = time.monotonic() + PATIENCE
                    while key in self.unresolved:
                        await self.send_again(client, key)
                        assert time.monotonic() < deadline, f"{key} never got an answer"
                        if key in self.unresolved:
                            await asyncio.sleep(0.5)
                acknowledged = sorted(self.acknowledged)
                again = sorted(self.failed) + random.Random(7).sample(acknowledged, min(RETRY_SAMPLE, len(acknowledged)))
                running = asyncio.Semaphore(8)

                async def once_more(key: str) -> None:
                    async with running:
                        await self.send_again(client, key)

                await asyncio.gather(*[once_more(key) for key in dict.fromkeys(again)])
        finally:
            await self.nc.close()

    async def send_again(self, client: httpx.AsyncClient, key: str) -> None:
        """The command of `key` sent again with its key, as it was first sent (HTTP or NATS)."""
        call = self.calls[key]
        if call.method == "NATS":
            await self.command_over_nats(call, key, call.op + "_retry")
            return
        await self.request(client, call, key, 0, call.op + "_retry")


async def _load_connection(cluster: Cluster) -> nats.NATS:
    """The NATS clients' connection: reconnects for ever, quietly (the faults break it on purpose)."""
    async def quiet(error: Exception) -> None:
        return None

    return await nats.connect(cluster.urls["SCHED_NATS_URL"].split(","), max_reconnect_attempts=-1, error_cb=quiet)


def _result_id(response: httpx.Response | None) -> str | None:
    if response is None or not 200 <= response.status_code < 300 or not response.content:
        return None
    body = response.json()
    return body.get("id") if isinstance(body, dict) else None


def _free_expired_holds(tenant: Tenant) -> None:
    """Slots of holds left to expire go back to the pool once they have (and the sweeper ran)."""
    now = time.monotonic()
    for entry in [e for e in tenant.expiring if e[0] <= now]:
        tenant.expiring.remove(entry)
        tenant.free_slots.append(entry[1])


def _key() -> str:
    return f"chaos-{uuid.uuid4().hex}"


def _booking_call(op: str, tenant: Tenant, slot: tuple[str, str]) -> Call:
    return Call(op, tenant, "POST", f"/v1/links/{tenant.link_id}/events",
                {"display_name": "Chaos Client", "email": "chaos@example.com", "start_at": slot[0], "end_at": slot[1],
                 "time_zone": "Etc/UTC"})


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
    ("SIGKILL webhooks (active)", kill_lease_holder("webhooks", "webhooks")),
    ("SIGKILL webhooks (standby)", kill_lease_holder("webhooks", "webhooks", standby=True)),
    ("SIGKILL notifier (active)", kill_lease_holder("notifier", "notifier")),
    ("SIGKILL commands (sweeper)", kill_lease_holder("commands", "hold_sweeper")),
    ("SIGSTOP relay 15 s", pause_lease_holder("relay", 15)),
    ("SIGSTOP projections 15 s", pause_lease_holder("projection:resources", 15)),
    ("SIGSTOP webhooks 15 s", pause_lease_holder("webhooks", 15)),
    ("SIGKILL NATS leader", kill_events_leader),
    ("SIGKILL all NATS", kill_all_nats),
    ("Postgres immediate", postgres_immediate),
]

SHORT_PLAN: list[tuple[str, Fault]] = [
    ("SIGKILL commands#1", kill_instance("commands", 1)),
    ("SIGKILL query#1", kill_instance("query", 1)),
    ("SIGKILL relay (active)", kill_lease_holder("relay", "relay")),
    ("SIGSTOP relay 8 s", pause_lease_holder("relay", 8)),
    ("SIGKILL NATS leader", kill_events_leader),
    ("Postgres immediate", postgres_immediate),
]


# --- the checks -----------------------------------------------------------------------------------------

MAX_ERROR_SHARE = 0.01  # during a single process kill: at most 1% of the requests in its window fail...
MAX_WAIT = 10.0  # ...no HTTP client waits longer than 10 s for an answer (every gateway tried)...
MAX_FAILOVER = 10.0  # ...and a standby holds a single-active role's lease within 10 s of the holder's death
CHECKS = {"a": "(a) acknowledged commands in the log once, retries agree",
          "b": "(b) no overlapping reservations (folded from the log)",
          "c": "(c) every read model equals a rebuild",
          "d": "(d) SCHED_EVENTS holds the log once, in order",
          "e": "(e) webhooks: every event at least once, in order",
          "r": "(r) reads with X-Sched-Position never offer the booked slot"}
# The creating operations of the load, and the event that must hold their result exactly once.
CREATIONS = {"book": ("event_created", "event_id"), "book_contended": ("event_created", "event_id"),
             "nats_book": ("event_created", "event_id"), "book_over_hold": ("event_created", "event_id"),
             "complete_hold": ("event_created", "event_id"), "hold": ("slot_held", "booking_intent_id")}


def single_process_kill(name: str) -> bool:
    """A fault that kills one process (the 1% target applies to it); all NATS nodes or Postgres are not."""
    return name.startswith("SIGKILL") and "all NATS" not in name


@dataclass
class FaultFigures:
    """Check (f) of one fault: its window's requests, errors and 500s, and whether it met the targets."""

    requests: int
    errors: int
    fives: int
    failed_over: int
    broken: int
    slowest: float
    longest: float
    verdict: str


@dataclass
class Report:
    """Violations per check (a)-(e) and (r), the figures of (f) and (g), and a verdict per line."""

    violations: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    faults: list[FaultResult] = field(default_factory=list)
    requests: int = 0

    def figures(self, load: Load, fault: FaultResult) -> FaultFigures:
        """(f) and (g) of one fault, with its PASS/FAIL: no 500 ever; for a single process kill at most 1% of
        the requests in its window failed; a failover within 10 s."""
        window = [o for o in load.outcomes if fault.started <= o.at <= fault.ended]
        errors = [o for o in window if o.status == 0 or o.status >= 500]
        fives = [o for o in window if o.status >= 500 and o.status != 503]
        slowest = max((o.seconds for o in window), default=0.0)
        passed = not fives and slowest <= MAX_WAIT and (fault.failover is None or fault.failover <= MAX_FAILOVER)
        if single_process_kill(fault.name):
            passed = passed and len(errors) <= MAX_ERROR_SHARE * len(window)
        return FaultFigures(len(window), len(errors), len(fives), sum(o.failed_over for o in window),
                            sum(o.broken for o in window), slowest,
                            _longest_gap(window, fault.started, fault.ended), "PASS" if passed else "FAIL")

    def failures(self, load: Load) -> list[str]:
        """Every line of the table that says FAIL."""
        failed = [CHECKS[check] for check in CHECKS if self.violations.get(check)]
        return failed + [fault.name for fault in self.faults if self.figures(load, fault).verdict == "FAIL"]

    def table(self, load: Load) -> str:
        """The printed table."""
        lines = ["check                                                         violations  verdict",
                 "------------------------------------------------------------  ----------  -------"]
        for check, name in CHECKS.items():
            found = self.violations.get(check, [])
            lines.append(f"{name:<60}  {len(found):>10}  {'FAIL' if found else 'PASS':<7}"
                         + (f"  e.g. {found[0]}" if found else ""))
        answers: dict[str, int] = defaultdict(int)
        for outcome in load.outcomes:
            answers[f"{outcome.op} {outcome.status or 'no answer'}"] += 1
        lines += ["", f"requests: {self.requests} ({', '.join(f'{k}: {v}' for k, v in sorted(answers.items()))})"]
        lines += [f"  first refusal of {op}: {body}" for op, body in sorted(load.refusals.items())]
        lines += ["", "targets: no 500 in any window; a single process kill (SIGKILL of one process): at most 1% of"
                  + " the window's requests fail; no HTTP client waits past 10 s; failover within 10 s",
                  "(failed over: sent to the other gateway with the same key; of them, broken: the connection"
                  + " broke after the request went out)",
                  "fault                           requests  errors  500s  failed over (broken)  slowest  "
                  + "longest unavailable  failover                         verdict",
                  "------------------------------  --------  ------  ----  --------------------  -------  "
                  + "-------------------  -------------------------------  -------"]
        for fault in self.faults:
            f = self.figures(load, fault)
            failover = f"{fault.failover:.1f}s ({fault.failover_role})" if fault.failover is not None else "-"
            over = f"{f.failed_over} ({f.broken})"
            lines.append(f"{fault.name:<30}  {f.requests:>8}  {f.errors:>6}  {f.fives:>4}  {over:>20}  "
                         f"{f.slowest:>6.1f}s  {f.longest:>18.1f}s  {failover:<31}  {f.verdict}")
        return "\n".join(lines)


def _longest_gap(window: list[Outcome], start: float, end: float) -> float:
    times = [start] + sorted(o.at for o in window if 200 <= o.status < 500) + [end]
    return max(b - a for a, b in itertools.pairwise(times))


def overlapping_reservations(logged: list[Any]) -> list[str]:
    """Check (b): every provider's reservations folded from the log, one transaction at a time (a completed
    hold hands its time to the event in one transaction); a hold counts until it expires or is released."""
    from shared.availability import parse_instant
    from shared.messages.events import ReservationMoved, TimeReleased, TimeReserved, decode_event

    found: list[str] = []
    active: dict[str, dict[str, tuple[int, int, int | None]]] = defaultdict(dict)  # -> (start, end, expires)
    for _, group in itertools.groupby(logged, key=lambda e: e.cursor.tx_id):
        touched: list[tuple[str, str]] = []
        at = 0
        for event in group:
            if event.type not in ("time_reserved", "time_released", "reservation_moved"):
                continue
            at = int(event.occurred_at.timestamp())
            decoded = decode_event(event.data)
            assert isinstance(decoded, TimeReleased | TimeReserved | ReservationMoved)
            calendar = active[decoded.provider_id]
            if isinstance(decoded, TimeReleased):
                calendar.pop(decoded.reservation_id, None)
                continue
            expires = calendar.get(decoded.reservation_id, (0, 0, None))[2]
            if isinstance(decoded, TimeReserved):
                expires = parse_instant(decoded.expires_at) if decoded.expires_at else None
            calendar[decoded.reservation_id] = (parse_instant(decoded.start_at), parse_instant(decoded.end_at), expires)
            touched.append((decoded.provider_id, decoded.reservation_id))
        for provider_id, reservation_id in touched:
            calendar = active[provider_id]
            if reservation_id not in calendar:
                continue
            start, end, _ = calendar[reservation_id]
            for other_id, (other_start, other_end, expires) in calendar.items():
                if other_id != reservation_id and (expires is None or expires > at) \
                        and other_start < end and start < other_end:
                    found.append(f"{reservation_id} overlaps {other_id}")
    return found


async def acknowledged_once(pool: asyncpg.Pool, load: Load, logged: list[Any]) -> list[str]:
    """Check (a): each acknowledged command has its one stored reply with the result it answered, whose events
    are all in the log; each created resource is created in the log exactly once; a refused one took no effect."""
    found = list(load.violations.get("a", []))
    rows = await pool.fetch("select command_id, reply from command_replies where command_id like 'chaos-%'")
    stored = {r["command_id"]: msgspec.json.decode(r["reply"]) for r in rows}
    in_log = {e.id for e in logged}
    created: dict[tuple[str, str], int] = defaultdict(int)
    for event in logged:
        if event.type in ("event_created", "slot_held"):
            data = msgspec.json.decode(event.data)
            created[(event.type, data.get("event_id") or data.get("booking_intent_id"))] += 1
    if not any(load.ops[key] in CREATIONS for key in load.acknowledged):
        found.append("no booking was acknowledged: nothing was checked")
    for key, (_, result_id) in load.acknowledged.items():
        reply = stored.get(key)
        if reply is None:
            found.append(f"acknowledged {key} ({load.ops[key]}) has no stored reply")
            continue
        if result_id is not None and reply["result"].get("id") != result_id:
            found.append(f"{key}: answered {result_id}, stored {reply['result'].get('id')}")
        if not set(reply["events"]) <= in_log:
            found.append(f"{key}: events of its reply missing from the log")
        if load.ops[key] in CREATIONS and result_id:
            event_type, _ = CREATIONS[load.ops[key]]
            if created[(event_type, result_id)] != 1:
                found.append(f"{load.ops[key]} {result_id} is in the log {created[(event_type, result_id)]} times")
    for key in load.refused:
        if key in stored:
            found.append(f"{key} ({load.ops[key]}) was refused, yet took effect")
    return found


async def check_all(cluster: Cluster, load: Load, tenants: list[Tenant], report: Report) -> None:
    """Checks (a) to (e) once the load has stopped and every failed request was resolved; (r) came with the load."""
    from projections import PROJECTIONS, runnable
    from projections.runner import applied_everywhere, log_head, rebuild, tx_of
    from services.webhooks.payloads import webhook_type
    from shared.eventstore import RecordedEvent, create_pool
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
        report.violations["a"] += await acknowledged_once(pool, load, logged)
        report.violations["b"] += overlapping_reservations(logged)
        report.violations["r"] += load.violations.get("r", [])
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
                    got = await asyncio.wait_for(stream_ids(js, settings), timeout=60)
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
        report.requests = len(load.outcomes)
        await load.resolve()
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

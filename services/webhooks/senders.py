"""Senders: one task per webhook with pending deliveries, sending them strictly in outbox order.

The head of a webhook's queue blocks the rest: while it waits for its next retry, later events
wait too, so a receiver never sees an event before an earlier one of the same webhook. After the
last retry of the schedule the delivery is dead, the webhook is marked failing, and the sender
goes on with the next delivery (the backlog is kept, never dropped); the first success marks the
webhook active again. A sender whose webhook was deleted cancels what is left and stops.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from services.webhooks import outbox
from services.webhooks.signing import signed_headers, with_calendly_signature
from services.webhooks.transport import USER_AGENT, AttemptOutcome, post
from shared.lease import Lease, LeaseLost
from shared.lifecycle import sleep_unless_stopped
from shared.settings import Settings
from shared.webhook_secrets import secrets_by_id

log = logging.getLogger("sched.webhooks.senders")

JITTER = 0.2
SCAN_SECONDS = 2.0
IDLE_SECONDS = 5.0  # how long a sender with nothing to send waits for more before it ends


def retry_delay(attempts_made: int, schedule: Sequence[float], rng: random.Random) -> float | None:
    """Seconds until the next attempt after `attempts_made` failed ones (±20% jitter); None: the delivery is dead."""
    if attempts_made < 1 or attempts_made > len(schedule):
        return None
    return schedule[attempts_made - 1] * rng.uniform(1 - JITTER, 1 + JITTER)


def signing_secrets(subscription: outbox.Subscription, secrets: dict[str, str], now: datetime) -> list[str]:
    """The secrets that sign now, newest first: the current one, and the previous one during its grace period."""
    ids = [subscription.secret_id]
    if (subscription.previous_secret_id and subscription.previous_expires_at
            and subscription.previous_expires_at > now):
        ids.append(subscription.previous_secret_id)
    return [secrets[i] for i in ids if i in secrets]


def _now() -> datetime:
    return datetime.now(UTC)


class WebhookSender:
    """Delivers one webhook's queue; ends when the queue is empty (the supervisor restarts it on new work)."""

    def __init__(self, webhook_id: str, pool: asyncpg.Pool, settings: Settings, in_flight: asyncio.Semaphore,
                 rng: random.Random, tls: ssl.SSLContext, clock: Callable[[], datetime] = _now,
                 lease: Lease | None = None) -> None:
        self.webhook_id = webhook_id
        self.lease = lease
        self.tls = tls
        self.pool = pool
        self.settings = settings
        self.in_flight = in_flight
        self.rng = rng
        self.clock = clock
        self.wake = asyncio.Event()
        self.subscription: outbox.Subscription | None = None
        self.secrets: dict[str, str] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver the queue in order until it stays empty a moment, the webhook is gone, or `stop`."""
        async with httpx.AsyncClient(timeout=self.settings.webhook_timeout, follow_redirects=False, trust_env=False,
                                     headers={"user-agent": USER_AGENT}, verify=self.tls,
                                     limits=httpx.Limits(max_connections=1, max_keepalive_connections=1)) as client:
            while not stop.is_set():
                queue = await outbox.pending(self.pool, self.webhook_id)
                if not queue:
                    if not self.wake.is_set():  # idle: linger a little (keeps the connection), then end
                        await self._sleep(IDLE_SECONDS, stop, clear=False)
                    if self.wake.is_set():  # work arrived
                        self.wake.clear()
                        continue
                    return
                self.wake.clear()
                if not await self._load():
                    return
                for delivery in queue:
                    if self.wake.is_set():  # the webhook changed (a new secret, deleted) or has more work
                        self.wake.clear()
                        if not await self._load():
                            return
                    if not await self._deliver(client, delivery, stop):
                        return

    async def _load(self) -> bool:
        """Read the webhook and its secrets again; False (after cancelling its queue) when it is gone."""
        subscription = await outbox.subscription(self.pool, self.webhook_id)
        if subscription is None or subscription.state == "deleted":
            await outbox.cancel_pending(self.pool, self.webhook_id, self.lease)
            return False
        ids = [i for i in (subscription.secret_id, subscription.previous_secret_id) if i]
        self.secrets = await secrets_by_id(self.pool, ids)
        self.subscription = subscription
        return True

    async def _deliver(self, client: httpx.AsyncClient, delivery: outbox.Delivery, stop: asyncio.Event) -> bool:
        """Attempt the delivery until it is delivered or dead; False when this sender must stop."""
        current: outbox.Delivery | None = delivery
        while current is not None:
            wait = (current.next_attempt_at - self.clock()).total_seconds()
            if wait > 0:
                await self._sleep(wait, stop)
                if stop.is_set() or not await self._load():
                    return False
                continue
            current = await self._attempt(client, current)
        return True

    async def _attempt(self, client: httpx.AsyncClient, delivery: outbox.Delivery) -> outbox.Delivery | None:
        assert self.subscription is not None
        attempted_at = self.clock()
        secrets = signing_secrets(self.subscription, self.secrets, attempted_at)
        if not secrets:
            outcome = AttemptOutcome(None, "no signing secret is stored for this webhook", 0.0)
        else:
            headers = signed_headers(self.webhook_id, secrets, delivery.body, int(time.time()))
            if delivery.type.startswith("invitee."):
                headers = with_calendly_signature(headers)
            async with self.in_flight:
                if self.lease is not None and not self.lease.held():
                    raise LeaseLost(self.lease.name)  # paused past our lease: the new holder sends it
                outcome = await post(client, self.subscription.url, delivery.body, headers,
                                     timeout=self.settings.webhook_timeout,
                                     allow_loopback=self.settings.webhook_allow_loopback)
        delay = None if outcome.ok else retry_delay(delivery.attempt_count + 1, self.settings.webhook_retry_schedule,
                                                    self.rng)
        retry_at = self.clock() + timedelta(seconds=delay) if delay is not None else None
        if not outcome.ok and retry_at is None:
            log.warning("webhook %s: delivery %d is dead after %d attempts (%s)", self.webhook_id, delivery.seq,
                        delivery.attempt_count + 1, outcome.error or f"HTTP {outcome.status_code}")
        return await outbox.record_attempt(self.pool, delivery, attempted_at, outcome, retry_at, self.lease)

    async def _sleep(self, seconds: float, stop: asyncio.Event, clear: bool = True) -> None:
        """Sleep, but wake early on stop or when poked (a deletion, new work)."""
        if clear:
            self.wake.clear()
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()


class Senders:
    """Keeps one sender running per webhook with pending deliveries."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings, max_in_flight: int = 256,
                 clock: Callable[[], datetime] = _now, lease: Lease | None = None) -> None:
        self.pool = pool
        self.lease = lease
        self.settings = settings
        self.clock = clock
        self.in_flight = asyncio.Semaphore(max_in_flight)
        self.rng = random.Random()
        self.tls = ssl.create_default_context()  # loading the CA bundle costs ~30 ms: once, not per sender
        self.running: dict[str, tuple[WebhookSender, asyncio.Task[None]]] = {}
        self._stop = asyncio.Event()

    def poke(self, webhook_ids: set[str]) -> None:
        """New work (or a deletion) for these webhooks."""
        for webhook_id in webhook_ids:
            self._ensure(webhook_id)

    def _ensure(self, webhook_id: str) -> None:
        entry = self.running.get(webhook_id)
        if entry is not None and not entry[1].done():
            entry[0].wake.set()
            return
        sender = WebhookSender(webhook_id, self.pool, self.settings, self.in_flight, self.rng, self.tls, self.clock,
                               self.lease)
        task = asyncio.create_task(self._guarded(sender), name=f"webhook-sender-{webhook_id}")
        self.running[webhook_id] = (sender, task)

    async def _guarded(self, sender: WebhookSender) -> None:
        try:
            await sender.run(self._stop)
        except asyncio.CancelledError:
            raise
        except LeaseLost:
            log.warning("webhook %s: sender stopped, the dispatcher's lease is no longer ours", sender.webhook_id)
        except Exception:  # the database went away: the next scan restarts this sender
            log.exception("webhook %s: sender failed; restarting on the next scan", sender.webhook_id)

    async def run(self, stop: asyncio.Event) -> None:
        """Scan for pending work now and every few seconds until `stop`; then stop every sender."""
        self._stop = stop
        try:
            while not stop.is_set():
                try:
                    for webhook_id in await outbox.webhooks_with_pending(self.pool):
                        self._ensure(webhook_id)
                    self.running = {k: v for k, v in self.running.items() if not v[1].done()}
                except Exception:
                    log.exception("scanning for pending webhook deliveries failed")
                await sleep_unless_stopped(stop, SCAN_SECONDS)
        finally:
            tasks = [task for _, task in self.running.values()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.running.clear()

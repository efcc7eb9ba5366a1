"""The dispatcher: one active instance runs the intake and the senders; the others stand by.

Being active is holding the `webhooks` lease (shared/lease.py), a single-active role like the
relay's: a standby takes over within a lease's length of the holder's death or pause, from the
committed intake position and the pending outbox rows. Two dispatchers reading the same events
concurrently could write a webhook's outbox out of order, so only the holder works, and a holder
paused past its lease that resumes does nothing more:

- every write (intake position with its outbox rows, each attempt's outcome, a cancellation) is a
  transaction fenced by the lease's token, so a stale holder's write fails with `LeaseLost`;
- each sender checks `lease.held()` right before each HTTP delivery, so a stale holder sends nothing
  more, except the one POST it may already have passed that check for when it was paused (a repeat
  of a delivery, at least once; the order of first arrivals holds);
- each term reads SCHED_EVENTS through its own durable consumer, named after the lease token, so a
  stale holder's pending pull requests cannot take messages from the new holder's consumer.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from nats.js import JetStreamContext

from services.webhooks.intake import Intake
from services.webhooks.senders import Senders
from shared.lease import DEFAULT_TTL, Lease, serve_terms
from shared.lifecycle import sleep_unless_stopped
from shared.settings import Settings

log = logging.getLogger("sched.webhooks")

LEASE = "webhooks"
STANDBY_POLL_SECONDS = 0.2


class Dispatcher:
    """One process's dispatcher: runs the intake and the senders while it holds the `webhooks` lease."""

    def __init__(self, pool: asyncpg.Pool, js: JetStreamContext, settings: Settings,
                 lease_ttl: float = DEFAULT_TTL) -> None:
        self.pool = pool
        self.lease = Lease(pool, LEASE, lease_ttl)
        self.senders = Senders(pool, settings, lease=self.lease)
        self.intake = Intake(pool, js, settings, self.senders.poke, lease=self.lease)
        self.leading = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver while holding the lease, until `stop`; stand by while another instance holds it."""
        await serve_terms(self.lease, stop, self._lead, "webhook dispatcher", STANDBY_POLL_SECONDS)

    async def _lead(self, stop: asyncio.Event) -> None:
        token = self.lease.token
        assert token is not None
        work_stop = asyncio.Event()
        try:
            await self.intake.start()
            self.leading.set()
            log.info("webhook dispatcher leading (lease token %d) from stream sequence %d", token,
                     self.intake.position)
            await asyncio.gather(self.senders.run(work_stop), self.intake.run(work_stop),
                                 self._watch(stop, work_stop, token))
        finally:
            work_stop.set()
            self.leading.clear()
            await self.intake.stop()

    async def _watch(self, stop: asyncio.Event, work_stop: asyncio.Event, token: int) -> None:
        """End the term on `stop`, or as soon as the lease is no longer ours (expired, taken, or we were paused)."""
        while not stop.is_set() and self.lease.held() and self.lease.token == token:
            await sleep_unless_stopped(stop, STANDBY_POLL_SECONDS)
        if not stop.is_set():
            log.warning("webhook dispatcher lost its lease (token %d); standing by", token)
        work_stop.set()

"""The dispatcher: one leader per database runs the intake and the senders; other instances stand by.

Leadership is a Postgres advisory lock held on a dedicated connection. Two dispatchers reading the
same events concurrently could write a webhook's outbox out of order, so only the lock holder
works; when it dies its connection closes, the lock is released and a standby takes over from
the committed intake position and the pending outbox rows.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from nats.js import JetStreamContext

from services.webhooks.intake import Intake
from services.webhooks.senders import Senders
from shared.lifecycle import sleep_unless_stopped
from shared.settings import Settings

log = logging.getLogger("sched.webhooks")

LEADER_LOCK = 7_310_006  # any fixed number, distinct from the other advisory locks of the project
STANDBY_POLL_SECONDS = 0.5
WATCHDOG_SECONDS = 2.0


class Dispatcher:
    """One process's dispatcher: runs the intake and the senders while it holds the leader lock."""

    def __init__(self, pool: asyncpg.Pool, js: JetStreamContext, settings: Settings) -> None:
        self.pool = pool
        self.senders = Senders(pool, settings)
        self.intake = Intake(pool, js, settings, self.senders.poke)
        self.leading = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver while leading, until `stop`; after losing the lock (database gone), try to lead again."""
        while not stop.is_set():
            try:
                async with self.pool.acquire() as lock_conn:
                    await self._lead(lock_conn, stop)
            except Exception:
                log.exception("webhook dispatcher lost its database connection; retrying")
                await sleep_unless_stopped(stop, 1.0)

    async def _lead(self, lock_conn: asyncpg.Connection, stop: asyncio.Event) -> None:
        while not await lock_conn.fetchval("select pg_try_advisory_lock($1)", LEADER_LOCK):
            await sleep_unless_stopped(stop, STANDBY_POLL_SECONDS)
            if stop.is_set():
                return
        work_stop = asyncio.Event()
        try:
            await self.intake.start()
            self.leading.set()
            log.info("webhook dispatcher leading from stream sequence %d", self.intake.position)
            await asyncio.gather(self.senders.run(work_stop), self.intake.run(work_stop),
                                 self._watch(lock_conn, stop, work_stop))
        finally:
            work_stop.set()
            self.leading.clear()
            await self.intake.stop()
            if not lock_conn.is_closed():
                await lock_conn.execute("select pg_advisory_unlock($1)", LEADER_LOCK)

    async def _watch(self, lock_conn: asyncpg.Connection, stop: asyncio.Event, work_stop: asyncio.Event) -> None:
        """End the term on `stop`, or when the lock's connection fails (another instance may lead now)."""
        try:
            while not stop.is_set():
                await sleep_unless_stopped(stop, WATCHDOG_SECONDS)
                if not stop.is_set():
                    await lock_conn.fetchval("select 1", timeout=WATCHDOG_SECONDS)
        except Exception:
            log.exception("the leader lock's connection failed; stepping down")
        finally:
            work_stop.set()


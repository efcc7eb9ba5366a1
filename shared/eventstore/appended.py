"""Waking the log's followers when an append commits, instead of each polling every few milliseconds.

`EventStore.append` sends `NOTIFY sched_appended` right after its transaction commits (in a statement of its
own: a NOTIFY inside the append would serialize every commit on Postgres' notification lock). Each follower
process keeps one LISTEN connection (`Appended`); each follower loop holds a `Waiter` and, when a read found
nothing new, rests on it:

- after a notification or a read that found events, it reads again after its short interval for
  `HOT_SECONDS`: an append can stay invisible to the gap-safe read while an older transaction is still open,
  and that transaction's commit may send no notification;
- otherwise it sleeps until the next notification, or `FALLBACK_SECONDS` at most. That bounds the lag when a
  notification is lost (the LISTEN connection broken, Postgres restarting, a row written by other means).

Before, an idle system polled Postgres hundreds of times a second (the query service every 5 ms, every
projection unit and the relay every 10 ms), which on a small machine took CPU from the read path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import asyncpg

CHANNEL = "sched_appended"
HOT_SECONDS = 0.1
FALLBACK_SECONDS = 0.25
RECONNECT_SECONDS = 1.0
log = logging.getLogger("sched.appended")


async def announce(conn: asyncpg.Connection) -> None:
    """Tell the followers the log grew (call after the append's transaction committed)."""
    await conn.execute(f"notify {CHANNEL}")


class Waiter:
    """One follower loop's rest between reads."""

    def __init__(self, short: float) -> None:
        self.short = short
        self.event = asyncio.Event()
        self.hot_until = 0.0

    def arm(self) -> None:
        """Call right before each read: a notification from now on ends the next rest at once."""
        self.event.clear()

    async def rest(self, found: bool) -> None:
        """Wait before the next read: `found` says whether the last read found events."""
        now = time.monotonic()
        if found or self.event.is_set():
            self.hot_until = now + HOT_SECONDS
        timeout = self.short if now < self.hot_until else FALLBACK_SECONDS
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.event.wait(), timeout)
        if self.event.is_set():
            self.hot_until = time.monotonic() + HOT_SECONDS


class Appended:
    """A process's LISTEN connection on `sched_appended`, waking every Waiter it gave out."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.waiters: list[Waiter] = []
        self.listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def waiter(self, short: float) -> Waiter:
        """A Waiter for one follower loop, reading again after `short` s while the log is busy."""
        waiter = Waiter(short)
        self.waiters.append(waiter)
        return waiter

    def wake_all(self) -> None:
        """End every follower's rest (a notification, or a new LISTEN connection that may have missed some)."""
        for waiter in self.waiters:
            waiter.event.set()

    async def start(self) -> None:
        """Listen in the background, reconnecting when the connection is lost; wait (up to 5 s) for the first."""
        self._task = asyncio.create_task(self._listen())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), 5)

    async def close(self) -> None:
        """Stop listening."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.url)
                await self._listen_on(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - whatever ended it, listen again (followers poll meanwhile)
                log.warning("listening for appends: %s: %s", type(exc).__name__, exc)
            finally:
                self.listening.clear()
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=2))
            await asyncio.sleep(RECONNECT_SECONDS)

    async def _listen_on(self, conn: asyncpg.Connection) -> None:
        """Until `conn` is lost: every notification on it wakes the followers."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        await conn.add_listener(CHANNEL, lambda *_: self.wake_all())
        self.listening.set()
        self.wake_all()  # anything appended while nobody listened
        await lost.wait()

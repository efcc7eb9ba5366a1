"""The hold sweeper: appends ExpireHold for every booking intent past its expiry.

Queries already ignore expired holds, so lateness costs nothing but a later `expired` state. The
sweeper follows the log (like a projector) to keep a small table of active holds by deadline, and
commits that table with its checkpoint. One instance sweeps at a time (an advisory lock), so any
number of command services can run it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import msgspec

from services.commands.service import CommandService
from shared.eventstore import EventStore
from shared.lifecycle import sleep_unless_stopped
from shared.messages.events import HoldCompleted, HoldExpired, HoldReleased, SlotHeld, decode_event

log = logging.getLogger("sched.sweeper")
CHECKPOINT = "hold_sweeper"
SWEEPER_LOCK = 7_310_002
_HOLD_TYPES = {"slot_held", "hold_released", "hold_completed", "hold_expired"}


class HoldSweeper:
    """Follows the log for holds and expires each one once its deadline has passed."""

    def __init__(self, store: EventStore, service: CommandService) -> None:
        self.store = store
        self.service = service

    async def follow(self) -> int:
        """Fold the next events of the log into hold_deadlines; return how many were read."""
        cursor = await self.store.load_checkpoint(CHECKPOINT)
        events = await self.store.read_all(cursor, limit=1000)
        if not events:
            return 0
        async with self.store.pool.acquire() as conn, conn.transaction():
            for recorded in events:
                if recorded.type not in _HOLD_TYPES:
                    continue
                event = decode_event(recorded.data)
                if isinstance(event, SlotHeld):
                    await conn.execute(
                        "insert into hold_deadlines values ($1, $2, $3) on conflict do nothing",
                        event.booking_intent_id, event.account_id,
                        datetime.fromisoformat(event.expires_at))
                elif isinstance(event, HoldReleased | HoldCompleted | HoldExpired):
                    await conn.execute("delete from hold_deadlines where booking_intent_id = $1",
                                       event.booking_intent_id)
            await self.store.save_checkpoint(CHECKPOINT, events[-1].cursor, conn)
        return len(events)

    async def expire_due(self, now: datetime | None = None) -> int:
        """Append ExpireHold for every due hold; return how many were expired."""
        due = await self.store.pool.fetch(
            "select booking_intent_id, account_id from hold_deadlines where expires_at <= $1"
            " order by expires_at limit 200", now or self.service.clock())
        expired = 0
        for row in due:
            body = {"command_id": f"expire-{row['booking_intent_id']}", "account_id": row["account_id"],
                    "booking_intent_id": row["booking_intent_id"]}
            reply = msgspec.json.decode(await self.service.execute("expire_hold", msgspec.json.encode(body)))
            expired += bool(reply.get("ok"))
            if reply.get("ok") or reply.get("error", {}).get("code") != "internal":
                # Expired now, or no longer active (completed/abandoned meanwhile): nothing left to do.
                await self.store.pool.execute("delete from hold_deadlines where booking_intent_id = $1",
                                              row["booking_intent_id"])
        return expired

    async def run(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        """Sweep until `stop` is set, while holding the sweeper lock (other instances wait)."""
        async with self.store.pool.acquire() as lock_conn:
            while not stop.is_set():
                if await lock_conn.fetchval("select pg_try_advisory_lock($1)", SWEEPER_LOCK):
                    break
                await sleep_unless_stopped(stop, 5)
            try:
                while not stop.is_set():
                    try:
                        while await self.follow():
                            continue  # until caught up
                        await self.expire_due()
                    except Exception:
                        log.exception("hold sweep failed; retrying")
                    await sleep_unless_stopped(stop, interval)
            finally:
                await lock_conn.execute("select pg_advisory_unlock_all()")


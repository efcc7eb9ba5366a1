"""The hold sweeper: appends ExpireHold for every booking intent past its expiry.

Queries already ignore expired holds, so lateness costs nothing but a later `expired` state. The
sweeper follows the log (like a projector) to keep a small table of active holds by deadline, and
commits that table with its checkpoint. One instance sweeps at a time (the `hold_sweeper` lease,
shared/lease.py, fencing its checkpoint), so any number of command services can run it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import msgspec

from services.commands.service import CommandService
from shared.eventstore import EventStore
from shared.lease import Lease, LeaseLost
from shared.lifecycle import sleep_unless_stopped
from shared.messages.events import HoldCompleted, HoldExpired, HoldReleased, SlotHeld, decode_event

log = logging.getLogger("sched.sweeper")
CHECKPOINT = "hold_sweeper"
_HOLD_TYPES = {"slot_held", "hold_released", "hold_completed", "hold_expired"}


class HoldSweeper:
    """Follows the log for holds and expires each one once its deadline has passed."""

    def __init__(self, store: EventStore, service: CommandService) -> None:
        self.store = store
        self.service = service

    async def follow(self, lease: Lease | None = None) -> int:
        """Fold the next events of the log into hold_deadlines; return how many were read (fenced by `lease`)."""
        cursor = await self.store.load_checkpoint(CHECKPOINT)
        events = await self.store.read_all(cursor, limit=1000)
        if not events:
            return 0
        async with self.store.pool.acquire() as conn, conn.transaction():
            if lease is not None:
                await lease.fence(conn)
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
        """Sweep until `stop` is set, while holding the sweeper's lease (other instances stand by)."""
        lease = Lease(self.store.pool, CHECKPOINT)
        keeping = asyncio.create_task(lease.keep(stop))
        try:
            while not stop.is_set():
                if lease.held():
                    try:
                        while await self.follow(lease):
                            continue  # until caught up
                        if lease.held():
                            await self.expire_due()
                    except LeaseLost:
                        log.warning("hold sweeper lost its lease; standing by")
                    except Exception:
                        log.exception("hold sweep failed; retrying")
                await sleep_unless_stopped(stop, interval)
        finally:
            await keeping

"""The relay: follows the event log in commit order and publishes each event to JetStream."""

from __future__ import annotations

import asyncio
import logging

from nats.js import JetStreamContext

from shared.eventstore import EventStore, LogCursor
from shared.feed import aggregate_of, ensure_events_stream, envelope_of
from shared.lifecycle import sleep_unless_stopped
from shared.settings import Settings

log = logging.getLogger("sched.relay")

CHECKPOINT = "relay"

class Relay:
    """Publishes the log to JetStream; the checkpoint moves only after JetStream acknowledged."""

    def __init__(self, store: EventStore, js: JetStreamContext, settings: Settings, batch_size: int = 500) -> None:
        self.store = store
        self.js = js
        self.settings = settings
        self.batch_size = batch_size
        self.cursor = LogCursor()

    async def start(self) -> None:
        """Make sure the events stream exists and resume after the relay's checkpoint."""
        await ensure_events_stream(self.js, self.settings)
        self.cursor = await self.store.load_checkpoint(CHECKPOINT)

    async def publish_batch(self) -> int:
        """Publish the next batch; return how many events it held."""
        events = await self.store.read_all(self.cursor, self.batch_size)
        if not events:
            return 0
        prefix = self.settings.events_subject_prefix
        # One connection keeps publish order, so pipelining keeps the stream in log order.
        await asyncio.gather(*[
            self.js.publish(f"{prefix}.{aggregate_of(e.stream_id)}.{e.type}", envelope_of(e),
                            headers={"Nats-Msg-Id": e.id}, timeout=10)
            for e in events
        ])
        self.cursor = events[-1].cursor
        await self.store.save_checkpoint(CHECKPOINT, self.cursor)
        return len(events)

    async def run(self, stop: asyncio.Event, idle_sleep: float = 0.01) -> None:
        """Publish until `stop` is set; poll briefly when caught up."""
        while not stop.is_set():
            try:
                published = await self.publish_batch()
            except Exception:  # the broker or the database is away: keep the checkpoint and retry
                log.exception("relay batch failed; retrying")
                published = 0
                await asyncio.sleep(0.5)
            if published < self.batch_size:
                await sleep_unless_stopped(stop, idle_sleep)

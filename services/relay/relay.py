"""The relay: follows the event log in commit order and publishes each event to JetStream.

Publishes are fenced at the server. The relay knows the stream's last sequence (read before each feed
check, then moved by its own acknowledged publishes) and publishes the i-th event of a pipelined batch
with `Nats-Expected-Last-Sequence: last + i`. JetStream stores a message only if the stream's last
sequence is exactly that, so a relay that is behind (paused after its lease check while a new holder
published, or racing a repair) has its publish refused by the server, not stored: it re-checks the feed
(and, no longer holding the lease, stands by). Two relays that both believe the stream holds the same
messages publish the same events at the same sequences, so whichever wins each sequence the stream
keeps the log once, in order. An acknowledgement marked `duplicate` (an id the stream already holds)
means our view of the stream is wrong too: the feed is checked again before anything else.
"""

from __future__ import annotations

import asyncio
import logging
import time

import nats
from nats.js import JetStreamContext

from services.relay.feed_check import POSITION_HEADER, check_and_repair
from shared.eventstore import EventStore, LogCursor, RecordedEvent
from shared.eventstore.appended import Appended
from shared.feed import aggregate_of, ensure_events_stream, envelope_of
from shared.lease import Lease, LeaseLost
from shared.lifecycle import sleep_unless_stopped
from shared.settings import Settings

log = logging.getLogger("sched.relay")

CHECKPOINT = "relay"
EXPECTED_LAST_SEQUENCE = "Nats-Expected-Last-Sequence"
WRONG_LAST_SEQUENCE = 10071  # JetStream's error code: the stream's last sequence is not the expected one


class FeedOutOfStep(RuntimeError):
    """The stream is not where this relay thought (another publisher, a duplicate): check the feed again."""

class Relay:
    """Publishes the log to JetStream; the checkpoint moves only after JetStream acknowledged.

    With a `lease` only its holder publishes: a standby (or a holder paused past its lease) does
    nothing, and the checkpoint is written fenced by the lease's token.
    """

    def __init__(self, store: EventStore, js: JetStreamContext, settings: Settings, batch_size: int = 500,
                 lease: Lease | None = None) -> None:
        self.store = store
        self.js = js
        self.settings = settings
        self.batch_size = batch_size
        self.cursor = LogCursor()
        self.lease = lease
        self.active_token: int | None = None
        self.check_needed = True  # at start, after every reconnect, after a failed publish
        self.msg_id_suffix = ""  # set after a repair: JetStream would drop a re-published Nats-Msg-Id
        self.repairs = 0
        self.last_sequence: int | None = None  # the stream's last sequence as we know it (None: check first)

    def request_check(self) -> None:
        """Compare the stream with the log before the next publish (NATS reconnected, say)."""
        self.check_needed = True

    async def start(self) -> None:
        """Make sure the events stream exists and resume after the relay's checkpoint."""
        await ensure_events_stream(self.js, self.settings)
        self.cursor = await self.store.load_checkpoint(CHECKPOINT)

    async def _active(self) -> bool:
        """Whether to publish now; a newly won lease first resumes from the checkpoint its last holder wrote."""
        if self.lease is None:
            return True
        if not self.lease.held():
            self.active_token = None
            return False
        if self.active_token != self.lease.token:
            self.cursor = await self.store.load_checkpoint(CHECKPOINT)
            self.active_token = self.lease.token
            self.check_needed = True
        return True

    async def _check_feed(self) -> None:
        """Resume after the last log event the stream holds in place, republishing whatever it lost."""
        await ensure_events_stream(self.js, self.settings)  # recreated if someone deleted it
        # Read before the scan: a message stored after this (by anyone) makes our next publish fail and
        # the check run again, never a publish at a sequence the scan did not account for.
        last_sequence = (await self.js.stream_info(self.settings.events_stream)).state.last_seq
        resume, deleted = await check_and_repair(self.store, self.js, self.settings)
        checkpoint = await self.store.load_checkpoint(CHECKPOINT)
        if deleted or resume < checkpoint:
            self.repairs += 1
            self.msg_id_suffix = f":r{time.time_ns()}"
            log.warning("republishing SCHED_EVENTS from log position %d (the stream lost events)", resume.position)
        self.cursor = resume
        self.last_sequence = last_sequence
        self.check_needed = False

    async def publish_batch(self) -> int:
        """Publish the next batch (when active); return how many events it held."""
        if not await self._active():
            return 0
        if self.check_needed or self.last_sequence is None:
            await self._check_feed()
        events = await self.store.read_all(self.cursor, self.batch_size)
        if not events or not await self._active():
            return 0
        await self.publish(events)
        async with self.store.pool.acquire() as conn, conn.transaction():
            if self.lease is not None:
                await self.lease.fence(conn)
            await self.store.save_checkpoint(CHECKPOINT, events[-1].cursor, conn)
        self.cursor = events[-1].cursor
        return len(events)

    async def publish(self, events: list[RecordedEvent]) -> None:
        """Publish `events` (the log after our cursor), each fenced by the stream sequence it must follow."""
        prefix, base = self.settings.events_subject_prefix, self.last_sequence
        assert base is not None
        self.last_sequence = None  # unknown until every publish is acknowledged in place
        # One connection keeps publish order, so pipelining keeps the stream in log order.
        acks = await asyncio.gather(*[
            self.js.publish(f"{prefix}.{aggregate_of(e.stream_id)}.{e.type}", envelope_of(e),
                            headers={"Nats-Msg-Id": e.id + self.msg_id_suffix, POSITION_HEADER: str(e.position),
                                     EXPECTED_LAST_SEQUENCE: str(base + i)},
                            timeout=10)
            for i, e in enumerate(events)
        ], return_exceptions=True)
        for i, ack in enumerate(acks):
            if isinstance(ack, BaseException):
                self.check_needed = True
                if isinstance(ack, nats.js.errors.BadRequestError) and ack.err_code == WRONG_LAST_SEQUENCE:
                    raise FeedOutOfStep(f"event at log position {events[i].position} refused: {ack.description}")
                raise ack
            if ack.duplicate or ack.seq != base + i + 1:
                self.check_needed = True
                raise FeedOutOfStep(f"event at log position {events[i].position} acknowledged as stream sequence "
                                    f"{ack.seq}{' (duplicate)' if ack.duplicate else ''}, expected {base + i + 1}")
        self.last_sequence = base + len(events)

    async def run(self, stop: asyncio.Event, idle_sleep: float = 0.01, appended: Appended | None = None) -> None:
        """Publish until `stop` is set; when caught up, rest until an append wakes it (`appended`) or poll."""
        waiter = appended.waiter(idle_sleep) if appended is not None else None
        while not stop.is_set():
            if waiter is not None:
                waiter.arm()
            try:
                published = await self.publish_batch()
            except LeaseLost:
                log.warning("relay lost its lease; standing by")
                published = 0
            except FeedOutOfStep as exc:
                log.warning("SCHED_EVENTS moved under this relay (%s); checking the feed again", exc)
                self.check_needed = True
                published = 0
            except Exception:  # the broker or the database is away: keep the checkpoint and retry
                log.exception("relay batch failed; retrying")
                self.check_needed = True  # the stream itself may be gone
                published = 0
                await asyncio.sleep(0.5)
            if published < self.batch_size:
                if self.lease is not None and not self.lease.held():
                    await sleep_unless_stopped(stop, 0.2)
                elif waiter is not None:
                    await waiter.rest(published > 0)
                else:
                    await sleep_unless_stopped(stop, idle_sleep)

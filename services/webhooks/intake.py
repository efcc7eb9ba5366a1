"""The intake: a durable JetStream consumer of SCHED_EVENTS that turns events into outbox rows.

Each fetched batch is handled in one Postgres transaction, fenced by the dispatcher's lease: webhook
events update the subscriptions, deliverable events become one pending delivery per subscribed
webhook (payload built now, from the event store), and the batch's last stream sequence and last
log event are saved as the intake position. Only after that commit are the messages acknowledged,
so a dispatcher killed at any point loses nothing: the deliveries are in Postgres, or the messages
are read again.

Order matters more than acks here: JetStream redelivers an unacknowledged message only after its
ack wait, by which time later messages may have been handled. So the intake position, not the
consumer's ack state, says where to resume: at the start of each term the consumer is created to
begin right after it, and a message at or below it (a redelivery) is skipped.

Ordering guarantee. Each webhook receives its deliveries in log order (the commit order the relay
publishes in), one at a time, each at least once; a delivery interrupted between its POST and its
recorded outcome is sent again, before anything later. This holds when the feed fails too. The
relay republishes an event the stream lost *after* later events the intake may already have
handled, so the stream alone cannot give log order; the log can. The intake keeps a high-water
mark in the log (the last event it handled, in commit order) and compares every batch with the log:

- an event of the log between the high-water mark and a message of the batch that the batch lacks
  was lost by the stream: it is read from the log and handled in its place, before that message;
- a message at or below the high-water mark (the republished copy of such an event, or the whole
  feed again after the stream was recreated) was handled already: it is skipped.

Deliveries are also unique per (webhook, event id), so even a reader that lost its high-water mark
queues nothing twice. Precisely, then: for each webhook, the *first* arrival of each delivery is in
log order and none is missing. A repeat may come later than that: the re-send of an interrupted
attempt, or, at worst, the one POST a dispatcher had passed its lease check for when it was paused
(the new holder has sent that delivery, in order, meanwhile). A lost tail (the newest events) waits
until the relay republishes it, in order, as nothing later arrives first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import asyncpg
import msgspec
import nats
from nats.js import JetStreamContext

from services.webhooks import outbox
from services.webhooks.payloads import resource_payload, webhook_body, webhook_type
from shared import calendly
from shared.domain.core import account_stream
from shared.domain.link_bookings import event_resource
from shared.domain.registry import stream_kind
from shared.domain.webhooks import CALENDLY_TYPE_OF
from shared.eventstore import LogCursor, RecordedEvent
from shared.feed import Envelope, ensure_events_stream, envelope_of, stream_incarnation, term_consumer
from shared.lease import Lease
from shared.messages.events import (
    EventRescheduled,
    WebhookCreated,
    WebhookDeleted,
    WebhookSecretRotated,
    decode_event,
)
from shared.settings import Settings

log = logging.getLogger("sched.webhooks.intake")

CONSUMER = "webhooks"
# The log's cursor of each message's event, and the log between the high-water mark and the batch's newest event.
_CURSORS = "select position, tx_id::text::bigint from events where position = any($1::bigint[])"
_BETWEEN = ("select position from events where (tx_id, position) > ($1::text::xid8, $2)"
            " and (tx_id, position) <= ($3::text::xid8, $4) order by events.tx_id, events.position")
_EVENTS = ("select position, id, stream_id, version, type, account_id, data, occurred_at, tx_id::text::bigint"
           " from events where position = any($1::bigint[])")
_WEBHOOK_EVENTS = {"webhook_created", "webhook_secret_rotated", "webhook_deleted"}
_envelope = msgspec.json.Decoder(Envelope)


class StreamStates:
    """Folded states of recently delivered streams, so each event of a long stream is not a full replay.

    The log is append-only, so a stream's state at a version never changes: a cached state stays
    right whatever happens to the transaction that used it.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._states: OrderedDict[str, tuple[int, Any]] = OrderedDict()

    async def before(self, conn: asyncpg.Connection, stream_id: str, version: int) -> Any:
        """The stream's state just before `version`: the cached state plus the events since."""
        kind = stream_kind(stream_id)
        known, state = self._states.get(stream_id) or (0, kind.state_type())
        if known >= version:
            known, state = 0, kind.state_type()
        if known < version - 1:
            rows = await conn.fetch("select data from events where stream_id = $1 and version > $2 and version < $3"
                                    " order by version", stream_id, known, version)
            state = kind.fold(state, [decode_event(row["data"]) for row in rows])
        return state

    def remember(self, stream_id: str, version: int, state: Any) -> None:
        """Keep `state` as the stream's state at `version` (the least recently used is dropped when full)."""
        self._states[stream_id] = (version, state)
        self._states.move_to_end(stream_id)
        while len(self._states) > self.capacity:
            self._states.popitem(last=False)


class Intake:
    """Reads SCHED_EVENTS in stream order into the outbox; `on_enqueued` hears which webhooks got work."""

    def __init__(self, pool: asyncpg.Pool, js: JetStreamContext, settings: Settings,
                 on_enqueued: Callable[[set[str]], None], batch: int = 500, lease: Lease | None = None) -> None:
        self.pool = pool
        self.lease = lease
        self.js = js
        self.settings = settings
        self.on_enqueued = on_enqueued
        self.batch = batch
        # Payload URIs use the configured public base (the gateway's), never a bind address of its own.
        self.public_url = settings.public_url
        self.calendly_url = calendly.api_url(settings.public_url)
        self._scopes: dict[str, WebhookCreated] = {}
        self.position = 0
        self.high_water: LogCursor | None = None
        self.filled = 0  # events the stream lost, taken from the log in their place
        self.skipped = 0  # messages at or below the high-water mark (republished copies)
        self.states = StreamStates()
        self._sub: JetStreamContext.PullSubscription | None = None

    async def start(self) -> None:
        """(Re)create this term's durable consumer right after the committed intake position."""
        stream = self.settings.events_stream
        await ensure_events_stream(self.js, self.settings)
        state = await outbox.intake_state(self.pool, stream)
        self.position, self.high_water = state.sequence, state.high_water
        created = await stream_incarnation(self.js, self.settings)
        if state.stream_created != created:
            # A rebuilt stream (the relay republished the log into it) numbers from 1 again: read it from the
            # start; what is at or below the high-water mark is skipped, and deliveries are unique per
            # (webhook, event id), so nothing is sent twice.
            if state.stream_created is not None:
                log.warning("SCHED_EVENTS was recreated; the intake reads it again from the start")
                self.position = 0
            await outbox.restart_intake(self.pool, stream, created, self.position, self.lease)
        await self._drop_subscription()  # until a new one is made, `run` knows to start again
        token = self.lease.token if self.lease is not None else None
        self._sub = await term_consumer(self.js, self.settings, CONSUMER, token, self.position)

    async def _drop_subscription(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):  # the server may be away: the subscription is gone anyway
                await sub.unsubscribe()

    async def stop(self) -> None:
        """Drop the subscription to the consumer (the consumer itself stays)."""
        await self._drop_subscription()

    async def step(self, wait: float = 1.0) -> int:
        """Handle the next batch (waiting up to `wait` for one); return how many messages it held."""
        assert self._sub is not None
        try:
            messages = await self._sub.fetch(1, timeout=wait)  # returns as soon as one is there
        except (TimeoutError, nats.errors.TimeoutError):
            return 0
        if self.batch > 1:
            # and whatever else is already waiting, without lingering for a full batch
            with contextlib.suppress(TimeoutError, nats.errors.TimeoutError):
                messages += await self._sub.fetch(self.batch - 1, timeout=0.005)
        woken: set[str] = set()
        fresh = [(m.metadata.sequence.stream, _envelope.decode(m.data)) for m in messages
                 if m.metadata.sequence.stream > self.position]  # the rest: redeliveries of what is committed
        async with self.pool.acquire() as conn, conn.transaction():
            if self.lease is not None:
                await self.lease.fence(conn)
            in_order, high_water = await self._in_log_order(conn, [envelope for _, envelope in fresh])
            for envelope in in_order:
                woken |= await self._handle(conn, envelope)
            last = max((sequence for sequence, _ in fresh), default=self.position)
            if last > self.position:
                await outbox.save_intake_position(conn, self.settings.events_stream, last,
                                                  high_water or self.high_water or LogCursor())
        self.position, self.high_water = last, high_water or self.high_water
        await messages[-1].ack()  # AckPolicy.ALL: acknowledges the whole batch
        if woken:
            self.on_enqueued(woken)
        return len(messages)

    async def _in_log_order(self, conn: asyncpg.Connection,
                            envelopes: list[Envelope]) -> tuple[list[Envelope], LogCursor | None]:
        """The events to handle for these messages, in log order: the stream's losses filled in from the log,
        copies at or below the high-water mark left out; and the new high-water mark (None: unchanged)."""
        if not envelopes:
            return [], None
        cursors = {row[0]: LogCursor(row[1], row[0])
                   for row in await conn.fetch(_CURSORS, [e.position for e in envelopes])}
        floor = self.high_water
        if floor is None:  # the first batch ever: it starts where the stream starts
            first = min(cursors.values(), default=LogCursor())
            floor = LogCursor(first.tx_id, first.position - 1)
        new = {e.position: e for e in envelopes if e.position in cursors and cursors[e.position] > floor}
        self.skipped += len(envelopes) - len(new)
        if not new:
            return [], None
        top = max(cursors[p] for p in new)
        between = [row[0] for row in await conn.fetch(_BETWEEN, str(floor.tx_id), floor.position,
                                                      str(top.tx_id), top.position)]
        lost = [p for p in between if p not in new]
        if lost:
            log.warning("SCHED_EVENTS lacks %d log events before position %d: delivering them from the log, in order",
                        len(lost), top.position)
            rows = await conn.fetch(_EVENTS, lost)
            for row in rows:
                new[row[0]] = _envelope.decode(envelope_of(RecordedEvent(*row)))
            self.filled += len(rows)
        return [new[p] for p in between if p in new], top

    async def _handle(self, conn: asyncpg.Connection, envelope: Envelope) -> set[str]:
        """Apply one event; return the webhooks whose senders must look again (new work, or changed)."""
        if envelope.type in _WEBHOOK_EVENTS:
            event = decode_event(envelope.data)
            assert isinstance(event, WebhookCreated | WebhookSecretRotated | WebhookDeleted)
            await outbox.apply_webhook_event(conn, envelope.version, event)
            return {event.webhook_id}  # its sender reloads the webhook: a new secret, or stop
        woken = await self._calendly(conn, envelope) if envelope.type in CALENDLY_TYPE_OF else set()
        return woken | await self._savvycal(conn, envelope)

    async def _savvycal(self, conn: asyncpg.Connection, envelope: Envelope) -> set[str]:
        """Deliveries of the SavvyCal-shaped webhooks."""
        kind = webhook_type(envelope.type)
        if kind is None:
            return set()
        webhook_ids = await outbox.subscribers(conn, envelope.account_id, kind)
        if not webhook_ids:
            return set()
        event = decode_event(envelope.data)
        before = await self.states.before(conn, envelope.stream_id, envelope.version)
        try:
            payload = resource_payload(envelope.stream_id, before, event, envelope.occurred_at, self.public_url,
                                       self.settings.signing_secret)
        except Exception:  # a bug must not stall every webhook behind one event: log it and move on
            log.exception("cannot build the webhook payload of event %s (%s); not delivered",
                          envelope.id, envelope.type)
            return set()
        self.states.remember(envelope.stream_id, envelope.version, stream_kind(envelope.stream_id).fold(before, [event]))
        body = webhook_body(kind, envelope.id, envelope.version, envelope.occurred_at, payload)
        await outbox.enqueue(conn, webhook_ids, envelope.id, kind, body)
        return set(webhook_ids)

    async def _subscription(self, conn: asyncpg.Connection, webhook_id: str) -> WebhookCreated | None:
        """The event that created a webhook: its scope never changes, so it is read once."""
        if webhook_id not in self._scopes:
            data = await conn.fetchval("select data from events where stream_id = $1 and version = 1",
                                       f"whk-{webhook_id}")
            created = decode_event(data) if data is not None else None
            if not isinstance(created, WebhookCreated):
                return None
            self._scopes[webhook_id] = created
        return self._scopes[webhook_id]

    async def _calendly(self, conn: asyncpg.Connection, envelope: Envelope) -> set[str]:
        """Deliveries of Calendly webhook subscriptions: `invitee.*` with Calendly's payload, per scope.

        A reschedule is delivered as Calendly delivers one: `invitee.canceled` of the event as it was
        (`rescheduled: true`), then `invitee.created` of the event as it is now.
        """
        kinds = CALENDLY_TYPE_OF[envelope.type]
        subscribed = {kind: await outbox.subscribers(conn, envelope.account_id, kind) for kind in kinds}
        if not any(subscribed.values()):
            return set()
        event = decode_event(envelope.data)
        before = await self.states.before(conn, envelope.stream_id, envelope.version)
        state = stream_kind(envelope.stream_id).fold(before, [event])
        if state.created is None:
            return set()
        rows = await conn.fetch("select data from events where stream_id = $1 order by version",
                                account_stream(envelope.account_id))
        account_kind = stream_kind(account_stream(envelope.account_id))
        account = account_kind.fold(account_kind.state_type(), [decode_event(r["data"]) for r in rows])
        owners = {u.provider_id: (u.user_id, u.name, u.email) for u in account.users.values()}
        woken: set[str] = set()
        for kind, webhook_ids in subscribed.items():
            shown, rescheduled = state, False
            if isinstance(event, EventRescheduled) and kind == "invitee.canceled":
                shown = calendly.rescheduled_away(before, event.rescheduled_at, event.reschedule_reason)
                rescheduled = True
            resource = event_resource(shown, self.public_url, self.settings.signing_secret)
            # one delivery per (webhook, event id): the two of a reschedule are told apart by their type
            delivery_id = f"{envelope.id}:{kind}" if len(kinds) > 1 else envelope.id
            for webhook_id in webhook_ids:
                created = await self._subscription(conn, webhook_id)
                if created is None or (created.scope == "user"
                                       and created.scope_provider_id not in state.created.provider_ids):
                    continue
                creator = f"{self.calendly_url}/users/{created.creator_user_id}" if created.creator_user_id else None
                payload = calendly.webhook_payload(kind, self.calendly_url, shown, owners, envelope.occurred_at,
                                                   creator, resource, rescheduled)
                await outbox.enqueue(conn, [webhook_id], delivery_id, kind, msgspec.json.encode(payload))
                woken.add(webhook_id)
        return woken

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the stream until `stop` is set; after an error, resume from the committed position."""
        while not stop.is_set():
            try:
                if self._sub is None:  # a restart failed half-way (NATS away): start again before reading
                    await self.start()
                await self.step()
            except Exception:
                log.exception("webhook intake failed; resuming from the committed position")
                await asyncio.sleep(0.5)
                try:
                    await self.start()
                except Exception:
                    log.exception("cannot restart the webhook intake yet")

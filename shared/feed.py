"""The event feed's contract: the JetStream stream SCHED_EVENTS, its subjects and its envelope.

The relay publishes it; the webhook dispatcher and other consumers read it (DESIGN.md section 4).
"""

from __future__ import annotations

import contextlib

import msgspec
import nats
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig

from shared.eventstore import RecordedEvent
from shared.settings import Settings

# JetStream drops a re-published Nats-Msg-Id inside this window: a relay that dies after publishing
# but before saving its checkpoint republishes the same ids on restart, and they are not stored twice.
DUPLICATE_WINDOW_SECONDS = 24 * 3600
# A term's consumer left behind (its holder died before the next term deleted it) goes after this long unused.
CONSUMER_INACTIVE_SECONDS = 600


class Envelope(msgspec.Struct, frozen=True):
    """The body of every message on SCHED_EVENTS (DESIGN.md section 4)."""

    id: str
    type: str
    stream_id: str
    version: int
    position: int
    occurred_at: str
    account_id: str
    data: msgspec.Raw


_encoder = msgspec.json.Encoder()


def aggregate_of(stream_id: str) -> str:
    """`provider-prov_01..` -> `provider`."""
    return stream_id.split("-", 1)[0]


def envelope_of(event: RecordedEvent) -> bytes:
    """The JSON envelope of one recorded event."""
    return _encoder.encode(Envelope(
        id=event.id, type=event.type, stream_id=event.stream_id, version=event.version, position=event.position,
        occurred_at=event.occurred_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), account_id=event.account_id,
        data=msgspec.Raw(event.data),
    ))


async def ensure_events_stream(js: JetStreamContext, settings: Settings) -> None:
    """Create SCHED_EVENTS (or the configured name) if it does not exist yet."""
    config = StreamConfig(
        name=settings.events_stream, subjects=[f"{settings.events_subject_prefix}.>"],
        duplicate_window=DUPLICATE_WINDOW_SECONDS, num_replicas=settings.events_replicas,
    )
    try:
        await js.stream_info(settings.events_stream)
    except nats.js.errors.NotFoundError:
        await js.add_stream(config)


async def stream_incarnation(js: JetStreamContext, settings: Settings) -> str:
    """The creation time of SCHED_EVENTS: a stream deleted and rebuilt by the relay's repair has a new one."""
    return str((await js.stream_info(settings.events_stream)).created)


async def term_consumer(js: JetStreamContext, settings: Settings, base: str, token: int | None,
                        start_after: int) -> JetStreamContext.PullSubscription:
    """A durable pull consumer of the whole feed from stream sequence `start_after + 1`, for one lease term.

    Each term of a single-active reader has its own consumer (`base-<token>`): a holder paused past its
    lease keeps its pull requests open on its own consumer only, so when it resumes it can take no
    message from the new holder's (a message handed to it would wait out the ack wait, or be skipped
    by the new holder's acknowledgements). The previous term's consumer is deleted here.
    """
    stream = settings.events_stream
    name = base if token is None else f"{base}-{token}"
    stale = {base, name} | ({f"{base}-{token - 1}"} if token else set())
    for consumer in stale:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_consumer(stream, consumer)
    await js.add_consumer(stream, ConsumerConfig(
        durable_name=name, deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start_after + 1,
        ack_policy=AckPolicy.ALL, ack_wait=60, max_ack_pending=100_000, inactive_threshold=CONSUMER_INACTIVE_SECONDS,
        filter_subject=f"{settings.events_subject_prefix}.>"))
    return await js.pull_subscribe_bind(durable=name, stream=stream)

"""The event feed's contract: the JetStream stream SCHED_EVENTS, its subjects and its envelope.

The relay publishes it; the webhook dispatcher and other consumers read it (DESIGN.md section 4).
"""

from __future__ import annotations

import msgspec
import nats
from nats.js import JetStreamContext
from nats.js.api import StreamConfig

from shared.eventstore import RecordedEvent
from shared.settings import Settings

# JetStream drops a re-published Nats-Msg-Id inside this window: a relay that dies after publishing
# but before saving its checkpoint republishes the same ids on restart, and they are not stored twice.
DUPLICATE_WINDOW_SECONDS = 24 * 3600


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

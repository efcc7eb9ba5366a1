"""The log is the truth, SCHED_EVENTS a derived feed: check the stream against the log and repair it.

A PubAck is not durability (Jepsen, NATS 2.12.1: acknowledged messages lost at the tail and
mid-stream after power loss or file corruption). Every message carries its log position in the
`Sched-Position` header, so the relay can compare the stream, message by message, with the log in
its commit order (the order it publishes in). At the first difference (a message lost, or the whole
stream gone) it deletes every message after that point and republishes the log from there, so the
stream again holds every event once, in log order. Consumers deduplicate by event id.
"""

from __future__ import annotations

import contextlib
import logging

import nats
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from shared.eventstore import EventStore, LogCursor
from shared.settings import Settings

log = logging.getLogger("sched.relay")

POSITION_HEADER = "Sched-Position"
MAX_QUIET_FETCHES = 10  # 2 s each: a stream that answers nothing for 20 s is checked again later


class FeedScanIncomplete(Exception):
    """The stream could not be read to its end: the check is retried, nothing is republished meanwhile."""


async def streamed_positions(js: JetStreamContext, settings: Settings) -> list[tuple[int, int]]:
    """(stream sequence, log position) of every message in the stream, in stream order ([] without a stream)."""
    try:
        info = await js.stream_info(settings.events_stream)
    except nats.js.errors.NotFoundError:
        return []
    if not info.state.messages:
        return []
    sub = await js.pull_subscribe(
        f"{settings.events_subject_prefix}.>", durable=None, stream=settings.events_stream,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.ALL, headers_only=True,
                              max_ack_pending=-1, inactive_threshold=60))
    found: list[tuple[int, int]] = []
    expected, quiet = info.state.messages, 0
    try:
        while len(found) < expected:
            try:
                batch = await sub.fetch(1000, timeout=2)
            except (TimeoutError, nats.errors.TimeoutError):
                # Either messages were deleted since the count (the stream now holds no more than we
                # read), or the server is slow (a leader just moved): only the first ends the scan. A
                # scan cut short would look like a lost tail and republish what the stream still holds.
                expected = min(expected, (await js.stream_info(settings.events_stream)).state.messages)
                quiet += 1
                if len(found) < expected and quiet >= MAX_QUIET_FETCHES:
                    raise FeedScanIncomplete(f"read {len(found)} of {expected} messages of {settings.events_stream}")
                continue
            quiet = 0
            for message in batch:
                header = (message.headers or {}).get(POSITION_HEADER, "0")
                found.append((message.metadata.sequence.stream, int(header) if header.isdigit() else 0))
            await batch[-1].ack()
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    return found


async def check_and_repair(store: EventStore, js: JetStreamContext, settings: Settings) -> tuple[LogCursor, int]:
    """Compare the stream with the log; delete what follows the first difference.

    Returns the cursor to publish after (the last log event the stream holds in place) and how many
    messages were deleted (0 when the stream was intact, or merely behind).
    """
    streamed = await streamed_positions(js, settings)
    logged = await store.pool.fetch(
        "select tx_id::text::bigint, position from events where tx_id < pg_snapshot_xmin(pg_current_snapshot())"
        " order by events.tx_id, events.position limit $1", len(streamed) + 1)
    same = 0
    while same < len(streamed) and same < len(logged) and streamed[same][1] == logged[same][1]:
        same += 1
    resume = LogCursor(logged[same - 1][0], logged[same - 1][1]) if same else LogCursor()
    extra = streamed[same:]
    if extra:
        log.warning("SCHED_EVENTS differs from the log after %d events: deleting %d messages and republishing",
                    same, len(extra))
        for sequence, _ in extra:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.delete_msg(settings.events_stream, sequence)
    return resume, len(extra)

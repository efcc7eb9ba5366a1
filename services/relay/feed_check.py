"""The log is the truth, SCHED_EVENTS a derived feed: check the stream against the log and repair it.

A PubAck is not durability (Jepsen, NATS 2.12.1: acknowledged messages lost at the tail and
mid-stream after power loss or file corruption). Every message carries its log position in the
`Sched-Position` header, so the relay can compare the stream, message by message, with the log in
its commit order (the order it publishes in). At the first difference (a message lost, or the whole
stream gone) it deletes every message after that point and republishes the log from there, so the
stream again holds every event once, in log order. Consumers deduplicate by event id.

The check is incremental: it remembers (in `feed_verified`) the last message it found in place, and
the next check (a restart, a takeover, a reconnect) reads only the messages after it. What lies before
the point is checked whole but cheaply: the stream must still count exactly as many messages up to the
point as the log has events there (a message lost before it lowers the count), and the message at the
point must still carry its log position (a deleted and recreated stream does not). When either
disagrees, the check reads the whole stream, as it did before.
"""

from __future__ import annotations

import contextlib
import logging
from typing import NamedTuple

import asyncpg
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


class VerifiedPoint(NamedTuple):
    """The stream held the log in order up to message `sequence`: the `held`-th log event, at `cursor`."""

    sequence: int = 0
    cursor: LogCursor = LogCursor()
    held: int = 0


WHOLE_STREAM = VerifiedPoint()  # nothing verified yet: read from the first message


async def streamed_positions(js: JetStreamContext, settings: Settings,
                             after: VerifiedPoint = WHOLE_STREAM) -> list[tuple[int, int]]:
    """(stream sequence, log position) of every message after `after` (by default all of them), in stream
    order ([] without a stream)."""
    try:
        info = await js.stream_info(settings.events_stream)
    except nats.js.errors.NotFoundError:
        return []
    if info.state.messages <= after.held:
        return []
    sub = await js.pull_subscribe(
        f"{settings.events_subject_prefix}.>", durable=None, stream=settings.events_stream,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after.sequence + 1,
                              ack_policy=AckPolicy.ALL, headers_only=True, max_ack_pending=-1,
                              inactive_threshold=60))
    found: list[tuple[int, int]] = []
    expected, quiet = info.state.messages - after.held, 0
    try:
        while len(found) < expected:
            try:
                batch = await sub.fetch(1000, timeout=2)
            except (TimeoutError, nats.errors.TimeoutError):
                # Either messages were deleted since the count (the stream now holds no more than we
                # read), or the server is slow (a leader just moved): only the first ends the scan. A
                # scan cut short would look like a lost tail and republish what the stream still holds.
                expected = min(expected,
                               (await js.stream_info(settings.events_stream)).state.messages - after.held)
                quiet += 1
                if len(found) < expected and quiet >= MAX_QUIET_FETCHES:
                    raise FeedScanIncomplete(f"read {len(found)} of {expected} messages of {settings.events_stream}")
                continue
            quiet = 0
            for message in batch:
                header = (message.headers or {}).get(POSITION_HEADER, "0")
                found.append((message.metadata.sequence.stream, _position(header)))
            await batch[-1].ack()
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    return found


async def check_and_repair(store: EventStore, js: JetStreamContext, settings: Settings) -> tuple[LogCursor, int]:
    """Compare the stream with the log; delete what follows the first difference.

    Returns the cursor to publish after (the last log event the stream holds in place) and how many
    messages were deleted (0 when the stream was intact, or merely behind). Reads the stream only after
    the last verified point when the cheap whole-stream checks agree with it, else all of it.
    """
    point = await _trusted_point(store.pool, js, settings)
    streamed = await streamed_positions(js, settings, point)
    logged = await store.pool.fetch(
        "select tx_id::text::bigint, position from events"
        " where (tx_id, position) > ($1::text::xid8, $2) and tx_id < pg_snapshot_xmin(pg_current_snapshot())"
        " order by events.tx_id, events.position limit $3", str(point.cursor.tx_id), point.cursor.position,
        len(streamed) + 1)
    same = 0
    while same < len(streamed) and same < len(logged) and streamed[same][1] == logged[same][1]:
        same += 1
    if same:
        point = VerifiedPoint(streamed[same - 1][0], LogCursor(logged[same - 1][0], logged[same - 1][1]),
                              point.held + same)
    extra = streamed[same:]
    if extra:
        log.warning("SCHED_EVENTS differs from the log after %d events: deleting %d messages and republishing",
                    point.held, len(extra))
        for sequence, _ in extra:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.delete_msg(settings.events_stream, sequence)
    await _remember(store.pool, settings, point)
    return point.cursor, len(extra)


async def _trusted_point(pool: asyncpg.Pool, js: JetStreamContext, settings: Settings) -> VerifiedPoint:
    """The remembered verified point when the stream still agrees with it; else the start (a full scan).

    Sequences only grow, so nothing is ever added before the point: the stream still holds the log up to
    it when the point's message is still there with its position and the messages up to it still number
    `held` (a message lost before it lowers the count; a recreated stream fails both).
    """
    row = await pool.fetchrow("select sequence, tx_id::text::bigint, position, held from feed_verified"
                              " where stream = $1", settings.events_stream)
    if row is None or not row["held"]:
        return WHOLE_STREAM
    point = VerifiedPoint(row["sequence"], LogCursor(row["tx_id"], row["position"]), row["held"])
    try:
        info = await js.stream_info(settings.events_stream)
        message = await js.get_msg(settings.events_stream, seq=point.sequence)
    except nats.js.errors.NotFoundError:
        return _distrusted(settings, "its last verified message is gone")
    if info.state.messages < point.held or info.state.last_seq < point.sequence:
        return _distrusted(settings, "it holds fewer messages than it did")
    if _position((message.headers or {}).get(POSITION_HEADER, "0")) != point.cursor.position:
        return _distrusted(settings, "its last verified message changed")
    if await _count_before(js, settings, point) != point.held:
        return _distrusted(settings, "it lost messages before its last verified point")
    return point


async def _count_before(js: JetStreamContext, settings: Settings, point: VerifiedPoint) -> int:
    """How many messages the stream holds up to the point's sequence: all of them minus those after it.

    A consumer starting after the point reports how many messages it has pending: no message is read.
    """
    info = await js.stream_info(settings.events_stream)
    if info.state.last_seq <= point.sequence:
        return int(info.state.messages)
    sub = await js.pull_subscribe(
        f"{settings.events_subject_prefix}.>", durable=None, stream=settings.events_stream,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=point.sequence + 1,
                              ack_policy=AckPolicy.ALL, headers_only=True, inactive_threshold=60))
    try:
        pending = (await sub.consumer_info()).num_pending
        messages = (await js.stream_info(settings.events_stream)).state.messages
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    return int(messages) - int(pending or 0)


def _distrusted(settings: Settings, why: str) -> VerifiedPoint:
    log.warning("%s: %s; checking the whole stream", settings.events_stream, why)
    return WHOLE_STREAM


async def _remember(pool: asyncpg.Pool, settings: Settings, point: VerifiedPoint) -> None:
    """Store the point the next check starts from (a stale one, from a relay paused past its lease, is harmless:
    `_trusted_point` refuses any point the stream no longer agrees with)."""
    await pool.execute(
        "insert into feed_verified (stream, sequence, tx_id, position, held) values ($1, $2, $3::text::xid8, $4, $5)"
        " on conflict (stream) do update set sequence = $2, tx_id = $3::text::xid8, position = $4, held = $5,"
        " verified_at = now()", settings.events_stream, point.sequence, str(point.cursor.tx_id),
        point.cursor.position, point.held)


def _position(header: str) -> int:
    return int(header) if header.isdigit() else 0

"""The log is the truth: messages deleted from SCHED_EVENTS, or the whole stream, come back in log order."""

from __future__ import annotations

import asyncio

import msgspec
import nats
import pytest

from services.relay import feed_check
from services.relay.app import bootstrap as relay_bootstrap
from services.relay.feed_check import check_and_repair
from shared.eventstore import EventStore, LogCursor
from shared.settings import Settings
from tests.integration.test_relay import append_many, wait_for

pytestmark = pytest.mark.integration

PATIENCE = 120.0


async def stream_ids(js: nats.js.JetStreamContext, settings: Settings) -> list[str]:
    """The event ids SCHED_EVENTS holds, in stream order."""
    try:
        info = await js.stream_info(settings.events_stream)
    except nats.js.errors.NotFoundError:
        return []
    if not info.state.messages:
        return []
    sub = await js.pull_subscribe(f"{settings.events_subject_prefix}.>", durable=None, stream=settings.events_stream)
    ids: list[str] = []
    while len(ids) < info.state.messages:
        try:
            batch = await sub.fetch(500, timeout=1)
        except (TimeoutError, nats.errors.TimeoutError):
            break
        for message in batch:
            ids.append(msgspec.json.decode(message.data)["id"])
            assert (message.headers or {}).get("Sched-Position", "").isdigit()
            await message.ack()
    await sub.unsubscribe()
    return ids


async def test_the_relay_restores_deleted_messages_and_a_deleted_stream_in_log_order(
    store: EventStore, nc: nats.NATS, settings: Settings
) -> None:
    """Delete messages mid-stream and at the tail, then the whole stream: each time the feed equals the log again."""
    js = nc.jetstream()
    await append_many(store, 300)
    logged = [e.id for e in await store.read_all(LogCursor(), limit=100_000)]

    async def feed_is_log() -> bool:
        return await stream_ids(js, settings) == [e.id for e in await store.read_all(LogCursor(), limit=100_000)]

    async with relay_bootstrap(settings) as relay:
        await wait_for(feed_is_log, timeout=PATIENCE)
        for sequence in (50, 51, 52, 200, 300):  # mid-stream and the tail
            await js.delete_msg(settings.events_stream, sequence)
        assert await stream_ids(js, settings) != logged
        relay.request_check()  # what a reconnect does; a restart checks too
        await wait_for(feed_is_log, timeout=PATIENCE)
        assert relay.repairs == 1

        await js.delete_stream(settings.events_stream)
        await append_many(store, 20)  # a failed publish makes the relay check the stream
        await wait_for(feed_is_log, timeout=PATIENCE)
        assert relay.repairs == 2
    await asyncio.sleep(0)



async def test_the_feed_check_reads_only_past_its_last_verified_point_and_still_finds_every_loss(
    store: EventStore, nc: nats.NATS, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An intact stream is read from its verified point on; a loss before the point (caught by the count) or
    after it (caught by the read), also after a repair, is found and repaired."""
    js = nc.jetstream()
    scanned_from: list[int] = []
    read_after = feed_check.streamed_positions

    async def spy(js: nats.js.JetStreamContext, settings: Settings,
                  after: feed_check.VerifiedPoint = feed_check.WHOLE_STREAM) -> list[tuple[int, int]]:
        scanned_from.append(after.sequence)
        return await read_after(js, settings, after)

    async def feed_is_log() -> bool:
        return await stream_ids(js, settings) == [e.id for e in await store.read_all(LogCursor(), limit=100_000)]

    async def publish_all() -> None:
        async with relay_bootstrap(settings):
            await wait_for(feed_is_log, timeout=PATIENCE)

    async def log_cursor(index: int) -> LogCursor:
        return (await store.read_all(LogCursor(), limit=100_000))[index].cursor

    await append_many(store, 300)
    await publish_all()
    monkeypatch.setattr(feed_check, "streamed_positions", spy)
    assert await check_and_repair(store, js, settings) == (await log_cursor(-1), 0)
    assert await check_and_repair(store, js, settings) == (await log_cursor(-1), 0)
    assert scanned_from == [0, 300]  # the first check read it all, the second nothing before its point

    await js.delete_msg(settings.events_stream, 40)  # before the verified point: the count shows it
    assert await check_and_repair(store, js, settings) == (await log_cursor(38), 300 - 40)
    assert scanned_from[-1] == 0  # the point was not trusted: the whole stream was read
    await publish_all()  # the relay republishes from the 39th event on

    await append_many(store, 50)
    await publish_all()  # its check at start verified the republished messages: the point is now past them
    last = (await js.stream_info(settings.events_stream)).state.last_seq
    await js.delete_msg(settings.events_stream, last - 10)  # after the point, among the 50 newer messages
    assert await check_and_repair(store, js, settings) == (await log_cursor(338), 10)
    assert scanned_from[-1] == 300 + (300 - 39)  # read from the repaired stream's point on, and found the loss
    await publish_all()
    assert await feed_is_log()

"""The relay as a real process: killed with SIGKILL mid-stream, restarted, nothing lost or doubled."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import msgspec
import nats
import pytest

from shared.eventstore import EventStore, LogCursor, NewEvent, StreamAppend
from shared.ids import new_id
from shared.settings import Settings

pytestmark = pytest.mark.integration

TOTAL = 3000


def start_relay(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "services.relay"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


async def stream_count(js: nats.js.JetStreamContext, name: str) -> int:
    try:
        return int((await js.stream_info(name)).state.messages)
    except nats.js.errors.NotFoundError:
        return 0


async def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def append_many(store: EventStore, count: int) -> None:
    for start in range(0, count, 10):
        stream = "thing-" + new_id("s")
        events = [NewEvent(new_id("evt"), "thing_happened", b'{"type": "thing_happened", "n": %d}' % (start + i))
                  for i in range(10)]
        await store.append([StreamAppend(stream, 0, events)], command_id=None, command_name="t", account_id="acct_t")


async def test_relay_killed_mid_stream_publishes_every_event_exactly_once(
    store: EventStore, nc: nats.NATS, settings: Settings, settings_env: dict[str, str]
):
    await append_many(store, TOTAL)
    js = nc.jetstream()
    relay = start_relay(settings_env)
    try:
        await wait_for(lambda: _more_than(js, settings.events_stream, 300))
        os.kill(relay.pid, signal.SIGKILL)
        relay.wait()
        killed_at = await stream_count(js, settings.events_stream)
        assert killed_at < TOTAL, "the relay finished before it was killed; the test proved nothing"
        await append_many(store, 500)  # the log keeps growing while the relay is down
        relay = start_relay(settings_env)
        await wait_for(lambda: _at_least(js, settings.events_stream, TOTAL + 500))
        await asyncio.sleep(0.5)  # give a double publish time to show up
    finally:
        relay.send_signal(signal.SIGTERM)
        relay.wait(timeout=10)

    logged = await store.read_all(LogCursor(), limit=100_000)
    received = await read_stream(js, settings, len(logged))
    assert len(received) == len(logged) == TOTAL + 500
    assert [m["id"] for m in received] == [e.id for e in logged]  # once each, in log order
    first = received[0]
    assert set(first) == {"id", "type", "stream_id", "version", "position", "occurred_at", "account_id", "data"}
    assert first["data"]["type"] == "thing_happened"


async def _more_than(js, name: str, n: int) -> bool:
    return await stream_count(js, name) > n


async def _at_least(js, name: str, n: int) -> bool:
    return await stream_count(js, name) >= n


async def read_stream(js, settings: Settings, expected: int) -> list[dict]:
    """Every message of the test's events stream, in stream order, with its subject checked."""
    sub = await js.pull_subscribe(f"{settings.events_subject_prefix}.>", durable=None, stream=settings.events_stream)
    messages: list[dict] = []
    while True:
        try:
            batch = await sub.fetch(500, timeout=1)
        except (TimeoutError, nats.errors.TimeoutError):  # fetch raises either when drained
            break
        for msg in batch:
            body = msgspec.json.decode(msg.data)
            assert msg.subject == f"{settings.events_subject_prefix}.thing.{body['type']}"
            assert msg.headers["Nats-Msg-Id"] == body["id"]
            messages.append(body)
            await msg.ack()
        if len(messages) >= expected + 50:
            break
    await sub.unsubscribe()
    return messages

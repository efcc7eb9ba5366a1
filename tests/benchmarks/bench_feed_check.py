"""The relay's feed check at a large stream: the whole-stream scan against the incremental check.

A log of BENCH_FEED_EVENTS events (default 200,000) is published to SCHED_EVENTS by the relay. Then
the check that runs at every relay start, takeover and reconnect is timed three ways:

  whole stream     no verified point (the first check ever, or after a loss before the point): every
                   message's headers are read and compared with the log, as every check did before.
  point at head    a takeover right after a check: the cheap whole-stream checks and nothing to read.
  1,000 behind     a takeover 1,000 events after the last check: those are read and compared.

Run alone: python -m tests.benchmarks.bench_feed_check
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import nats

from services.relay.feed_check import check_and_repair
from services.relay.relay import Relay
from shared.eventstore import EventStore, NewEvent, StreamAppend, create_pool, migrate
from shared.ids import new_id
from shared.settings import Settings
from tests.benchmarks.common import LoadMonitor, embedded_servers, table

EVENTS = int(os.environ.get("BENCH_FEED_EVENTS", "200000"))
BEHIND = 1_000


async def append(store: EventStore, count: int) -> None:
    """`count` events, 100 per stream, 1,000 per transaction."""
    for start in range(0, count, 1_000):
        appends = [StreamAppend(f"thing-{new_id('s')}", 0, [NewEvent(new_id("evt"), "thing_happened",
                                                                     b'{"type": "thing_happened", "n": %d}' % n)
                                                            for n in range(100)])
                   for _ in range(min(1_000, count - start) // 100)]
        await store.append(appends, command_id=None, command_name="bench", account_id="acct_bench")


async def publish(relay: Relay, store: EventStore) -> None:
    """Let the relay publish the whole log (it checks the stream first)."""
    head = await store.head_position()
    while relay.cursor.position < head:
        await relay.publish_batch()


async def timed_check(store: EventStore, js: nats.js.JetStreamContext, settings: Settings) -> float:
    started = time.perf_counter()
    _, deleted = await check_and_repair(store, js, settings)
    assert deleted == 0
    return time.perf_counter() - started


async def run(database_url: str, nats_url: str) -> list[list[object]]:
    pool = await create_pool(database_url, min_size=1, max_size=4)
    nc = await nats.connect(nats_url)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        settings = Settings(database_url=database_url, nats_url=nats_url, events_stream="BENCH_FEED",
                            nats_prefix="bench")
        store = EventStore(pool)
        js = nc.jetstream()
        relay = Relay(store, js, settings, batch_size=2_000)
        await relay.start()
        started = time.perf_counter()
        await append(store, EVENTS - BEHIND)
        await publish(relay, store)
        print(f"{EVENTS - BEHIND:,} events appended and published in {time.perf_counter() - started:.0f} s",
              file=sys.stderr)
        await pool.execute("delete from feed_verified")
        whole = await timed_check(store, js, settings)  # also verifies the point at the head
        at_head = await timed_check(store, js, settings)
        await append(store, BEHIND)
        await publish(relay, store)  # publishes past the point without checking again
        behind = await timed_check(store, js, settings)
        return [["whole stream (before: every check)", EVENTS - BEHIND, whole],
                ["point at head (after: a takeover)", 0, at_head],
                [f"point {BEHIND:,} behind (after)", BEHIND, behind]]
    finally:
        await nc.close()
        await pool.close()


def main() -> None:
    monitor = LoadMonitor().start()
    with embedded_servers(postgres=True, nats=True) as servers:
        assert servers.nats is not None
        rows = asyncio.run(run(servers.database_url, servers.nats.url))
    monitor.stop()
    print(table(["check", "messages read", "seconds"], rows,
                title=f"Relay feed check at a stream of {EVENTS:,} messages (check_and_repair, nothing lost)"))
    print()
    print(monitor.summary())


if __name__ == "__main__":
    main()

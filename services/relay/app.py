"""The relay's composition root: a pool, a NATS connection, the relay following the log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import nats

from services.relay.relay import Relay
from shared.eventstore import EventStore, create_pool
from shared.eventstore.appended import Appended
from shared.lease import Lease
from shared.settings import Settings


@asynccontextmanager
async def bootstrap(settings: Settings) -> AsyncIterator[Relay]:
    """Publish the log to SCHED_EVENTS in the background until the context exits."""
    pool = await create_pool(settings.database_url, min_size=1, max_size=3)  # the relay, its lease
    relay: Relay | None = None

    async def reconnected() -> None:
        if relay is not None:
            relay.request_check()  # the stream may have lost messages while we were away

    nc = await nats.connect(settings.nats_servers, max_reconnect_attempts=-1, reconnected_cb=reconnected)
    lease = Lease(pool, "relay")  # one relay publishes; the others stand by
    relay = Relay(EventStore(pool), nc.jetstream(), settings, lease=lease)
    await relay.start()
    appended = Appended(settings.database_url)
    await appended.start()
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop, appended=appended))
    keeping = asyncio.create_task(lease.keep(stop))
    try:
        yield relay
    finally:
        stop.set()
        appended.wake_all()
        await task
        await keeping
        await appended.close()
        await nc.drain()
        await pool.close()

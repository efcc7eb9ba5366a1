"""The dispatcher's composition root: a pool, a NATS connection, the dispatcher (tests call it too)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import nats

from services.webhooks.dispatcher import Dispatcher
from shared.eventstore import init_connection
from shared.manage import require_signing_secret
from shared.settings import Settings


@asynccontextmanager
async def bootstrap(settings: Settings) -> AsyncIterator[Dispatcher]:
    """Deliver webhooks (once this instance leads) until the context exits."""
    # The dispatcher's commits need not wait for the WAL flush: its intake position commits with the outbox
    # rows it implies and the consumer restarts from it, so a Postgres crash costs re-reads and re-sends
    # (at least once still holds), never a lost delivery.
    require_signing_secret(settings.signing_secret, "the webhook dispatcher")  # payloads carry manage links
    pool = await asyncpg.create_pool(settings.database_url, min_size=2, max_size=16, init=init_connection,
                                     server_settings={"synchronous_commit": "off"})
    assert pool is not None
    nc = await nats.connect(settings.nats_servers, max_reconnect_attempts=-1)
    dispatcher = Dispatcher(pool, nc.jetstream(), settings)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        yield dispatcher
    finally:
        stop.set()
        await task
        await nc.drain()
        await pool.close()

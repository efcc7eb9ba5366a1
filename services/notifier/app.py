"""The notifier's composition root: a pool, a NATS connection, the notifier (tests call it too)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import nats

from services.notifier.notifier import LEASE, Notifier
from shared.eventstore import init_connection
from shared.lease import Lease
from shared.manage import require_signing_secret
from shared.settings import Settings


@asynccontextmanager
async def bootstrap(settings: Settings) -> AsyncIterator[Notifier]:
    """Send the booking emails (once this instance leads) until the context exits."""
    require_signing_secret(settings.signing_secret, "the notifier")
    pool = await asyncpg.create_pool(settings.database_url, min_size=2, max_size=6, init=init_connection)
    assert pool is not None
    nc = await nats.connect(settings.nats_servers, max_reconnect_attempts=-1)
    notifier = Notifier(pool, nc.jetstream(), settings, Lease(pool, LEASE))  # one sends; the others stand by
    stop = asyncio.Event()
    task = asyncio.create_task(notifier.run(stop))
    try:
        yield notifier
    finally:
        stop.set()
        await task
        await nc.drain()
        await pool.close()

"""`python -m services.relay`: run the relay on its own until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging

import nats

from projections import migrations
from shared.eventstore import EventStore, create_pool, migrate
from shared.lifecycle import stop_on_signals
from shared.settings import load_settings
from services.relay.relay import Relay


async def main() -> None:
    settings = load_settings()
    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    async with pool.acquire() as conn:
        await migrate(conn, migrations())
    nc = await nats.connect(settings.nats_servers)
    relay = Relay(EventStore(pool), nc.jetstream(), settings)
    await relay.start()
    stop = stop_on_signals()
    try:
        await relay.run(stop)
    finally:
        await nc.drain()
        await pool.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(main())

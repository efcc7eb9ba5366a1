"""`python -m services.relay`: run the relay on its own until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal

import nats

from projections import migrations
from shared.eventstore import EventStore, create_pool, migrate
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
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await relay.run(stop)
    finally:
        await nc.drain()
        await pool.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(main())

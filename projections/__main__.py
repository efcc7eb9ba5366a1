"""`python -m projections`: keep every read model caught up with the log until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal

from projections import PROJECTIONS, migrations
from projections.runner import ProjectionRunner
from shared.eventstore import create_pool, migrate
from shared.settings import load_settings


async def main() -> None:
    settings = load_settings()
    pool = await create_pool(settings.database_url, min_size=2, max_size=len(PROJECTIONS) + 2)
    async with pool.acquire() as conn:
        await migrate(conn, migrations())
    runner = ProjectionRunner(pool, list(PROJECTIONS.values()))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.stop.set)
    print("projections ready", flush=True)
    try:
        await runner.run()
    finally:
        await pool.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(main())

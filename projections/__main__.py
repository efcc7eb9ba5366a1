"""`python -m projections`: keep every read model caught up with the log until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging

from projections import PROJECTIONS, migrations
from projections.runner import ProjectionRunner
from shared.eventstore import create_pool, migrate
from shared.lifecycle import stop_on_signals
from shared.settings import load_settings


async def main() -> None:
    settings = load_settings()
    pool = await create_pool(settings.database_url, min_size=2, max_size=len(PROJECTIONS) + 2)
    async with pool.acquire() as conn:
        await migrate(conn, migrations())
    runner = ProjectionRunner(pool, list(PROJECTIONS.values()), stop=stop_on_signals())
    print("projections ready", flush=True)
    try:
        await runner.run()
    finally:
        await pool.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(main())

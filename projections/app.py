"""The projections' composition root: a pool and a runner keeping every read model caught up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from projections import runnable
from projections.runner import ProjectionRunner
from shared.eventstore import create_pool
from shared.eventstore.appended import Appended
from shared.settings import Settings


@asynccontextmanager
async def bootstrap(settings: Settings) -> AsyncIterator[ProjectionRunner]:
    """Follow the log with every projection (partition) in the background until the context exits.

    Runners share the units by leases, so any number of them may run (cluster mode runs two).
    """
    units = runnable(settings.calendar_partitions)
    pool = await create_pool(settings.database_url, min_size=2, max_size=len(units) + 3)
    appended = Appended(settings.database_url)
    await appended.start()
    runner = ProjectionRunner(pool, units, shared=True, appended=appended)
    task = asyncio.create_task(runner.run())
    try:
        yield runner
    finally:
        runner.stop.set()
        appended.wake_all()
        await task
        await appended.close()
        await pool.close()

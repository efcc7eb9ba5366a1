"""The query service's composition root: a pool, the read-model queries, a broker, one subscriber."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
from faststream.nats import NatsBroker

from projections import runnable
from services.query.reads import Reads
from services.query.service import QueryService
from shared.catalogue import subject_prefix
from shared.eventstore import create_pool
from shared.rpc import answer_requests
from shared.settings import Settings


@dataclass
class QueryApp:
    """A running query service: its broker, pool and service."""

    broker: NatsBroker
    pool: asyncpg.Pool
    service: QueryService


@asynccontextmanager
async def bootstrap(settings: Settings, clock: Callable[[], float] | None = None) -> AsyncIterator[QueryApp]:
    """Answer `<prefix>.query.<name>` requests until the context exits; `clock` replaces the wall clock."""
    pool = await create_pool(settings.database_url, min_size=2, max_size=12)
    units = runnable(settings.calendar_partitions)
    reads = (Reads(pool, settings.public_url, clock, projections=units) if clock
             else Reads(pool, settings.public_url, projections=units))
    service = QueryService(reads)
    broker = NatsBroker(settings.nats_servers, logger=None)
    answer_requests(broker, subject_prefix(settings.nats_prefix, "query"), "sched-queries", settings.command_workers,
                    service.execute)
    await broker.start()
    try:
        yield QueryApp(broker, pool, service)
    finally:
        await broker.stop()
        await pool.close()

"""The query service's composition root: a pool, the read-model queries, a broker, one subscriber."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
from faststream.nats import NatsBroker

from projections import migrations
from shared.eventstore import create_pool, migrate
from shared.settings import Settings
from services.commands.app import subject_and_body
from services.query.service import QueryService


@dataclass
class QueryApp:
    broker: NatsBroker
    pool: asyncpg.Pool
    service: QueryService


@asynccontextmanager
async def running_query_service(settings: Settings,
                                clock: Callable[[], float] | None = None) -> AsyncIterator[QueryApp]:
    """Answer `<prefix>.query.<name>` requests until the context exits."""
    pool = await create_pool(settings.database_url, min_size=2, max_size=12)
    async with pool.acquire() as conn:
        await migrate(conn, migrations())
    public_url = f"http://{settings.http_host}:{settings.http_port}/book"
    service = QueryService(pool, public_url, clock) if clock else QueryService(pool, public_url)
    broker = NatsBroker(settings.nats_servers, logger=None)
    prefix = settings.query_subject_prefix + "."

    @broker.subscriber(f"{prefix}*", queue="sched-queries", max_workers=settings.command_workers,
                       decoder=subject_and_body)
    async def handle_query(request: Any) -> bytes:
        subject, body = request
        return await service.execute(subject[len(prefix):], body)

    await broker.start()
    try:
        yield QueryApp(broker, pool, service)
    finally:
        await broker.stop()
        await pool.close()

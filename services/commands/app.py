"""The command service's composition root: a pool, an event store, a broker, one subscriber."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from dataclasses import dataclass

from typing import Any

import asyncpg
from faststream.nats import NatsBroker, NatsMessage

from projections import migrations
from shared.eventstore import EventStore, create_pool, migrate
from shared.settings import Settings
from services.commands.service import CommandService
from services.commands.sweeper import HoldSweeper


@dataclass
class CommandApp:
    broker: NatsBroker
    pool: asyncpg.Pool
    service: CommandService


async def subject_and_body(message: NatsMessage) -> tuple[str, bytes]:
    """faststream decoder: the subject and the raw body. The command service decodes the body itself
    (typed, with field errors), and taking no NatsMessage parameter keeps dependency injection off
    the hot path."""
    return message.raw_message.subject, message.body


def build_broker(settings: Settings, service: CommandService) -> NatsBroker:
    """A broker answering `<prefix>.cmd.<name>` requests; the queue group spreads them over instances."""
    broker = NatsBroker(settings.nats_servers, logger=None)
    prefix = settings.cmd_subject_prefix + "."

    @broker.subscriber(f"{prefix}*", queue="sched-commands", max_workers=settings.command_workers,
                       decoder=subject_and_body)
    async def handle_command(request: Any) -> bytes:
        subject, body = request
        return await service.execute(subject[len(prefix):], body)

    return broker


@asynccontextmanager
async def running_command_service(settings: Settings,
                                  clock: Callable[[], datetime] | None = None) -> AsyncIterator[CommandApp]:
    """Start the command service (migrating the database first) and stop it on exit.

    `clock` replaces the wall clock (tests move time forward to expire holds).
    """
    pool = await create_pool(settings.database_url, min_size=2, max_size=12)
    async with pool.acquire() as conn:
        await migrate(conn, migrations())
    public_url = f"http://{settings.http_host}:{settings.http_port}/book"
    service = (CommandService(EventStore(pool), public_url=public_url, clock=clock,
                              webhook_allow_loopback=settings.webhook_allow_loopback) if clock
               else CommandService(EventStore(pool), public_url=public_url,
                                   webhook_allow_loopback=settings.webhook_allow_loopback))
    broker = build_broker(settings, service)
    await broker.start()
    stop = asyncio.Event()
    sweeper = asyncio.create_task(HoldSweeper(service.store, service).run(stop))
    try:
        yield CommandApp(broker, pool, service)
    finally:
        stop.set()
        await broker.stop()
        await sweeper
        await pool.close()

"""The command service's composition root: a pool, an event store, a broker, one subscriber."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from faststream.nats import NatsBroker

from services.commands.service import CommandService
from services.commands.sweeper import HoldSweeper
from shared.catalogue import subject_prefix
from shared.eventstore import EventStore, create_pool
from shared.manage import require_signing_secret
from shared.rpc import answer_requests
from shared.settings import Settings


def command_service(store: EventStore, settings: Settings,
                    clock: Callable[[], datetime] | None = None) -> CommandService:
    """The command service over one event store, configured by `settings`."""
    options = {"clock": clock} if clock else {}
    return CommandService(store, public_url=settings.public_url,
                          webhook_allow_loopback=settings.webhook_allow_loopback,
                          check_replies=settings.check_replies, signing_secret=settings.signing_secret,
                          **options)


@dataclass
class CommandApp:
    """A running command service: its broker, pool and service."""

    broker: NatsBroker
    pool: asyncpg.Pool
    service: CommandService


def build_broker(settings: Settings, service: CommandService) -> NatsBroker:
    """A broker answering `<prefix>.cmd.<name>` requests; the queue group spreads them over instances."""
    broker = NatsBroker(settings.nats_servers, logger=None)
    answer_requests(broker, subject_prefix(settings.nats_prefix, "command"), "sched-commands",
                    settings.command_workers, service.execute)
    return broker


@asynccontextmanager
async def bootstrap(settings: Settings, clock: Callable[[], datetime] | None = None) -> AsyncIterator[CommandApp]:
    """Start the command service and its hold sweeper; stop both on exit.

    `clock` replaces the wall clock (tests move time forward to expire holds).
    """
    require_signing_secret(settings.signing_secret, "the command service")
    pool = await create_pool(settings.database_url, min_size=2, max_size=12)
    service = command_service(EventStore(pool), settings, clock)
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

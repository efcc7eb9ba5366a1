"""The query service's composition root: a pool, the in-memory calendars, a NATS connection, one subscription."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
from nats.aio.client import Client as NatsClient

from projections import runnable
from projections.calendars.memory import LiveCalendars
from services.query.answers import KeptAnswers
from services.query.link_days import LinkDays
from services.query.next_free import NextFreeIndex
from services.query.reads import Reads, StateCache
from services.query.service import QueryService
from shared.catalogue import subject_prefix
from shared.eventstore import create_pool
from shared.eventstore.appended import Appended
from shared.manage import require_signing_secret
from shared.rpc import answer_requests_lean, lean_connect, subscribed
from shared.settings import Settings


@dataclass
class QueryApp:
    """A running query service: its NATS connection, pool, calendars and service."""

    nc: NatsClient
    pool: asyncpg.Pool
    service: QueryService
    calendars: LiveCalendars


@asynccontextmanager
async def bootstrap(settings: Settings, clock: Callable[[], float] | None = None) -> AsyncIterator[QueryApp]:
    """Answer `<prefix>.query.<name>` requests until the context exits; `clock` replaces the wall clock.

    The provider calendars are loaded into memory (from the calendars read model's snapshot) and follow
    the log before the first request is answered; requests arrive on a plain nats-py subscription in the
    queue group `sched-queries` (faststream's per-message layers cost more than most queries).
    """
    require_signing_secret(settings.signing_secret, "the query service")
    pool = await create_pool(settings.database_url, min_size=2, max_size=12)
    units = runnable(settings.calendar_partitions)
    calendars = LiveCalendars(clock=clock) if clock else LiveCalendars()
    await calendars.load(pool, [unit.checkpoint for unit in units if unit.name == "calendars"])
    while await calendars.catch_up(pool):  # to the log's head before the first answer, so reads never go back
        continue
    # The calendars are long-lived: leave them out of the garbage collector's full passes, whose cost
    # would otherwise grow with the number of providers and show up in every query's latency.
    gc.freeze()
    stop = asyncio.Event()
    appended = Appended(settings.database_url)
    await appended.start()
    follower = asyncio.create_task(calendars.follow(pool, stop, appended=appended))
    states = StateCache(calendars)
    reads = Reads(pool, settings.public_url, clock or time.time, calendars=calendars, states=states,
                  projections=units, signing_secret=settings.signing_secret,
                  link_days=LinkDays(calendars, settings.query_days_bytes), next_free=NextFreeIndex(calendars),
                  answers=KeptAnswers(settings.query_answers_bytes))
    service = QueryService(reads, check_replies=settings.check_replies)
    nc = await lean_connect(settings.nats_servers, max_reconnect_attempts=-1)
    answering = await answer_requests_lean(nc, subject_prefix(settings.nats_prefix, "query"), "sched-queries",
                                           settings.command_workers, service.execute)
    await subscribed(nc)
    try:
        yield QueryApp(nc, pool, service, calendars)
    finally:
        with contextlib.suppress(Exception):  # take no more requests; answer those taken, then drain
            await answering.subscription.unsubscribe()
        await answering.finish()
        with contextlib.suppress(Exception):  # a connection already gone has nothing left to drain
            await nc.drain()
        stop.set()
        appended.wake_all()
        await follower
        await appended.close()
        await pool.close()

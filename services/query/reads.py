"""What every query handler may use: the read models' pool, the clock, the public URL, read-your-writes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from projections import runnable
from projections.calendars import queries as calendar_rows
from projections.calendars.memory import LiveCalendars
from projections.resources import queries as resources
from projections.runner import Projection, applied_everywhere, log_head, tx_of
from services.query.answers import KeptAnswers
from services.query.link_days import LinkDays
from services.query.next_free import NextFreeIndex
from shared.availability import Busy, HostCalendar
from shared.domain.registry import STREAM_KINDS
from shared.errors import Unavailable, ValidationFailed

_CACHED_PREFIXES = {k.prefix: k.kind for k in STREAM_KINDS if k.kind in ("link", "service", "location")}
_CACHED_STARTS = tuple(_CACHED_PREFIXES)


class StateCache:
    """Resources (links, services, locations) as the `resources` read model holds them, kept while the log
    shows no newer event of their stream.

    A row is kept only when the read model's checkpoint is at or past the calendars' cursor: every event
    of the resource up to there is in it, and every later one reaches `forget` (the calendars follower
    reads every event) in the same step that moves the calendars past it. So a cached resource is never
    older than the calendars it is answered with, and `min_position` holds for it as for them.
    """


    def __init__(self, calendars: LiveCalendars, size: int = 10_000) -> None:
        self.calendars = calendars
        self.size = size
        self.states: dict[tuple[str, str], tuple[int, str, Any]] = {}  # (kind, id) -> (serial, account, state)
        self.serial = 0
        calendars.on_streams = self.forget

    def forget(self, stream_ids: list[str]) -> None:
        """Drop the resources these streams' events may have changed."""
        for stream_id in stream_ids:
            if stream_id.startswith(_CACHED_STARTS):
                prefix = stream_id[:stream_id.index("-") + 1]
                self.states.pop((_CACHED_PREFIXES[prefix], stream_id[len(prefix):]), None)

    async def get(self, pool: asyncpg.Pool, kind: str, resource_id: str, account_id: str) -> tuple[int, Any] | None:
        """(serial, state) of an account's live resource, or None; serial 0 when it could not be kept."""
        cached = self.states.get((kind, resource_id))
        if cached is None:
            row = await pool.fetchrow(_STATE, kind, resource_id)
            if row is None:
                return None
            state = resources.decode_kind(kind, row["state"]) if not row["deleted"] else None
            if (row["tx_id"], row["position"]) < tuple(self.calendars.cursor):
                return (0, state) if state is not None and row["account_id"] == account_id else None
            if len(self.states) >= self.size:
                self.states.clear()
            self.serial += 1
            cached = self.states[(kind, resource_id)] = (self.serial, row["account_id"], state)
        serial, owner, state = cached
        return (serial, state) if state is not None and owner == account_id else None


# A resource's row and the resources checkpoint, in one statement's snapshot.
_STATE = (
    "select r.state, r.account_id, r.deleted, c.tx_id::text::bigint as tx_id, c.position"
    " from rm_resources r, checkpoints c where r.kind = $1 and r.id = $2 and c.name = 'projection:resources'"
)


@dataclass(frozen=True)
class Reads:
    """The explicit dependencies of the query handlers; tests pass their own clock."""

    pool: asyncpg.Pool
    public_url: str = "http://127.0.0.1:8000/book"
    clock: Callable[[], float] = time.time
    # A `min_position` wait ends (`unavailable`) before the gateway's 4 s attempt gives up on the answer: the
    # gateway hears "behind" and asks again while its request's deadline allows, then answers 503.
    max_wait: float = 3.0
    # the checkpoints a read waits for: every unit the runners follow (each calendars partition too)
    projections: Sequence[Projection] = field(default_factory=runnable)
    calendars: LiveCalendars | None = None  # the query service's in-memory calendars; None: read rm_* rows
    next_free: NextFreeIndex | None = None  # slots.earliest_slot's index, over `calendars`
    states: StateCache | None = None
    answers: KeptAnswers = field(default_factory=KeptAnswers)  # slots.link_slots' answers this second, and more
    link_days: LinkDays | None = None  # links' slots per day, over `calendars`

    async def state(self, kind: str, resource_id: str, account_id: str) -> tuple[int, Any] | None:
        """(serial, state) of the account's link, service or location, or None; serial 0: not cached."""
        if self.states is None:
            state = await resources.get_state(self.pool, kind, resource_id, account_id)
            return None if state is None else (0, state)
        return await self.states.get(self.pool, kind, resource_id, account_id)

    async def host_calendars(self, provider_ids: list[str], now: int, start: int, end: int,
                             extra_busy: dict[str, list[Busy]] | None = None) -> list[HostCalendar]:
        """The engine's view of each provider for [start, end) at `now`: from memory when the service keeps it."""
        if self.calendars is not None:
            return self.calendars.host_calendars(provider_ids, now, extra_busy)
        return await calendar_rows.host_calendars(self.pool, provider_ids, now, start, end, extra_busy)
    signing_secret: str = ""

    def now(self) -> int:
        """The current instant in whole epoch seconds."""
        return int(self.clock())

    async def wait_for(self, position: int) -> None:
        """Return once every read model has applied the event at `position` (read-your-writes)."""
        tx_id = await tx_of(self.pool, position)
        if tx_id is None:
            return  # no such event (yet): nothing to wait for
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        if self.calendars is not None and not await self.calendars.wait_for(tx_id, position, self.max_wait):
            raise _not_caught_up()
        while not await applied_everywhere(self.pool, self.projections, tx_id, position):
            if loop.time() > deadline:
                raise _not_caught_up()
            await asyncio.sleep(0.003)

    async def wait_for_head(self) -> None:
        """Wait until the read models hold everything in the log now (a miss that may be a fresh write)."""
        head = await log_head(self.pool)
        if head:
            await self.wait_for(head)


def _not_caught_up() -> Unavailable:
    # The client's position is fine (a command returned it); the system is behind: 503 with Retry-After.
    return Unavailable("the read models have not caught up yet; try again", {"min_position": ["not reached in time"]})


def page_limit(value: int, field_name: str = "limit") -> int:
    """A list's page size: 1 to 100."""
    if not 1 <= value <= 100:
        raise ValidationFailed.on(field_name, "must be 1 to 100")
    return value

"""Provider calendars held in memory by the query service: a projection of the log in commit order.

It starts from a consistent snapshot of the `calendars` read model (its rows and its checkpoint,
read in one repeatable-read transaction), then follows the log with the same gap-safe read as the
projectors (`projections.runner`), so it always holds a prefix of the log in commit order: each
batch is applied without an await in between, and a query sees the state between two batches.
`wait_for` is what `min_position` waits on.

Each provider's time is a `shared.domain.reservations.Calendar`, folded by the same `apply` the
command side uses and read by the same `busy` rule. Memory is bounded by the number of providers
and the reservations that have not yet ended: `prune` drops time that ended more than two days ago
(no slot starts before now, no buffer is longer than a day, and host assignment looks at most two
days back), so history never accumulates. A `ReservationMoved` of a reservation pruned earlier (a
past booking moved into the future) finds its `TimeReserved` in the provider's stream in the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import islice

import asyncpg
import msgspec

from shared.availability import Busy, HostCalendar, ProviderSchedule, parse_instant
from shared.availability.days import SECONDS_PER_DAY
from shared.domain.reservations import PAST_MARGIN, Calendar, Reservation
from shared.eventstore import LogCursor
from shared.eventstore.appended import Appended
from shared.messages.events import (
    Event,
    ExternalBusyTimesSynced,
    ProviderCreated,
    ProviderScheduleSet,
    ReservationMoved,
    TimeReleased,
    TimeReserved,
    decode_event,
)

EVENT_TYPES = frozenset({"provider_created", "provider_schedule_set", "time_reserved", "time_released",
                         "reservation_moved", "external_busy_times_synced"})
CHANGE_LOG = 100_000  # providers changed, newest last, kept for the earliest-slot index to catch up from
KEEP = 2 * PAST_MARGIN  # what `busy` and `booking_starts` can still look at, behind now
log = logging.getLogger("sched.query.calendars")
_schedule = msgspec.json.Decoder(ProviderSchedule)

# The gap-safe read of runner._READ (see there), with only the columns needed here. Every event is read,
# so that the cursor passes the events of other read models too and `min_position` can wait on it.
_READ = (
    "select position, tx_id::text::bigint, type, data, stream_id from events"
    " where (tx_id, position) > ($1::text::xid8, $2) and tx_id < pg_snapshot_xmin(pg_current_snapshot())"
    " order by events.tx_id, events.position limit $3"
)
_RESERVED = (
    "select data from events where stream_id = $1 and type = 'time_reserved'"
    " and data->>'reservation_id' = $2 order by version desc limit 1"
)


class ProviderCalendar:
    """One provider as the engine needs it: schedule, account, calendar, and a version that grows on change.

    `base` is the version of the last change that may move any of its slots (created, a new schedule);
    `days` maps a UTC day number to the version of the last change that may move that day's slots.
    """

    __slots__ = ("account_id", "base", "calendar", "days", "schedule", "version")

    def __init__(self, account_id: str, schedule: ProviderSchedule, calendar: Calendar | None = None) -> None:
        self.account_id = account_id
        self.schedule = schedule
        self.calendar = calendar or Calendar()
        self.version = 0
        self.base = 0
        self.days: dict[int, int] = {}


# A slot starting on UTC day D is checked against [start - buffer before, start + duration + buffer after]:
# with durations and link buffers of at most a day each (shared.domain.links), that lies within
# [D - 1 day, D + 3 days). Busy time [a, b) with its own buffers can therefore only move the slots of the
# days from a's day - 2 to b's day + 1; MARGIN_DAYS = 3 on both sides covers that with a day to spare
# (tests/unit/test_day_slots.py fails with a margin of 1).
MARGIN_DAYS = 3
# Memory: at most MAX_STAMPED_DAYS stamps (about 80 bytes each) per provider. A change wider than
# WIDEST_SPAN_DAYS (a long busy-time sync), or one that would pass the cap, counts as a change to every day
# (`base`), as before per-day stamps: correct, only less of the cache survives it.
WIDEST_SPAN_DAYS = 14
MAX_STAMPED_DAYS = 64


@dataclass
class LiveCalendars:
    """Every provider's calendar in memory, at `cursor` in the log's commit order."""

    providers: dict[str, ProviderCalendar] = field(default_factory=dict)
    cursor: LogCursor = field(default_factory=LogCursor)
    clock: Callable[[], float] = time.time
    applied: int = 0
    # Called with each batch's stream ids, in the same no-await step that applies it: caches of other
    # streams (the query service's links) are invalidated exactly when the calendars move past them.
    on_streams: Callable[[list[str]], None] | None = None
    # Every change to a provider, in the order applied: `changes` counts them, `recent` holds the last
    # CHANGE_LOG providers changed (an index over many providers catches up by reading what it missed).
    changes: int = 0
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=CHANGE_LOG))
    _advanced: asyncio.Condition | None = None

    # --- reading

    def host_calendars(self, provider_ids: Iterable[str], now: int,
                       extra_busy: dict[str, list[Busy]] | None = None) -> list[HostCalendar]:
        """The engine's view of each known provider (in the given order) at `now`."""
        result = []
        for provider_id in provider_ids:
            provider = self.providers.get(provider_id)
            if provider is None:
                continue
            occupied = provider.calendar.occupancy(now)
            busy = list(occupied.busy)
            if extra_busy and provider_id in extra_busy:
                busy.extend(extra_busy[provider_id])
            result.append(HostCalendar(provider_id=provider_id, schedule=provider.schedule, busy=busy,
                                       booking_starts=list(occupied.booking_starts)))
        return result

    def version(self, provider_id: str) -> int:
        """How many changes a provider's calendar has seen here (-1: unknown provider)."""
        provider = self.providers.get(provider_id)
        return -1 if provider is None else provider.version

    def day_stamp(self, provider_id: str, day: int) -> int:
        """The version of the last change that may have moved the provider's slots starting in the UTC day
        beginning at `day` (-1: unknown provider): a day kept with this stamp is still true while it holds."""
        provider = self.providers.get(provider_id)
        if provider is None:
            return -1
        return max(provider.base, provider.days.get(day // SECONDS_PER_DAY, -1))

    def holds_expiring(self, provider_id: str, now: int) -> int | None:
        """The first instant after `now` at which one of the provider's holds stops occupying time."""
        provider = self.providers.get(provider_id)
        if provider is None:
            return None
        times = [r.expires_at for r in provider.calendar.reservations.values()
                 if r.expires_at is not None and r.expires_at > now]
        return min(times) if times else None

    def changed_since(self, seen: int) -> set[str] | None:
        """The providers changed after the first `seen` changes; None when the log no longer reaches back."""
        missing = self.changes - seen
        if missing > len(self.recent):
            return None
        return set(islice(reversed(self.recent), missing))

    def _changed(self, provider: ProviderCalendar, provider_id: str,
                 spans: Iterable[tuple[int, int]] | None = None) -> None:
        """Note a change to the provider: to the days `spans` (busy time [a, b) before or after it) may move
        slots of, or to all of them (None)."""
        provider.version += 1
        self.changes += 1
        self.recent.append(provider_id)
        if spans is None:
            provider.base = provider.version
            return
        if not spans:
            return
        # Days before this are never in a window again (pruned as in `prune`): history stamps nothing.
        oldest = self._oldest_day()
        for a, b in spans:
            first, last = max(a // SECONDS_PER_DAY - MARGIN_DAYS, oldest), b // SECONDS_PER_DAY + MARGIN_DAYS
            if last - first > WIDEST_SPAN_DAYS:
                provider.base = provider.version
                return
            for day in range(first, last + 1):
                provider.days[day] = provider.version
            if len(provider.days) > MAX_STAMPED_DAYS:
                provider.base = provider.version
                provider.days.clear()
                return

    def _oldest_day(self, now: float | None = None) -> int:
        """The first UTC day number whose stamps are kept: a window starts at now at the earliest, and
        `prune` drops what ended more than KEEP ago (the same assumption: a clock never steps back by more)."""
        return int((self.clock() if now is None else now) - KEEP) // SECONDS_PER_DAY - 2 * MARGIN_DAYS

    def has_reached(self, tx_id: int, position: int) -> bool:
        """Whether the event (tx_id, position) has been applied here."""
        return (tx_id, position) <= tuple(self.cursor)

    # --- following the log

    def apply(self, event: Event) -> None:
        """Apply one calendar event in place (upserts and deletes: replaying one changes nothing)."""
        match event:
            case ProviderCreated():
                if event.provider_id not in self.providers:
                    created = self.providers[event.provider_id] = ProviderCalendar(
                        event.account_id, ProviderSchedule(time_zone=event.time_zone))
                    self._changed(created, event.provider_id)
                return
            case ProviderScheduleSet():
                provider = self.providers.get(event.provider_id)
                if provider is not None:
                    provider.schedule = event.schedule
                    self._changed(provider, event.provider_id)
                return
            case TimeReserved() | TimeReleased() | ReservationMoved():
                provider = self.providers.get(event.provider_id)
                if provider is not None:
                    reservations = provider.calendar.reservations
                    before = reservations.get(event.reservation_id)
                    provider.calendar.apply(event)
                    after = reservations.get(event.reservation_id)
                    # Only time a window can still reach is stamped: history (most of a log) costs no loop.
                    oldest = (self._oldest_day() - MARGIN_DAYS) * SECONDS_PER_DAY
                    self._changed(provider, event.provider_id, [
                        (r.start - r.buffer_before, r.end + r.buffer_after) for r in (before, after)
                        if r is not None and r.end + r.buffer_after >= oldest])
            case ExternalBusyTimesSynced():
                provider = self.providers.get(event.provider_id)
                if provider is not None:
                    provider.calendar.apply(event)  # the busy times inside the synced window are replaced
                    self._changed(provider, event.provider_id,
                                  [(parse_instant(event.from_at), parse_instant(event.until_at))])

    def prune(self, now: int) -> int:
        """Forget time that ended more than KEEP ago; return how many intervals went."""
        horizon = now - KEEP
        dropped = 0
        for provider in self.providers.values():
            calendar = provider.calendar
            old = [rid for rid, r in calendar.reservations.items()
                   if r.end + r.buffer_after <= horizon or (r.expires_at is not None and r.expires_at <= horizon)]
            for rid in old:
                del calendar.reservations[rid]
            oldest = self._oldest_day(now)
            if provider.days and min(provider.days) < oldest:  # days no window reaches any more
                provider.days = {d: v for d, v in provider.days.items() if d >= oldest}
            if calendar.external and calendar.external[0][1] <= horizon:
                kept = [(a, b) for a, b in calendar.external if b > horizon]
                dropped += len(calendar.external) - len(kept)
                calendar.external = kept
            dropped += len(old)
        return dropped

    async def load(self, pool: asyncpg.Pool, checkpoints: Sequence[str] = ("projection:calendars",)) -> None:
        """Start from the `calendars` read model: its rows and checkpoint, read in one snapshot.

        With the projection split into partitions, each has its own checkpoint: the rows hold at least
        everything up to the lowest of them, so following the log from there (re-applying some events,
        which changes nothing) converges on the log.
        """
        horizon = self.clock() - KEEP
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            # Locked before the first read, which fixes the snapshot: a rebuild swapping in fresh tables
            # (projections.swap) commits first, or after we are done; never between, or we would read its
            # tables with an older snapshot and find them empty.
            await conn.execute("lock table rm_providers, rm_reservations, rm_external_busy in access share mode")
            cursors = await conn.fetch("select tx_id::text::bigint, position from checkpoints where name = any($1)",
                                       list(checkpoints))
            row = min(((r[0], r[1]) for r in cursors), default=None) if len(cursors) == len(checkpoints) else None
            providers = await conn.fetch("select provider_id, account_id, schedule from rm_providers")
            reservations = await conn.fetch(
                "select provider_id, reservation_id, kind, extract(epoch from start_at)::bigint,"
                " extract(epoch from end_at)::bigint, buffer_before, buffer_after,"
                " extract(epoch from expires_at)::bigint from rm_reservations"
                " where end_at > to_timestamp($1) - interval '1 day'", horizon)
            external = await conn.fetch(
                "select provider_id, extract(epoch from start_at)::bigint, extract(epoch from end_at)::bigint"
                " from rm_external_busy where end_at > to_timestamp($1) order by provider_id, start_at", horizon)
        self.providers = {r[0]: ProviderCalendar(r[1], _schedule.decode(r[2])) for r in providers}
        for provider_id, rid, kind, start, end, before, after, expires in reservations:
            provider = self.providers.get(provider_id)
            if provider is not None:
                provider.calendar.reservations[rid] = Reservation(rid, kind, start, end, before * 60, after * 60,
                                                                   expires)
        for provider_id, start, end in external:
            provider = self.providers.get(provider_id)
            if provider is not None:
                provider.calendar.external.append((start, end))
        self.cursor = LogCursor(row[0], row[1]) if row else LogCursor()
        self.recent.clear()  # every provider may have changed: no index may catch up from the log
        self.changes += CHANGE_LOG + 1
        self.prune(int(self.clock()))

    async def catch_up(self, pool: asyncpg.Pool, limit: int = 5000) -> int:
        """Apply the next events of the log after `cursor`; return how many events were read."""
        async with pool.acquire() as conn:
            rows = await conn.fetch(_READ, str(self.cursor.tx_id), self.cursor.position, limit)
            events = [decode_event(row[3]) for row in rows if row[2] in EVENT_TYPES]
            missing = self._moved_unknown(events)
            found = {key: decode_event(data) for key in missing
                     if (data := await conn.fetchval(_RESERVED, f"provider-{key[0]}", key[1])) is not None}
        # From here on no await: a query sees the calendars before this batch or after it, never halfway.
        for event in found.values():
            self.apply(event)
        for event in events:
            self.apply(event)
        if rows:
            self.cursor = LogCursor(rows[-1][1], rows[-1][0])
            if self.on_streams is not None:
                self.on_streams([row[4] for row in rows])
        self.applied += len(rows)
        if self._advanced is not None and rows:
            async with self._advanced:
                self._advanced.notify_all()
        return len(rows)

    def _moved_unknown(self, events: list[Event]) -> set[tuple[str, str]]:
        """(provider, reservation) of moves whose reservation this batch will not know (pruned before)."""
        known: set[tuple[str, str]] = set()
        missing: set[tuple[str, str]] = set()
        for event in events:
            if isinstance(event, TimeReserved):
                known.add((event.provider_id, event.reservation_id))
            elif isinstance(event, ReservationMoved):
                key = (event.provider_id, event.reservation_id)
                provider = self.providers.get(event.provider_id)
                if key not in known and provider is not None and event.reservation_id not in \
                        provider.calendar.reservations:
                    missing.add(key)
        return missing

    async def follow(self, pool: asyncpg.Pool, stop: asyncio.Event, idle: float = 0.005,
                     prune_every: float = 60.0, appended: Appended | None = None) -> None:
        """Keep up with the log until `stop` is set; a failed read is retried. Between reads that find nothing
        it rests until an append wakes it (`appended`), or polls every `idle` s without one."""
        self._advanced = asyncio.Condition()
        pruned = time.monotonic()
        waiter = appended.waiter(idle) if appended is not None else None
        while not stop.is_set():
            if waiter is not None:
                waiter.arm()
            try:
                count = await self.catch_up(pool)
            except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
                count = 0
                await asyncio.sleep(0.2)
            except Exception:  # a bug: say so loudly and keep following, never freeze the calendars silently
                log.exception("the in-memory calendars failed to apply a batch; retrying")
                count = 0
                await asyncio.sleep(0.5)
            if time.monotonic() - pruned > prune_every:
                self.prune(int(self.clock()))
                pruned = time.monotonic()
            if not count:
                if waiter is not None:
                    await waiter.rest(False)
                    continue
                try:
                    await asyncio.wait_for(stop.wait(), idle)
                except TimeoutError:
                    continue

    async def wait_for(self, tx_id: int, position: int, timeout: float) -> bool:
        """Wait (at most `timeout` s) until the event (tx_id, position) is applied here; whether it was."""
        if self.has_reached(tx_id, position):
            return True
        if self._advanced is None:
            return False
        try:
            async with self._advanced:
                await asyncio.wait_for(self._advanced.wait_for(lambda: self.has_reached(tx_id, position)), timeout)
        except TimeoutError:
            return False
        return True

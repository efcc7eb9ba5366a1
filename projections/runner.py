"""Running projections: each follows the log in commit order and commits its rows with its checkpoint.

A step locks the projection's checkpoint row, reads the events after it (gap-safe order, see
EventStore.read_all), applies them and moves the checkpoint, all in one transaction: a crash
anywhere leaves the read model and its checkpoint in agreement, so no event is applied twice.
Apply functions are upserts too, so even a replayed event changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import asyncpg

from shared.eventstore import EventStore, LogCursor, RecordedEvent
from shared.eventstore.appended import Appended
from shared.lease import Lease, LeaseLost, holder_name
from shared.lifecycle import sleep_unless_stopped
from shared.messages.events import Event, decode_event

log = logging.getLogger("sched.projections")

MEMBER_PREFIX = "projection-runner#"  # membership seats of the runners sharing the units

Apply = Callable[[asyncpg.Connection, RecordedEvent, Event], Awaitable[None]]
ApplyBatch = Callable[[asyncpg.Connection, list[tuple[RecordedEvent, Event]]], Awaitable[None]]
# A projection's own rebuild from position 0, inside the caller's transaction: it reads the log's events up
# to `end` (see `events_up_to`), writes the whole read model, and returns how many events it read.
Rebuild = Callable[[asyncpg.Connection, LogCursor], Awaitable[int]]


def one_by_one(apply: Apply) -> ApplyBatch:
    """A batch applier that applies each event in turn."""
    async def apply_batch(conn: asyncpg.Connection, batch: list[tuple[RecordedEvent, Event]]) -> None:
        for recorded, event in batch:
            await apply(conn, recorded, event)
    return apply_batch


@dataclass(frozen=True)
class Projection:
    """One read model: its tables, the event types it reads, and how it applies a batch of events (in order).

    `kinds` names the aggregates (registry.STREAM_KINDS) it is a read model of: every event type their
    streams hold is in `event_types` (applied) or in `ignores` (left alone on purpose).
    """

    name: str
    tables: Sequence[str]
    event_types: frozenset[str]
    apply: ApplyBatch
    kinds: frozenset[str] = frozenset()
    ignores: frozenset[str] = frozenset()
    # A partition applies only the events of the streams that hash to it (`partition_of`), with its own
    # checkpoint; `partitions` 1 is the whole projection. Only read models whose rows never mix streams
    # (calendars: each provider's own rows) may be split.
    partitions: int = 1
    partition: int = 0
    # Rebuilding the whole projection (not one partition) with its own fold instead of replaying batches.
    rebuild: Rebuild | None = None

    @property
    def checkpoint(self) -> str:
        """The name of this projection's (or partition's) row in `checkpoints`."""
        if self.partitions == 1:
            return f"projection:{self.name}"
        return f"projection:{self.name}#{self.partition}/{self.partitions}"

    def owns(self, stream_id: str) -> bool:
        """Whether events of `stream_id` are this partition's to apply."""
        return self.partitions == 1 or partition_of(stream_id, self.partitions) == self.partition


def partition_of(stream_id: str, partitions: int) -> int:
    """The partition of a stream: a hash that is the same in every process (unlike hash())."""
    return zlib.crc32(stream_id.encode()) % partitions


def partitioned(projection: Projection, partitions: int) -> list[Projection]:
    """The projection as `partitions` units, each following the log with its own checkpoint."""
    if partitions <= 1:
        return [projection]
    return [dataclasses.replace(projection, partitions=partitions, partition=i) for i in range(partitions)]


# ORDER BY names events.tx_id: a bare tx_id would mean the selected text->bigint cast, which the
# events_feed index cannot serve, and every batch would sort the rest of the log.
_READ = (
    "select position, id, stream_id, version, type, account_id, data, occurred_at, tx_id::text::bigint"
    " from events where (tx_id, position) > ($1::text::xid8, $2)"
    " and tx_id < pg_snapshot_xmin(pg_current_snapshot()) order by events.tx_id, events.position limit $3"
)


async def _locked_cursor(conn: asyncpg.Connection, projection: Projection) -> LogCursor:
    await conn.execute("insert into checkpoints (name) values ($1) on conflict do nothing", projection.checkpoint)
    row = await conn.fetchrow("select tx_id::text::bigint, position from checkpoints where name = $1 for update",
                              projection.checkpoint)
    return LogCursor(row[0], row[1])


async def _apply_batch(conn: asyncpg.Connection, projection: Projection, cursor: LogCursor,
                       limit: int) -> tuple[int, LogCursor]:
    rows = await conn.fetch(_READ, str(cursor.tx_id), cursor.position, limit)
    wanted = [RecordedEvent(*row) for row in rows if row[4] in projection.event_types and projection.owns(row[2])]
    if wanted:
        await projection.apply(conn, [(recorded, decode_event(recorded.data)) for recorded in wanted])
    if rows:
        last = rows[-1]
        cursor = LogCursor(last[8], last[0])
        await conn.execute("update checkpoints set tx_id = $2::text::xid8, position = $3, updated_at = now()"
                           " where name = $1", projection.checkpoint, str(cursor.tx_id), cursor.position)
    return len(rows), cursor


async def step(pool: asyncpg.Pool, projection: Projection, limit: int = 1000, lease: Lease | None = None) -> int:
    """Apply the next batch of events to one projection; return how many events were read (fenced by `lease`)."""
    async with pool.acquire() as conn, conn.transaction():
        if lease is not None:
            await lease.fence(conn)
        cursor = await _locked_cursor(conn, projection)
        count, _ = await _apply_batch(conn, projection, cursor, limit)
        return count


async def rebuild(pool: asyncpg.Pool, projection: Projection, batch: int = 5000) -> int:
    """Rebuild from position 0 in one transaction: readers keep the old rows until it commits.

    Returns how many events were read: every event for a replay in batches, only the projection's own
    types for one with its own `rebuild` (which reads just those).
    """
    async with pool.acquire() as conn, conn.transaction():
        await _locked_cursor(conn, projection)  # the live runner waits on this lock meanwhile
        await conn.execute("select 1 from checkpoints where name like $1 for update", f"{projection.checkpoint}#%")
        if projection.rebuild is not None and projection.partitions == 1:
            cursor = await _log_end(conn)
            total = await projection.rebuild(conn, cursor)
        else:
            for table in projection.tables:
                await conn.execute(f"delete from {table}")
            cursor, total = LogCursor(), 0
            while True:
                count, cursor = await _apply_batch(conn, projection, cursor, batch)
                total += count
                if count < batch:
                    break
        await conn.execute("update checkpoints set tx_id = $2::text::xid8, position = $3, updated_at = now()"
                           " where name = $1", projection.checkpoint, str(cursor.tx_id), cursor.position)
        # Its partitions (when it runs split) resume from the rebuilt state too.
        await conn.execute("update checkpoints set tx_id = $2::text::xid8, position = $3, updated_at = now()"
                           " where name like $1", f"{projection.checkpoint}#%", str(cursor.tx_id), cursor.position)
        return total


async def _log_end(conn: asyncpg.Connection) -> LogCursor:
    """The last event of the log older than every running transaction: everything up to it is final
    (the gap-safe bound of `_READ`, taken once), and every later event sorts after it."""
    row = await conn.fetchrow(
        "select tx_id::text::bigint, position from events where tx_id < pg_snapshot_xmin(pg_current_snapshot())"
        " order by events.tx_id desc, events.position desc limit 1")
    return LogCursor(row[0], row[1]) if row else LogCursor()


_READ_TYPES = (
    "select tx_id::text::bigint, position, data from events where (tx_id, position) > ($1::text::xid8, $2)"
    " and (tx_id, position) <= ($3::text::xid8, $4) and type = any($5::text[])"
    " order by events.tx_id, events.position limit $6"
)


async def events_up_to(conn: asyncpg.Connection, event_types: frozenset[str], end: LogCursor,
                       batch: int = 10_000) -> AsyncIterator[list[bytes]]:
    """The data of the log's events of `event_types` up to `end`, in commit order, a batch at a time.

    The next batch is asked for before this one is handed over, so Postgres reads it while the caller
    folds this one. Only what the projection applies crosses the wire.
    """
    types, tx_end = sorted(event_types), str(end.tx_id)

    def fetch(after: LogCursor) -> asyncio.Future[list[asyncpg.Record]]:
        return asyncio.ensure_future(conn.fetch(_READ_TYPES, str(after.tx_id), after.position, tx_end, end.position,
                                                types, batch))

    pending: asyncio.Future[list[asyncpg.Record]] | None = fetch(LogCursor())
    try:
        while pending is not None:
            rows = await pending
            pending = fetch(LogCursor(rows[-1][0], rows[-1][1])) if len(rows) == batch else None
            yield [row[2] for row in rows]
    finally:
        if pending is not None:  # the caller stopped early: let the read end before the connection goes on
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, asyncpg.PostgresError):
                await pending


@dataclass
class ProjectionRunner:
    """Keeps every projection (or partition) caught up with the log.

    With `shared` (several runners, `python -m projections` in cluster mode) each unit is a
    single-active role: a runner follows only the units whose lease it holds, and takes at most its
    fair share (the units divided by the runners alive, rounded up), so runners that join or die
    rebalance within a lease's length. Each step is fenced by its unit's lease.
    """

    pool: asyncpg.Pool
    projections: Sequence[Projection]
    idle_sleep: float = 0.01
    batch: int = 1000
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    shared: bool = False
    lease_ttl: float = 5.0
    holder: str = field(default_factory=holder_name)
    leases: dict[str, Lease] = field(default_factory=dict)
    appended: Appended | None = None  # wakes the units when an append commits (else they poll every idle_sleep)

    async def catch_up(self) -> int:
        """Apply every projection up to the end of the visible log; return how many events were applied."""
        total = 0
        for projection in self.projections:
            while (count := await step(self.pool, projection, self.batch)):
                total += count
        return total

    async def run(self) -> None:
        """Follow the log with every projection until `stop` is set (a failed batch is logged and retried)."""
        if self.shared:
            self.leases = {p.checkpoint: Lease(self.pool, p.checkpoint, self.lease_ttl, self.holder)
                           for p in self.projections}
            await asyncio.gather(self._balance(self.holder), *[self._follow(p) for p in self.projections])
        else:
            await asyncio.gather(*[self._follow(p) for p in self.projections])

    async def _join(self, member: Lease | None, holder: str) -> Lease | None:
        """Hold a membership seat: renew ours, or take the lowest free one (`projection-runner#k`).

        Seats, not one row per process: a runner that restarts takes a free seat again, so the
        `leases` table holds no more membership rows than runners were ever alive at once.
        """
        if member is not None and member.held() and await member.renew():
            return member
        seat = 0
        while True:
            candidate = Lease(self.pool, f"{MEMBER_PREFIX}{seat}", self.lease_ttl, holder)
            if await candidate.try_acquire():
                return candidate
            if not await self.pool.fetchval("select true from leases where name = $1", candidate.name):
                return None  # a free seat we could not take (a race): try again next round
            seat += 1

    async def _balance(self, holder: str) -> None:
        """Keep our membership alive, renew what we hold, take or hand back units towards a fair share."""
        member: Lease | None = None
        while not self.stop.is_set():
            try:
                member = await self._join(member, holder)
                runners = await self.pool.fetchval(
                    "select count(*) from leases where name like $1 and expires_at > clock_timestamp()",
                    f"{MEMBER_PREFIX}%")
                share = math.ceil(len(self.leases) / max(1, int(runners)))
                for lease in self.leases.values():
                    if lease.token is not None and not (lease.held() and await lease.renew()):
                        lease.lose()
                held = [lease for lease in self.leases.values() if lease.held()]
                if len(held) > share:
                    await held[-1].release()  # another runner picks it up
                for lease in self.leases.values():
                    if len(held) >= share:
                        break
                    if lease.token is None and await lease.try_acquire():
                        held.append(lease)
            except Exception as exc:  # noqa: BLE001 - the database away, or anything else: keep balancing
                log.warning("projection leases: %s: %s", type(exc).__name__, exc)
            await sleep_unless_stopped(self.stop, self.lease_ttl / 5)
        for lease in self.leases.values():
            await lease.release()
        if member is not None:
            await member.release()

    async def _follow(self, projection: Projection) -> None:
        lease = self.leases.get(projection.checkpoint)
        waiter = self.appended.waiter(self.idle_sleep) if self.appended is not None else None
        while not self.stop.is_set():
            if lease is not None and not lease.held():
                await sleep_unless_stopped(self.stop, 0.2)
                continue
            if waiter is not None:
                waiter.arm()
            try:
                count = await step(self.pool, projection, self.batch, lease)
            except LeaseLost:
                log.warning("projection %s: lease lost; standing by", projection.checkpoint)
                count = 0
            except Exception:
                log.exception("projection %s failed; retrying", projection.name)
                count = 0
                await asyncio.sleep(0.5)
            if count < self.batch:
                if waiter is not None:
                    await waiter.rest(count > 0)
                else:
                    await sleep_unless_stopped(self.stop, self.idle_sleep)


async def status(pool: asyncpg.Pool, projections: Sequence[Projection]) -> list[dict[str, object]]:
    """Position and lag (events not yet applied) per projection."""
    head = await log_head(pool)
    rows = []
    for projection in projections:
        row = await pool.fetchrow("select tx_id::text::bigint, position, updated_at from checkpoints where name = $1",
                                  projection.checkpoint)
        tx_id, position = (row[0], row[1]) if row else (0, 0)
        lag = await pool.fetchval("select count(*) from events where (tx_id, position) > ($1::text::xid8, $2)",
                                  str(tx_id), position)
        rows.append({"name": projection.checkpoint.removeprefix("projection:"), "position": position, "head": head, "lag": lag,
                     "updated_at": row[2].isoformat() if row else None})
    return rows


async def log_head(pool: asyncpg.Pool) -> int:
    """The position of the newest event in the log (0 when empty)."""
    return await EventStore(pool).head_position()


async def tx_of(pool: asyncpg.Pool, position: int) -> int | None:
    """The transaction id of the event at `position`, or None when there is no such event (yet)."""
    tx_id = await pool.fetchval("select tx_id::text::bigint from events where position = $1", position)
    return None if tx_id is None else int(tx_id)


async def applied_everywhere(pool: asyncpg.Pool, projections: Sequence[Projection], tx_id: int,
                             position: int) -> bool:
    """Whether every projection's checkpoint has passed the event (tx_id, position)."""
    behind = await pool.fetchval(
        "select count(*) from unnest($1::text[]) as n(name) left join checkpoints c on c.name = n.name"
        " where c.name is null or (c.tx_id, c.position) < ($2::text::xid8, $3)",
        [p.checkpoint for p in projections], str(tx_id), position)
    return not behind

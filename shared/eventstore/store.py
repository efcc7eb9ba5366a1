"""The Postgres event store: optimistic appends, idempotent commands, a gap-safe global feed."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import NamedTuple

import asyncpg
import msgspec

from shared.errors import VersionConflict
from shared.eventstore.appended import announce


class NewEvent(NamedTuple):
    """An event about to be appended: its id, type tag and JSON body."""

    id: str
    type: str
    data: bytes


class StreamAppend(NamedTuple):
    """Events for one stream, valid only if the stream is still at `expected_version` (0 = new)."""

    stream_id: str
    expected_version: int
    events: list[NewEvent]


class LogCursor(NamedTuple):
    """A follower's place in the feed: the (transaction id, position) of the last event it handled."""

    tx_id: int = 0
    position: int = 0


class RecordedEvent(msgspec.Struct, frozen=True):
    """An event as stored, with its global position and writing transaction."""

    position: int
    id: str
    stream_id: str
    version: int
    type: str
    account_id: str
    data: bytes
    occurred_at: datetime
    tx_id: int

    @property
    def cursor(self) -> LogCursor:
        """Where a follower stands once it has handled this event."""
        return LogCursor(self.tx_id, self.position)


class StoredReply(NamedTuple):
    """The reply recorded with a command's append: which command, whose, the reply bytes and its position."""

    command_name: str
    account_id: str
    reply: bytes
    position: int


class DuplicateCommand(Exception):
    """The command id was already recorded (by this call's concurrent twin)."""


_COLUMNS = "position, id, stream_id, version, type, account_id, data, occurred_at, tx_id::text::bigint"


async def init_connection(conn: asyncpg.Connection) -> None:
    """Pass jsonb through as raw JSON bytes: msgspec encodes and decodes it, nothing parses twice."""
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", format="binary",
        encoder=lambda value: b"\x01" + value, decoder=lambda value: value[1:],
    )


async def _release(conn: asyncpg.Connection) -> None:
    """Connections go back to the pool without asyncpg's reset query (a round trip on every release):
    nothing here leaves session state behind, and locks are released explicitly where taken."""
    if conn.is_in_transaction():
        await conn.execute("rollback")


async def create_pool(url: str, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """A connection pool whose connections speak raw JSON for jsonb."""
    pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, init=init_connection,
                                     reset=_release)
    assert pool is not None
    return pool


def _record(row: asyncpg.Record) -> RecordedEvent:
    return RecordedEvent(*row)


class EventStore:
    """Append to and read from the event log of one database."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def append(
        self,
        appends: list[StreamAppend],
        *,
        command_id: str | None,
        command_name: str,
        account_id: str,
        reply: bytes = b"{}",
    ) -> int:
        """Append to every stream atomically and record the command's reply; return the last position.

        Raises VersionConflict when a stream moved past its expected version and DuplicateCommand
        when `command_id` is already recorded. Nothing is written in either case.
        """
        ids: list[str] = []
        types: list[str] = []
        data: list[bytes] = []
        for append in appends:
            for event in append.events:
                ids.append(event.id)
                types.append(event.type)
                data.append(event.data)
        try:
            async with self.pool.acquire() as conn:
                position = await conn.fetchval(
                    "select sched_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    command_id, command_name, account_id, reply,
                    [a.stream_id for a in appends], [a.expected_version for a in appends],
                    [len(a.events) for a in appends], ids, types, data,
                )
                with contextlib.suppress(asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
                    await announce(conn)  # committed already: a lost wake-up only delays the followers
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "command_replies_pkey":
                raise DuplicateCommand(command_id) from exc
            # (stream_id, version) taken: another writer won a race the streams row did not catch.
            raise VersionConflict(appends[0].stream_id) from exc
        except asyncpg.PostgresError as exc:
            if exc.sqlstate == "SC409":
                raise VersionConflict(getattr(exc, "detail", "") or "") from exc
            raise
        return int(position)

    async def stored_reply(self, command_id: str) -> StoredReply | None:
        """The reply recorded for a command id, if that command already took effect."""
        row = await self.pool.fetchrow(
            "select command_name, account_id, reply, position from command_replies where command_id = $1",
            command_id,
        )
        return StoredReply(*row) if row else None

    async def read_stream(self, stream_id: str, after_version: int = 0) -> list[RecordedEvent]:
        """Events of one stream with version > after_version, in version order."""
        rows = await self.pool.fetch(
            f"select {_COLUMNS} from events where stream_id = $1 and version > $2 order by version",
            stream_id, after_version,
        )
        return [_record(r) for r in rows]

    async def read_streams(self, stream_ids: list[str]) -> list[RecordedEvent]:
        """Events of several streams, each in version order (streams interleaved by position)."""
        rows = await self.pool.fetch(
            f"select {_COLUMNS} from events where stream_id = any($1) order by position", stream_ids
        )
        return [_record(r) for r in rows]

    async def stream_version(self, stream_id: str) -> int:
        """The stream's current version (0 when it has no events)."""
        version = await self.pool.fetchval("select version from streams where stream_id = $1", stream_id)
        return int(version or 0)

    async def read_all(self, after: LogCursor = LogCursor(), limit: int = 500) -> list[RecordedEvent]:
        """The next events of the whole log after `after`, in a stable commit-safe order.

        Only transactions older than every still-running one are visible (`tx_id <
        pg_snapshot_xmin`): their set can no longer change, so a follower that remembers the last
        (tx_id, position) it saw never misses an event that committed late.
        """
        # events.tx_id in ORDER BY: the bare name is the selected cast, which no index serves.
        rows = await self.pool.fetch(
            f"select {_COLUMNS} from events"
            " where (tx_id, position) > ($1::text::xid8, $2)"
            "   and tx_id < pg_snapshot_xmin(pg_current_snapshot())"
            " order by events.tx_id, events.position limit $3",
            str(after.tx_id), after.position, limit,
        )
        return [_record(r) for r in rows]

    async def head_position(self) -> int:
        """The highest position written so far (committed or not yet visible to followers)."""
        return int(await self.pool.fetchval("select coalesce(max(position), 0) from events"))

    async def load_checkpoint(self, name: str) -> LogCursor:
        """Where the follower `name` stands (the start of the log when it has never saved)."""
        row = await self.pool.fetchrow(
            "select tx_id::text::bigint, position from checkpoints where name = $1", name
        )
        return LogCursor(*row) if row else LogCursor()

    async def save_checkpoint(self, name: str, cursor: LogCursor, conn: asyncpg.Connection | None = None) -> None:
        """Record a follower's progress (in the caller's transaction when `conn` is given)."""
        await (conn or self.pool).execute(
            "insert into checkpoints (name, tx_id, position, updated_at) values ($1, $2::text::xid8, $3, now())"
            " on conflict (name) do update set tx_id = excluded.tx_id, position = excluded.position,"
            " updated_at = now()",
            name, str(cursor.tx_id), cursor.position,
        )

"""The event store against a real Postgres: concurrency, commit-order reads, idempotency."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from shared.errors import VersionConflict
from shared.eventstore import DuplicateCommand, EventStore, LogCursor, NewEvent, StreamAppend, init_connection
from shared.ids import new_id

pytestmark = pytest.mark.integration


def one_event(tag: str = "thing_happened") -> list[NewEvent]:
    return [NewEvent(new_id("evt"), tag, b'{"type": "%s"}' % tag.encode())]


async def test_twenty_concurrent_appenders_get_versions_without_gaps_and_losers_get_conflicts(store: EventStore):
    stream = "race-" + new_id("s")
    outcomes: list[str] = []

    async def appender(rounds: int) -> None:
        for _ in range(rounds):
            while True:
                version = await store.stream_version(stream)
                try:
                    await store.append([StreamAppend(stream, version, one_event())], command_id=None,
                                       command_name="test", account_id="acct_test")
                    outcomes.append("won")
                    break
                except VersionConflict:
                    outcomes.append("conflict")

    await asyncio.gather(*[appender(5) for _ in range(20)])

    versions = [e.version for e in await store.read_stream(stream)]
    assert versions == list(range(1, 101))
    assert outcomes.count("won") == 100
    assert outcomes.count("conflict") > 0  # 20 writers on one stream must have collided


async def test_same_expected_version_from_twenty_writers_has_exactly_one_winner(store: EventStore):
    stream = "race-" + new_id("s")
    await store.append([StreamAppend(stream, 0, one_event())], command_id=None, command_name="t", account_id="a")

    async def attempt() -> str:
        try:
            await store.append([StreamAppend(stream, 1, one_event())], command_id=None, command_name="t",
                               account_id="a")
            return "won"
        except VersionConflict:
            return "conflict"

    results = await asyncio.gather(*[attempt() for _ in range(20)])
    assert results.count("won") == 1 and results.count("conflict") == 19
    assert [e.version for e in await store.read_stream(stream)] == [1, 2]


async def test_multi_stream_append_is_all_or_nothing(store: EventStore):
    a, b = "a-" + new_id("s"), "b-" + new_id("s")
    await store.append([StreamAppend(b, 0, one_event())], command_id=None, command_name="t", account_id="x")
    with pytest.raises(VersionConflict):
        # a is new and fine, b is stale: nothing of the append may land
        await store.append([StreamAppend(a, 0, one_event()), StreamAppend(b, 0, one_event())],
                           command_id="cmd-" + new_id("c"), command_name="t", account_id="x")
    assert await store.read_stream(a) == []
    assert await store.stream_version(a) == 0


async def _append_in_open_transaction(conn: asyncpg.Connection, stream: str, event_id: str) -> int:
    return await conn.fetchval(
        "select sched_append(null, 't', 'acct', ''::bytea, $1, $2, $3, $4, $5, $6)",
        [stream], [0], [1], [event_id], ["late"], [b'{"type": "late"}'],
    )


async def _follow(store: EventStore, cursor: LogCursor, seen: list[int]) -> LogCursor:
    for event in await store.read_all(cursor, limit=1000):
        seen.append(event.position)
        cursor = event.cursor
    return cursor


@pytest.mark.parametrize("late_has_older_xid", [True, False])
async def test_read_all_never_skips_a_lower_position_that_commits_late(
    store: EventStore, database_url: str, late_has_older_xid: bool
):
    early = await asyncpg.connect(database_url)  # will commit first, with the HIGHER position
    late = await asyncpg.connect(database_url)  # takes the LOWER position, commits last
    for conn in (early, late):
        await init_connection(conn)
    try:
        early_tx, late_tx = early.transaction(), late.transaction()
        await early_tx.start()
        await late_tx.start()
        if late_has_older_xid:
            await late.fetchval("select pg_current_xact_id()")  # late's xid is assigned first
        else:
            await early.fetchval("select pg_current_xact_id()")
        late_id, early_id = new_id("evt"), new_id("evt")
        late_position = await _append_in_open_transaction(late, "late-" + new_id("s"), late_id)
        early_position = await _append_in_open_transaction(early, "early-" + new_id("s"), early_id)
        assert late_position < early_position
        await early_tx.commit()

        seen: list[int] = []
        cursor = await _follow(store, LogCursor(), seen)  # the follower moves on while `late` is open
        await late_tx.commit()
        await _follow(store, cursor, seen)
        assert sorted(seen) == sorted([late_position, early_position])
        assert len(seen) == 2
    finally:
        await early.close()
        await late.close()


async def test_read_all_under_concurrent_writers_sees_every_event_once(store: EventStore):
    written: list[int] = []
    seen: list[int] = []
    done = asyncio.Event()

    async def writer() -> None:
        for _ in range(40):
            written.append(await store.append([StreamAppend("w-" + new_id("s"), 0, one_event())],
                                              command_id=None, command_name="t", account_id="a"))

    async def follower() -> None:
        cursor = LogCursor()
        while not done.is_set() or len(seen) < len(written):
            cursor = await _follow(store, cursor, seen)
            await asyncio.sleep(0)

    follow_task = asyncio.create_task(follower())
    await asyncio.gather(*[writer() for _ in range(8)])
    done.set()
    await asyncio.wait_for(follow_task, timeout=30)
    assert sorted(seen) == sorted(written)
    assert len(seen) == len(set(seen)) == 320


async def test_duplicate_command_id_appends_once(store: EventStore):
    command_id = "cmd-" + new_id("c")

    async def attempt(i: int) -> str:
        try:
            await store.append([StreamAppend(f"dup-{i}-" + new_id("s"), 0, one_event())], command_id=command_id,
                               command_name="t", account_id="a", reply=b'{"n": 1}')
            return "appended"
        except DuplicateCommand:
            return "duplicate"

    results = await asyncio.gather(*[attempt(i) for i in range(30)])
    assert results.count("appended") == 1
    stored = await store.stored_reply(command_id)
    assert stored is not None and stored.reply == b'{"n": 1}' and stored.position > 0
    assert len(await store.read_all(LogCursor())) == 1

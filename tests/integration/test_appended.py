"""Followers rest until an append commits (shared.eventstore.appended), against the real Postgres.

Stories: a committed append wakes a follower resting on it, long before its fallback would; a LISTEN
connection that Postgres ends is made again, and appends after that still wake the followers; a follower
that got no notification at all still reads again after the fallback.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from shared.eventstore import EventStore, NewEvent, StreamAppend
from shared.eventstore import appended as appended_module
from shared.eventstore.appended import Appended
from shared.ids import new_id

pytestmark = pytest.mark.integration


async def _append(store: EventStore) -> None:
    stream = new_id("stream")
    await store.append([StreamAppend(stream, 0, [NewEvent(new_id("evt"), "t", b'{"type": "t"}')])],
                       command_id=None, command_name="t", account_id="a")


async def _woken_by_an_append(appended: Appended, store: EventStore) -> bool:
    """Whether a follower resting (not hot: until a notification, or the hour) is woken by an append."""
    waiter = appended.waiter(0.005)
    waiter.hot_until = 0.0
    waiter.arm()
    resting = asyncio.create_task(_rested(waiter))
    await asyncio.sleep(0.05)
    await _append(store)
    return await resting


async def _rested(waiter: appended_module.Waiter, within: float = 10.0) -> bool:
    """Whether a rest (the fallback made an hour long) ended within `within` s."""
    try:
        await asyncio.wait_for(waiter.rest(False), within)
    except TimeoutError:
        return False
    return True


async def test_a_committed_append_wakes_a_resting_follower(database_url: str, store: EventStore,
                                                           monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(appended_module, "FALLBACK_SECONDS", 3600.0)
    appended = Appended(database_url)
    await appended.start()
    try:
        assert appended.listening.is_set()
        waiter = appended.waiter(0.005)
        waiter.hot_until = 0.0  # not hot: the rest lasts until a notification (or the hour)
        waiter.arm()
        assert not await _rested(waiter, within=0.5)  # nothing appended: it keeps resting
        assert await _woken_by_an_append(appended, store)
    finally:
        await appended.close()


async def test_a_listen_connection_postgres_ends_is_made_again(database_url: str, store: EventStore,
                                                               pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(appended_module, "FALLBACK_SECONDS", 3600.0)
    monkeypatch.setattr(appended_module, "RECONNECT_SECONDS", 0.05)
    appended = Appended(database_url)
    await appended.start()
    try:
        ended = await pool.fetchval("select count(pg_terminate_backend(pid)) from pg_stat_activity"
                                    " where query like 'LISTEN%' and datname = current_database()")
        assert ended == 1
        for _ in range(200):  # it notices the loss, then listens again
            if not appended.listening.is_set():
                break
            await asyncio.sleep(0.01)
        await asyncio.wait_for(appended.listening.wait(), 10)
        assert await _woken_by_an_append(appended, store)
    finally:
        await appended.close()


async def test_without_any_notification_a_follower_reads_again_after_the_fallback(
        database_url: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(appended_module, "FALLBACK_SECONDS", 0.2)
    waiter = Appended(database_url).waiter(0.005)  # never started: no notification can come
    waiter.arm()
    assert await _rested(waiter, within=10.0)
    assert not waiter.event.is_set()

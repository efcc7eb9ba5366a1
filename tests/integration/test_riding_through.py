"""Clients ride through failures: commands whose connections are cut mid-flight take effect once each."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import nats
import pytest

from shared.eventstore import EventStore, LogCursor
from shared.settings import Settings
from tests.integration.messaging import new_account, send

pytestmark = pytest.mark.integration


async def test_commands_survive_connections_cut_mid_flight_and_take_effect_once(
    nc: nats.NATS, settings: Settings, command_service, store: EventStore, servers
) -> None:
    """Every connection of the test database is cut, eight times, while 60 commands run: each lands once."""
    account = await new_account(nc, settings)
    ids = {"account_id": account["account_id"], "user_id": account["user_id"]}
    database = settings.database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(servers.database_admin_url)
    cuts = 0

    async def cut_connections() -> None:  # like eight restarts of Postgres, a quarter second apart
        nonlocal cuts
        for _ in range(8):
            cuts += await admin.fetchval(
                "select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity"
                " where datname = $1 and pid <> pg_backend_pid()) t", database)
            await asyncio.sleep(0.25)

    command_ids = [f"ride-{uuid.uuid4().hex}" for _ in range(60)]
    cutter = asyncio.create_task(cut_connections())
    try:
        replies = []
        for wave in range(0, len(command_ids), 10):  # spread over the cuts
            replies += await asyncio.gather(*[
                send(nc, settings, "create_link", {**ids, "command_id": cid, "name": f"Link {n}"}, timeout=30)
                for n, cid in enumerate(command_ids[wave:wave + 10], start=wave)])
            await asyncio.sleep(0.05)
    finally:
        await cutter
        await admin.close()
    assert cuts > 0, "no connection was cut; the test proved nothing"
    assert [r["ok"] for r in replies].count(True) == len(command_ids), [r for r in replies if not r["ok"]][:3]
    again = [await send(nc, settings, "create_link", {**ids, "command_id": cid, "name": f"Link {n}"})
             for n, cid in enumerate(command_ids)]
    assert [r["result"]["id"] for r in again] == [r["result"]["id"] for r in replies]  # one result per id
    created = [e for e in await store.read_all(LogCursor(), limit=100_000) if e.type == "link_created"]
    assert len(created) == len(command_ids)  # each once in the log

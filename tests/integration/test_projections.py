"""Read models built incrementally equal a rebuild from position 0, and survive a SIGKILL."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from datetime import timedelta

import asyncpg
import nats
import pytest

from projections import PROJECTIONS
from projections.runner import ProjectionRunner, rebuild, status
from shared.settings import Settings
from tests.integration.booking_setup import Bookable, bookable_account, iso, weekday_at
from tests.integration.messaging import send

pytestmark = pytest.mark.integration


async def snapshot(pool: asyncpg.Pool) -> dict[str, list[tuple]]:
    """Every read-model table, rows sorted: what "equal" means."""
    tables: dict[str, list[tuple]] = {}
    for projection in PROJECTIONS.values():
        for table in projection.tables:
            rows = await pool.fetch(f"select * from {table}")
            tables[table] = sorted(tuple(str(v) for v in r.values()) for r in rows)
    return tables


async def random_commands(nc: nats.NATS, settings: Settings, account: Bookable, count: int, seed: int) -> int:
    """A random mix of commands (many rejected), as traffic would bring; returns how many succeeded."""
    rng = random.Random(seed)
    events: list[str] = []
    holds: list[str] = []
    appointments: list[str] = []
    blocks: list[str] = []
    ok = 0
    for i in range(count):
        start = weekday_at(2, 0) + timedelta(minutes=15 * rng.randrange(0, 400))
        choice = rng.random()
        if choice < 0.3:
            reply = await send(nc, settings, "create_event", account.event_body(start, name=f"S{i}"))
            events += [reply["result"]["id"]] if reply["ok"] else []
        elif choice < 0.4 and events:
            reply = await send(nc, settings, "cancel_event", {**account.ids, "event_id": rng.choice(events)})
        elif choice < 0.5 and events:
            reply = await send(nc, settings, "reschedule_event", {
                **account.ids, "event_id": rng.choice(events), "start_at": iso(start),
                "end_at": iso(start + timedelta(minutes=30))})
        elif choice < 0.6:
            reply = await send(nc, settings, "hold_slot", {**account.ids, "service_id": account.service_id,
                                                           "start_at": iso(start)})
            holds += [reply["result"]["id"]] if reply["ok"] else []
        elif choice < 0.65 and holds:
            reply = await send(nc, settings, "release_hold", {**account.ids, "booking_intent_id": rng.choice(holds)})
        elif choice < 0.75:
            reply = await send(nc, settings, "create_appointment", {
                **account.ids, "service_id": account.service_id, "start_at": iso(start), "display_name": "C",
                "email": "c@example.com", "time_zone": "Etc/UTC"})
            appointments += [reply["result"]["id"]] if reply["ok"] else []
        elif choice < 0.8 and appointments:
            reply = await send(nc, settings, "cancel_appointment", {**account.ids,
                                                                    "appointment_id": rng.choice(appointments)})
        elif choice < 0.85:
            reply = await send(nc, settings, "create_block", {
                **account.ids, "attachment_type": rng.choice(["provider", "service"]),
                "attachment_id": account.provider_id if rng.random() < 0.5 else account.service_id,
                "start_at": iso(start), "end_at": iso(start + timedelta(minutes=45))})
            blocks += [reply["result"]["id"]] if reply["ok"] else []
        elif choice < 0.88 and blocks:
            reply = await send(nc, settings, "delete_block", {**account.ids, "block_id": blocks.pop()})
        elif choice < 0.93:
            reply = await send(nc, settings, "sync_external_busy_times", {
                **account.ids, "provider_id": account.provider_id, "from": iso(start),
                "until": iso(start + timedelta(hours=6)),
                "busy_times": [{"start_at": iso(start + timedelta(hours=1)),
                                "end_at": iso(start + timedelta(hours=2))}]})
        elif choice < 0.96:
            reply = await send(nc, settings, "update_link", {**account.ids, "link_id": account.link_id,
                                                             "buffer_after": rng.choice([0, 5, 10])})
        else:
            reply = await send(nc, settings, "create_link", {**account.ids, "name": f"Link {i % 7}"})
        ok += bool(reply["ok"])
    return ok


async def test_incremental_read_models_equal_a_rebuild_from_zero(command_service, nc: nats.NATS,
                                                                 settings: Settings, pool: asyncpg.Pool):
    account = await bookable_account(nc, settings)
    runner = ProjectionRunner(pool, list(PROJECTIONS.values()))
    follow = asyncio.create_task(runner.run())  # incremental: applies while commands arrive
    succeeded = await random_commands(nc, settings, account, count=2000, seed=7)
    assert succeeded > 500
    await asyncio.sleep(0.2)
    runner.stop.set()
    await follow
    await runner.catch_up()
    incremental = await snapshot(pool)
    assert len(incremental["rm_reservations"]) > 50 and len(incremental["rm_resources"]) > 200
    for projection in PROJECTIONS.values():
        await rebuild(pool, projection)
    assert await snapshot(pool) == incremental
    assert all(row["lag"] == 0 for row in await status(pool, list(PROJECTIONS.values())))


async def test_replaying_applied_events_changes_nothing(command_service, nc: nats.NATS, settings: Settings,
                                                        pool: asyncpg.Pool):
    account = await bookable_account(nc, settings)
    await random_commands(nc, settings, account, count=200, seed=3)
    runner = ProjectionRunner(pool, list(PROJECTIONS.values()))
    await runner.catch_up()
    before = await snapshot(pool)
    await pool.execute("update checkpoints set tx_id = '0', position = 0 where name like 'projection:%'")
    await runner.catch_up()  # every event applied a second time
    assert await snapshot(pool) == before


async def test_projector_killed_mid_batch_ends_equal_to_a_rebuild(command_service, nc: nats.NATS,
                                                                  settings: Settings, pool: asyncpg.Pool,
                                                                  settings_env: dict[str, str]):
    account = await bookable_account(nc, settings)
    await random_commands(nc, settings, account, count=1500, seed=11)
    proc = subprocess.Popen([sys.executable, "-m", "projections"], env=settings_env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None and "ready" in proc.stdout.readline()
    while True:  # kill it while it is part-way through the log
        rows = await status(pool, list(PROJECTIONS.values()))
        if any(r["position"] > 0 for r in rows):
            break
        await asyncio.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert any(r["lag"] > 0 for r in await status(pool, list(PROJECTIONS.values()))), "finished before the kill"
    proc = subprocess.Popen([sys.executable, "-m", "projections"], env=settings_env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while any(r["lag"] > 0 for r in await status(pool, list(PROJECTIONS.values()))):
            await asyncio.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    after_restart = await snapshot(pool)
    for projection in PROJECTIONS.values():
        await rebuild(pool, projection)
    assert await snapshot(pool) == after_restart

"""Partitioned projections: runners share the calendars' partitions by leases, rebalance, and project the same rows."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import msgspec
import pytest

from projections import runnable
from projections.app import bootstrap as projections_bootstrap
from projections.runner import applied_everywhere, log_head, partition_of, tx_of
from shared.eventstore import EventStore, NewEvent, StreamAppend
from shared.settings import Settings
from tests.fixtures.golden import READ_MODELS_PATH, read_log
from tests.integration.test_event_log_golden import read_models
from tests.integration.test_relay import wait_for

pytestmark = pytest.mark.integration

PATIENCE = 120.0


async def _holders(pool: asyncpg.Pool) -> dict[str, str]:
    rows = await pool.fetch("select name, holder from leases where name like 'projection:%'"
                            " and expires_at > clock_timestamp()")
    return {row["name"]: row["holder"].split(":")[-1] for row in rows}


def test_partitions_split_providers_the_same_way_in_every_process() -> None:
    """crc32, not hash(): a provider's partition does not depend on the process."""
    assert partition_of("provider-prov_1", 4) == partition_of("provider-prov_1", 4) in range(4)
    assert {partition_of(f"provider-prov_{n}", 4) for n in range(50)} == {0, 1, 2, 3}
    assert [u.checkpoint for u in runnable(4)] == [f"projection:calendars#{i}/4" for i in range(4)] + [
        "projection:resources"]


async def test_two_runners_share_the_partitions_and_the_survivor_takes_them_all(
    pool: asyncpg.Pool, store: EventStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runners with 4 calendar partitions: each leads some units, never both one; stop one, the other leads all."""
    partitioned = msgspec.structs.replace(settings, calendar_partitions=4)
    log = read_log()
    half = len(log) // 2

    async def append(envelopes: list) -> None:
        for envelope in envelopes:
            await store.append([StreamAppend(envelope.stream_id, envelope.version - 1,
                                             [NewEvent(envelope.id, envelope.type, bytes(envelope.data))])],
                               command_id=None, command_name="golden_log", account_id=envelope.account_id)

    async def caught_up() -> bool:
        head = await log_head(pool)
        tx_id = await tx_of(pool, head)
        return tx_id is not None and await applied_everywhere(pool, runnable(4), tx_id, head)

    await append(log[:half])
    monkeypatch.setenv("SCHED_INSTANCE", "1")
    async with projections_bootstrap(partitioned):
        monkeypatch.setenv("SCHED_INSTANCE", "2")
        async with projections_bootstrap(partitioned):
            async def shared() -> bool:
                holders = await _holders(pool)
                return len(holders) == 5 and set(holders.values()) == {"1", "2"}

            await wait_for(shared, timeout=PATIENCE)  # both runners lead some units (one lease row per unit)
            await append(log[half:])
            await wait_for(caught_up, timeout=PATIENCE)

        async def survivor_leads_all() -> bool:
            holders = await _holders(pool)
            return len(holders) == 5 and set(holders.values()) == {"1"}

        await wait_for(survivor_leads_all, timeout=PATIENCE)
    expected = json.loads(READ_MODELS_PATH.read_text())
    assert await read_models(pool) == expected  # the same rows as one unpartitioned runner
    await asyncio.sleep(0)

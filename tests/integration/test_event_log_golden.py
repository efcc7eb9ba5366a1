"""The golden event log, appended to a fresh database, projects into the committed read-model snapshot."""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

import asyncpg
import msgspec
import pytest

from projections import PROJECTIONS
from projections.runner import ProjectionRunner
from shared.eventstore import EventStore, NewEvent, StreamAppend
from tests.fixtures.golden import READ_MODELS_PATH, read_log

pytestmark = pytest.mark.integration

# Set to 1 to write the snapshot when it does not exist yet; an existing snapshot is never overwritten.
RECORD = os.environ.get("SCHED_GOLDEN_RECORD") == "1"


def _cell(value: Any) -> Any:
    """A read-model cell as a JSON value: jsonb parsed, timestamps in ISO-8601."""
    if isinstance(value, bytes):
        return msgspec.json.decode(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


async def read_models(pool: asyncpg.Pool) -> dict[str, list[dict[str, Any]]]:
    """Every read-model table as JSON rows, sorted: what "the same read models" means."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for projection in PROJECTIONS.values():
        for table in projection.tables:
            rows = [{k: _cell(v) for k, v in row.items()} for row in await pool.fetch(f"select * from {table}")]
            tables[table] = sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))
    return tables


async def test_golden_log_projects_into_the_committed_read_models(pool: asyncpg.Pool, store: EventStore) -> None:
    for envelope in read_log():
        await store.append([StreamAppend(envelope.stream_id, envelope.version - 1,
                                         [NewEvent(envelope.id, envelope.type, bytes(envelope.data))])],
                           command_id=None, command_name="golden_log", account_id=envelope.account_id)
    await ProjectionRunner(pool, list(PROJECTIONS.values())).catch_up()
    projected = await read_models(pool)
    if RECORD and not READ_MODELS_PATH.exists():
        READ_MODELS_PATH.write_text(json.dumps(projected, indent=1, sort_keys=True) + "\n")
    expected = json.loads(READ_MODELS_PATH.read_text())
    assert set(projected) == set(expected)
    for table, rows in expected.items():
        assert projected[table] == rows, table

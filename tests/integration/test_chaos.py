"""The short fault run against cluster mode: every check and every target of the table says PASS."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.harness import SHORT_PLAN, run

pytestmark = pytest.mark.integration


async def test_a_short_fault_run_against_the_cluster_loses_and_doubles_nothing(tmp_path: Path) -> None:
    """Kill a command and a query service and the relay, pause it, kill the NATS leader, restart Postgres: every
    check holds and every fault meets its targets (no 500, at most 1% failed in a kill's window, failover by 10 s)."""
    report, load = await run(tmp_path, SHORT_PLAN)
    print(report.table(load))
    assert load.acknowledged, "the load never got an answer; the run proved nothing"
    assert {"nats_book", "hold", "read_own_write"} <= {o.op for o in load.outcomes if 200 <= o.status < 300}
    assert {check: found for check, found in report.violations.items() if found} == {}
    assert report.failures(load) == []

"""The short fault run (about 2 minutes) against cluster mode: checks (a) to (e) find no violation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.harness import SHORT_PLAN, run

pytestmark = pytest.mark.integration


async def test_a_short_fault_run_against_the_cluster_loses_and_doubles_nothing(tmp_path: Path) -> None:
    """Kill a command service, the relay, pause it, kill the NATS leader, restart Postgres: all checks hold."""
    report, load = await run(tmp_path, SHORT_PLAN)
    print(report.table(load))
    assert load.acknowledged, "the load never got an answer; the run proved nothing"
    assert {check: found for check, found in report.violations.items() if found} == {}

"""`make chaos`: the full fault run against cluster mode (about 5 minutes); prints the table of checks (a)-(g)."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from tests.chaos.harness import FULL_PLAN, run


def main() -> int:
    """Run the full plan; exit 1 when any line of the table says FAIL."""
    with tempfile.TemporaryDirectory(prefix="sched-chaos-") as root:
        print("starting the cluster and the load; faults follow one at a time", flush=True)
        report, load = asyncio.run(run(Path(root), FULL_PLAN, warmup=10.0, settle=5.0))
    print(report.table(load))
    return 1 if report.failures(load) else 0


if __name__ == "__main__":
    sys.exit(main())
